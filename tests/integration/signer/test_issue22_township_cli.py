"""Issue 22, leak 7 from the command line: ``yizhang org rename-township | merge-township | show-township``
as the county approval bureau runs them (a fresh home, separate processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.signer.test_cli import _yz, county_with_active_seal

pytestmark = pytest.mark.softhsm
BASIS = "赣府字〔2026〕5号"


def _ok(home: Path, *args: str) -> dict:  # type: ignore[type-arg]
    r = _yz(home, *args, "--json")
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    out: dict = json.loads(r.stdout)  # type: ignore[type-arg]
    return out


def test_rename_then_merge_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    seal_id = county_with_active_seal(home)

    r = _yz(
        home, "org", "rename-township", "360732-11", "兴江镇", "--basis", " ", "--actor", "admin", "--json"
    )
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "TOWNSHIP_BASIS_REQUIRED"
    renamed = _ok(home, "org", "rename-township", "360732-11", "兴江镇", "--basis", BASIS, "--actor", "admin")
    assert (renamed["name"], renamed["former_names"], renamed["seals_changed"]) == (
        "兴江镇",
        ["兴江乡"],
        [seal_id],
    )
    assert _ok(home, "seal", "show", seal_id)["name"] == "兴国县兴江镇人民政府行政审批服务专用章"

    merged = _ok(
        home,
        "org",
        "merge-township",
        "360732-11",
        "--into",
        "360732-12",
        "--basis",
        BASIS,
        "--actor",
        "admin",
    )
    assert (merged["state"], merged["successor_code"], merged["seals_retired"]) == (
        "MERGED",
        "360732-12",
        [seal_id],
    )
    shown = _ok(home, "org", "show-township", "360732-11")
    assert (shown["state"], shown["name"], shown["basis"]) == ("MERGED", "兴江镇", BASIS)
    r = _yz(home, "powers", "show", "360732-12", "--json")
    assert "SX-002" in {p["matter"] for p in json.loads(r.stdout)}  # 兴江's powers are 古龙岗's now
