"""Runs the real ``yizhang`` CLI in this process after the heavy imports, so a kill lands inside signing.

``_sign_driver.py ARGS...``: print ``READY`` once imported, wait for one line on stdin ("go"), then run
``yizhang ARGS...`` (the crash test sends SIGKILL after a random delay from "go": every kill point lies in
building the services, opening the token, the policy decision, the number draw, stamping, signing,
timestamping, storing, the ledger append, the commit or the output).

``_sign_driver.py --serve``: read one JSON list of CLI arguments per stdin line, run it in this process and
answer one JSON line ``{"rc": int, "out": str}`` (retries and audits without a new interpreter each time).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

import pyhanko.sign  # noqa: F401

import api._services  # noqa: F401
import api.cli
import signer  # noqa: F401
from verifier import patches

patches.install()  # as `yizhang` itself does (api.cli.main)


def _run(args: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    rc = 0
    with contextlib.redirect_stdout(buf):
        try:
            api.cli.app(args, prog_name="yizhang", standalone_mode=False)
        except SystemExit as exc:
            rc = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            rc = getattr(exc, "exit_code", 1) or 1
            print(f"{type(exc).__name__}: {exc}")
    return rc, buf.getvalue()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        print("READY", flush=True)
        for line in sys.stdin:
            rc, out = _run(json.loads(line))
            print(json.dumps({"rc": rc, "out": out}), flush=True)
    else:
        print("READY", flush=True)
        sys.stdin.readline()
        sys.argv = ["yizhang", *sys.argv[1:]]
        api.cli.main()
