"""Issue 22, leak 7 from the command line: ``yizhang org rename-township | merge-township | show-township``
as the county approval bureau runs them (a fresh home, separate processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.signer.test_cli import DOMAIN, _yz

pytestmark = pytest.mark.softhsm
BASIS = "赣府字〔2026〕5号"


def _ok(home: Path, *args: str) -> dict:  # type: ignore[type-arg]
    r = _yz(home, *args, "--json")
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    out: dict = json.loads(r.stdout)  # type: ignore[type-arg]
    return out


def test_rename_then_merge_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for args in (
        ("county", "init", "--county-code", "360732", "--county-name", "兴国县"),
        ("org", "add-county", "360732", "兴国县", "--actor", "admin"),
        (
            "org",
            "import-townships",
            str(DOMAIN / "xingguo_no2_seals.csv"),
            "--county",
            "360732",
            "--actor",
            "admin",
        ),
        (
            "catalog",
            "import",
            str(DOMAIN / "shanxi_township_catalog.csv"),
            "--county",
            "360732",
            "--actor",
            "admin",
        ),
        ("powers", "grant", "360732-11", "--all", "--actor", "admin"),
    ):
        r = _yz(home, *args)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    seal_id = _ok(
        home,
        "seal",
        "issue",
        "--name",
        "兴国县兴江乡人民政府行政审批服务专用章",
        "--township",
        "兴江乡",
        "--township-code",
        "360732-11",
        "--custodian",
        "李保管",
        "--requested-by",
        "兴江乡人民政府",
        "--approved-by",
        "王乡长",
        "--actor",
        "张三",
    )["seal_id"]
    _ok(home, "seal", "activate", seal_id, "--actor", "张三", "--approved-by", "王乡长")

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
