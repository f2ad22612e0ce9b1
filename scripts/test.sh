#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what is missing, checks a PostgreSQL is
# reachable (starting or installing one if not), runs lint/type/import contracts, then pytest.
# Beyond what the service needs (scripts/setup.sh): Chromium for the browser tests, and Node with the
# OpenID Provider the OIDC login tests run against (panva/oidc-provider, tests/oidc/, from its lock file).
set -euo pipefail
cd "$(dirname "$0")/.."
YIZHANG_WITH_BROWSER=1 bash scripts/setup.sh

SUDO=""; if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if [ -f tests/oidc/package-lock.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "test: installing Node.js for the OIDC test provider"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  oidc_want="$(sha256sum tests/oidc/package-lock.json | cut -d' ' -f1)"
  oidc_stamp="tests/oidc/node_modules/.yizhang-stamp"
  if [ "$(cat "$oidc_stamp" 2>/dev/null)" != "$oidc_want" ]; then
    echo "test: npm ci in tests/oidc"
    npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error >/dev/null
    echo "$oidc_want" > "$oidc_stamp"
  fi
fi

PG_URL="${YIZHANG_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
export YIZHANG_TEST_PG_URL="$PG_URL"
if ! .venv/bin/python - "$PG_URL" <<'PY' 2>/dev/null
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
then
  bash scripts/ensure-postgres.sh
fi

.venv/bin/ruff check core keystore policies signer verifier ledger api bench tests
.venv/bin/lint-imports --no-cache
.venv/bin/mypy core keystore policies signer verifier ledger api
.venv/bin/pytest "$@"
