#!/usr/bin/env bash
# Runs the service on its embedded defaults (SoftHSM2 token + SQLite in $YIZHANG_HOME, default ./var) with a
# demo county loaded. Installs what is missing first; a second run reuses the home and changes nothing.
# Settings: YIZHANG_HOST (127.0.0.1), YIZHANG_PORT (8000), YIZHANG_PUBLIC_BASE_URL (http://HOST:PORT),
# YIZHANG_HOME (./var), YIZHANG_WORKERS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export YIZHANG_HOME="${YIZHANG_HOME:-$PWD/var}"
HOST="${YIZHANG_HOST:-127.0.0.1}"
PORT="${YIZHANG_PORT:-8000}"
# Links, cookies and (at the first `county init`) the CRL URLs and log origin follow the address served on,
# unless YIZHANG_PUBLIC_BASE_URL says where users reach it (behind a reverse proxy: the https:// address).
case "$HOST" in
  0.0.0.0|::|"[::]") URL_HOST=127.0.0.1 ;;  # every interface: the loopback one is the one surely reachable
  *:*) URL_HOST="[$HOST]" ;;
  *) URL_HOST="$HOST" ;;
esac
export YIZHANG_PUBLIC_BASE_URL="${YIZHANG_PUBLIC_BASE_URL:-http://$URL_HOST:$PORT}"
.venv/bin/yizhang demo --home "$YIZHANG_HOME" --json > "$YIZHANG_HOME.demo.json" 2>/dev/null || \
  .venv/bin/yizhang demo --home "$YIZHANG_HOME" --json
echo "demo county ready in $YIZHANG_HOME (summary: $YIZHANG_HOME.demo.json)"
exec .venv/bin/yizhang serve --home "$YIZHANG_HOME" --host "$HOST" --port "$PORT" --workers "${YIZHANG_WORKERS:-2}"
