#!/usr/bin/env bash
# Installs what Yizhang needs to run on Debian 12, as root or with sudo. A second run changes nothing and is
# fast. Only what the service needs: test-only tools (a browser, Node and the test OpenID provider) are
# installed by scripts/test.sh (YIZHANG_WITH_BROWSER=1 adds Chromium here).
#   Debian packages: SoftHSM2, OpenSC tools, poppler (pdfsig/pdftoppm), qpdf, a CJK font, Python venv,
#   libfaketime (`faketime`: the lifetime tests move the clock for `yizhang serve` and `verify`).
#   Python: .venv from requirements.lock (hash-pinned), the project installed editable.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv softhsm2 opensc poppler-utils qpdf fonts-wqy-zenhei openssl ca-certificates faketime)
if [ "${YIZHANG_WITH_BROWSER:-0}" = "1" ]; then APT_PACKAGES+=(chromium zbar-tools); fi  # zbarimg: QR tests

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python 3.11: the one on PATH if it is 3.11 (e.g. pyenv), else Debian 12's /usr/bin/python3.
PY=""
for cand in python3.11 python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PY="$(command -v "$cand")"; break
  fi
done
[ -n "$PY" ] || { echo "setup: Python 3.11 not found" >&2; exit 1; }

stamp_want="$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
stamp_file=".venv/.yizhang-stamp"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_want" ]; then
  echo "setup: building .venv with $PY"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9
  .venv/bin/uv pip sync -q --python .venv/bin/python --require-hashes requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  echo "$stamp_want" > "$stamp_file"
fi
