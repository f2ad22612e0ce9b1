#!/usr/bin/env bash
# For test machines only: make a PostgreSQL reachable at 127.0.0.1:5432 with trust auth for local TCP.
# Starts the installed cluster if it is down; installs Debian's postgresql if there is none.
set -euo pipefail
SUDO=""; if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  ver="$(ls /etc/postgresql | head -1)"
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  grep -q "yizhang-test" "$hba" || \
    $SUDO sed -i "1i host all all 127.0.0.1/32 trust # yizhang-test\nhost all all ::1/128 trust # yizhang-test" "$hba"
fi
ver="$(ls /etc/postgresql | head -1)"
$SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p 5432 -q && exit 0
  sleep 1
done
echo "ensure-postgres: PostgreSQL did not come up at 127.0.0.1:5432" >&2
exit 1
