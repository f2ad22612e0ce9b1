#!/usr/bin/env bash
# The county's first day (docs/install.md, section 7) run for real against a fresh home on loopback, so the
# runbook cannot go stale: CI runs this script (tests/test_install_runbook.py), and that test checks that the
# lines between the ">>> runbook" and "<<< runbook" marks are the ones docs/install.md shows, apart from lines
# marked "# check" (this script's own checks) and "$SEAL_ID" (written <seal_id> there).
#
#   bash scripts/install-check.sh [DIR]     DIR: a new or empty folder (default: a fresh temporary one)
#
# The database is YIZHANG_DATABASE_URL if set (CI: a fresh PostgreSQL database), else SQLite in the home;
# the token is the embedded SoftHSM2 token in the home. The county files the runbook imports are the
# catalogs shipped with the program (policies/catalogs/). Then `yizhang serve` on a free 127.0.0.1 port
# must answer /readyz, the first administrator must log in, and the ledger must audit clean.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${YIZHANG_VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"

WORK="${1:-$(mktemp -d -t yizhang-install-check.XXXXXX)}"
mkdir -p "$WORK"
if [ -n "$(ls -A "$WORK")" ]; then
  echo "install-check: $WORK is not empty" >&2
  exit 2
fi
WORK="$(cd "$WORK" && pwd)"
unset SOFTHSM2_CONF YIZHANG_PKCS11_URI YIZHANG_PIN_SOURCE
export YIZHANG_HOME="$WORK/home"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export YIZHANG_PUBLIC_BASE_URL="http://127.0.0.1:$PORT"  # the env file's; set before `county init`
cd "$WORK"
cp "$REPO/policies/catalogs/xingguo_no2_seals.csv" townships.csv
cp "$REPO/policies/catalogs/xingguo_county_township_catalog.csv" county-catalog.csv
cp "$REPO/policies/catalogs/shanxi_township_catalog.csv" township-catalog.csv
# The administrator's password, on standard input only (never on a command line).
"$PY" -c 'import secrets; print("Adm-" + secrets.token_urlsafe(18))' > admin.password
chmod 0600 admin.password

echo "install-check: home $YIZHANG_HOME, database ${YIZHANG_DATABASE_URL:-SQLite in the home}"
{
# >>> runbook
# 1. the county: database schema, CA keys and certificates in the token, CRLs, the log key
yizhang county init --county-code 360732 --county-name 兴国县

# 2. organisations: the county, its departments, its townships (from a No. 2 seal table, or one by one)
yizhang org add-county 360732 兴国县 --actor 张三
yizhang org add-department 县卫健委 兴国县卫生健康委员会 --county 360732 --actor 张三
yizhang org import-townships townships.csv --county 360732 --actor 张三     # no,township,seal_name_pattern,suffix
# one by one instead: yizhang org add-township 360732-13 梅窖镇 --county 360732 --service-centre 360732-13-BMFW --no2-number 13 --actor 张三

# 3. the catalog of matters (docs/catalog-format.md): the county's list, then the townships' own matters
yizhang catalog import county-catalog.csv --county 360732 --actor 张三
yizhang catalog import township-catalog.csv --county 360732 --merge --actor 张三

# 4. seals: make (刻制), then activate (启用) after the township government's consent
yizhang seal issue --name 兴国县梅窖镇人民政府行政审批服务专用章 --township 梅窖镇 --township-code 360732-13 \
    --custodian 李四 --requested-by 梅窖镇人民政府 --approved-by 梅窖镇主要负责人 --actor 张三
SEAL_ID="$(yizhang seal list --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["seal_id"])')"  # check
yizhang seal activate "$SEAL_ID" --actor 张三 --approved-by 梅窖镇主要负责人

# 5. powers: which matters each township's seal may serve; No. 2 seal agreements with departments
yizhang powers grant 360732-13 --all --actor 张三
yizhang agreement create --department 县行政审批局 --township 360732-13 --seal-number 13 --matter XG-14 \
    --starts 2026-01-01 --ends 2029-01-01 --basis "委托协议书" --actor 张三

# 6. accounts: the first county administrator, who then makes the others in the console
yizhang account create --username admin --role COUNTY_ADMIN --org 360732 --display-name 张三 --password-stdin
# <<< runbook
} < admin.password

# In production: systemctl enable --now yizhang. Here: the same command the unit runs, on loopback.
yizhang serve --home "$YIZHANG_HOME" --host 127.0.0.1 --port "$PORT" --workers 1 > serve.log 2>&1 &
SERVE_PID=$!
trap 'kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null || true' EXIT

"$PY" - "$YIZHANG_PUBLIC_BASE_URL" "$SERVE_PID" <<'PY'
import json, os, sys, time, urllib.error, urllib.request

base, pid = sys.argv[1], int(sys.argv[2])
for _ in range(480):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("install-check: yizhang serve exited (serve.log)")
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
            ready = json.load(r)
            break
    except (urllib.error.URLError, OSError):
        time.sleep(0.25)
else:
    sys.exit("install-check: /readyz did not answer 200 (serve.log)")
print("install-check: /readyz", json.dumps(ready, ensure_ascii=False)[:200])
password = open("admin.password", encoding="utf-8").read().strip()
req = urllib.request.Request(
    base + "/v1/auth/login",
    data=json.dumps({"username": "admin", "password": password}).encode(),
    headers={"Content-Type": "application/json"},
)
with urllib.request.urlopen(req, timeout=30) as r:
    session = json.load(r)
assert session["account"]["role"] == "COUNTY_ADMIN", session
print("install-check: admin logged in")
PY

yizhang ledger audit --home "$YIZHANG_HOME"
echo "install-check: ok ($WORK)"
