"""Processes opening the same SoftHSM token at the same time.

SoftHSM rewrites the token's ``token.object`` on every login (truncating it first); another process scanning
the token directory or logging in at that instant reads a short file and saw no token (``TOKEN_NOT_FOUND``),
an uninitialised one, or a general error. Two serve workers starting together did; so did the bench's bare
signers. ``Keystore.open`` now scans again and retries when it is the process's only user of the module.

Three child interpreters each open and close the shared test token in a loop (every open is a login, so each
also writes the file the others read). Before the retry almost every open of two of them failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.softhsm]

ROOT = Path(__file__).resolve().parents[3]
OPENS = 300

CHILD = r"""
import collections, json, sys
from pathlib import Path
from core.errors import SealServiceError
from core.settings import load_settings
from keystore import Keystore

settings = load_settings(Path(sys.argv[1]))
counts = collections.Counter()
for _ in range(int(sys.argv[2])):
    try:
        with Keystore.open(settings) as ks:
            ks.ping()
        counts["ok"] += 1
    except SealServiceError as exc:
        counts[exc.code] += 1
print(json.dumps(counts))
"""


def test_processes_opening_the_token_together_all_get_it(softhsm_token) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "SOFTHSM2_CONF": str(softhsm_token.conf), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(softhsm_token.home), str(OPENS)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    failed = sum(n for r in results for code, n in r.items() if code != "ok")
    assert sum(r.get("ok", 0) for r in results) + failed == 3 * OPENS
    # A lost race now needs six torn reads in a row; seen 4 in 13,000 opens under this load, 0 in most runs.
    assert failed <= 3, results
