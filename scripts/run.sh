#!/usr/bin/env bash
# Runs the service on its embedded defaults (SoftHSM2 token + SQLite in $YIZHANG_HOME, default ./var) with a
# demo county loaded. Installs what is missing first; a second run reuses the home and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export YIZHANG_HOME="${YIZHANG_HOME:-$PWD/var}"
HOST="${YIZHANG_HOST:-127.0.0.1}"
PORT="${YIZHANG_PORT:-8000}"
.venv/bin/yizhang demo --home "$YIZHANG_HOME" --json > "$YIZHANG_HOME.demo.json" 2>/dev/null || \
  .venv/bin/yizhang demo --home "$YIZHANG_HOME" --json
echo "demo county ready in $YIZHANG_HOME (summary: $YIZHANG_HOME.demo.json)"
exec .venv/bin/yizhang serve --home "$YIZHANG_HOME" --host "$HOST" --port "$PORT" --workers "${YIZHANG_WORKERS:-2}"
