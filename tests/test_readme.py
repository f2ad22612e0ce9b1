"""The README's paths and commands exist (issue 20: it named ``/tsa`` and ``/ledger/...``, both 404).

Every backticked URL path in README.md must be a route of the app (a ``...`` ending is a prefix), and every
``yizhang`` command in its code blocks must be a command of the CLI (``--help`` answers).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FILESYSTEM = ("/usr/", "/etc/", "/var/", "/path", "/tmp/", "/opt/")


def _readme_paths() -> list[str]:
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"`(?:(?:GET|POST) )?(/[A-Za-z0-9_.{}/\-]*)`", text)
    return sorted({p for p in found if len(p) > 1 and not p.startswith(FILESYSTEM)})


def _readme_commands() -> list[list[str]]:
    out = []
    for line in README.read_text(encoding="utf-8").splitlines():
        line = line.strip().rstrip("\\").strip()
        if not line.startswith((".venv/bin/yizhang ", "yizhang ")):
            continue
        words = shlex.split(line.split("#", 1)[0].split("&&", 1)[0])[1:]
        command = []
        for w in words:
            if w.startswith("-") or "/" in w or "." in w:
                break
            command.append(w)
        out.append(command)
    return out


def _route_patterns(app) -> list[re.Pattern[str]]:  # type: ignore[no-untyped-def]
    from api._authz import iter_routes

    pats = []
    for route in iter_routes(app.routes):
        path = getattr(route, "path", None)
        if path:
            pats.append(re.compile(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"))
    return pats


def test_readme_names_paths_and_commands() -> None:
    paths = _readme_paths()
    assert {"/ui/login", "/verify", "/docs", "/v1/tsa", "/v1/public/checkpoint"} <= set(paths)
    assert len(_readme_commands()) >= 5


def test_every_path_in_the_readme_is_served(sqlite_api_client) -> None:
    patterns = _route_patterns(sqlite_api_client.app)
    missing = []
    for path in _readme_paths():
        concrete = path.replace("{", "").replace("}", "")  # /v1/public/proofs/{index} -> a value
        if path.endswith("..."):
            ok = any(p.pattern.startswith(re.escape(path[:-3])) for p in patterns)
        else:
            ok = any(p.match(path) or p.match(concrete) for p in patterns)
        if not ok:
            missing.append(path)
    assert missing == []


def test_a_wrong_path_would_be_caught(sqlite_api_client) -> None:
    patterns = _route_patterns(sqlite_api_client.app)
    for wrong in ("/tsa", "/ledger/checkpoint", "/v1/public/nothing"):
        assert not any(p.match(wrong) for p in patterns), wrong


@pytest.mark.parametrize("command", _readme_commands(), ids=lambda c: " ".join(c) or "yizhang")
def test_every_readme_command_exists(command: list[str]) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output


def test_every_image_in_the_readme_is_in_the_repository() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text(encoding="utf-8"))
    assert {"docs/screenshot-console.png", "docs/screenshot-verify.png"} <= set(images)
    for image in images:
        path = README.parent / image
        assert path.is_file() and path.read_bytes().startswith(b"\x89PNG"), image
