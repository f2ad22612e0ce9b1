#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing, checks a PostgreSQL is
# reachable (starting or installing one if not), runs lint/type/import contracts, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

PG_URL="${YIZHANG_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
export YIZHANG_TEST_PG_URL="$PG_URL"
if ! .venv/bin/python - "$PG_URL" <<'PY' 2>/dev/null
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
then
  bash scripts/ensure-postgres.sh
fi

.venv/bin/ruff check core keystore policies signer ledger api bench tests
.venv/bin/lint-imports --no-cache
.venv/bin/mypy core keystore policies signer ledger api
.venv/bin/pytest "$@"
