#!/usr/bin/env bash
# The signer's and the verifier's test suites against the newest pyHanko release (issue 24). Allowed to
# fail: it says early when an upstream release breaks a patch (verifier/patches.py) or the sealing/verifying
# code, before the pin in pyproject.toml/requirements.lock is raised. .ci/run calls it after the main suite.
#   .venv-newest: requirements.lock without its pyhanko and pyhanko-certvalidator pins (hash-checked), then
#   the newest pyhanko[opentype,qr] and pyhanko-certvalidator from the package index, the project editable.
# Prints one summary line last: versions (newest vs lock) and the pytest outcome. Exit: pytest's, 124 when
# the time cap (YIZHANG_NEWEST_TIMEOUT seconds, default 360) ran out.
# Which tests: YIZHANG_NEWEST_TESTS (default: the signer and verifier unit suites, then sealing on the token,
# attacks on sealed documents and the foreign corpus: what pyHanko touches, within the cap; -x).
set -euo pipefail
cd "$(dirname "$0")/.."
CAP="${YIZHANG_NEWEST_TIMEOUT:-360}"
TESTS="${YIZHANG_NEWEST_TESTS:-tests/unit/signer tests/unit/verify tests/integration/signer/test_seal_pdf.py tests/integration/signer/test_apply_seal.py tests/integration/verify/test_token_sealed.py tests/integration/verify/test_attacks_sealed.py tests/integration/verify/test_corpus.py}"
VENV=.venv-newest
start=$(date +%s)

[ -x .venv/bin/python ] || bash scripts/setup.sh >/dev/null
if [ ! -x "$VENV/bin/python" ]; then
  .venv/bin/python -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check uv==0.13.9
fi
lock="$(mktemp)"; trap 'rm -f "$lock"' EXIT
# Drop the two pinned requirements (name line and its indented hash/comment lines).
awk '/^[^ #]/ { skip = ($0 ~ /^pyhanko(-certvalidator)?==/) } !skip' requirements.lock > "$lock"
"$VENV/bin/uv" pip sync -q --python "$VENV/bin/python" --require-hashes "$lock"
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" \
  --upgrade-package pyhanko --upgrade-package pyhanko-certvalidator "pyhanko[opentype,qr]" pyhanko-certvalidator
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps -e .

version() { "$1/bin/python" -c "import importlib.metadata as m; print(m.version('$2'))"; }
versions="pyHanko $(version "$VENV" pyhanko) (lock $(version .venv pyhanko)), pyhanko-certvalidator $(version "$VENV" pyhanko-certvalidator) (lock $(version .venv pyhanko-certvalidator))"

export YIZHANG_TEST_PG_URL="${YIZHANG_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
left=$(( CAP - ($(date +%s) - start) ))
out="$(mktemp)"; trap 'rm -f "$lock" "$out"' EXIT
rc=0
# shellcheck disable=SC2086
timeout --signal=TERM --kill-after=20 "$(( left > 30 ? left : 30 ))" \
  "$VENV/bin/python" -m pytest $TESTS -x -q -p no:cacheprovider 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
summary="$({ grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$out" || true; } | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then rc=124; summary="timed out after ${CAP} s (${summary:-no summary})"; fi
[ -z "$(tail -c1 "$out")" ] || echo  # pytest killed mid-line
echo "newest-pyhanko: ${versions}: ${summary:-pytest exit $rc} [exit $rc, $(( $(date +%s) - start )) s]"
exit "$rc"
