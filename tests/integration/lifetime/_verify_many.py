"""``yizhang verify`` (the CLI command itself, ``api.cli.app``) for several documents in one process, so that
one libfaketime offset and one interpreter start serve them all:

    faketime -f +400d python -m tests.integration.lifetime._verify_many PLAN.json

``PLAN.json`` maps a label to the command's arguments (after ``verify``); prints ``{label: {"exit_code",
"report"}}`` (the ``--json`` report).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def verify_many(plan: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    from typer.testing import CliRunner

    from api.cli import app
    from verifier import patches

    patches.install()  # what api.cli.main does before the command runs
    out = {}
    for label, args in plan.items():
        result = CliRunner().invoke(app, ["verify", *args, "--json"])
        try:
            report = json.loads(result.stdout)
        except ValueError:
            report = {"unparsed": result.output[-2000:]}
        out[label] = {"exit_code": result.exit_code, "report": report}
    return out


if __name__ == "__main__":
    plan = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    print(json.dumps(verify_many(plan), ensure_ascii=False))
