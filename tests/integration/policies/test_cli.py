"""The policy CLI end to end on a fresh home (SQLite): import, grant, agreement, check, bad input exits."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app

COMMON = ["--seal-township", "360732-13", "--operator", "c1", "--operator-org", "360732-13"]


def test_cli_flow(tmp_path: Path, domain_dir: Path) -> None:
    runner = CliRunner()
    env = {"YIZHANG_HOME": str(tmp_path / "home"), "YIZHANG_ACTOR": "admin"}

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(app, list(args), env=env)
        return res.exit_code, res.stdout

    assert run("org", "add-county", "360732", "兴国县")[0] == 0
    assert (
        run("org", "import-townships", str(domain_dir / "xingguo_no2_seals.csv"), "--county", "360732")[0]
        == 0
    )
    code, out = run(
        "catalog",
        "import",
        str(domain_dir / "xingguo_county_township_catalog.csv"),
        "--county",
        "360732",
        "--json",
    )
    assert code == 0 and json.loads(out)["matters"] == 26
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((domain_dir / "shanxi_township_catalog.csv").read_text(encoding="utf-8").encode("gbk"))
    code, out = run("catalog", "import", str(gbk), "--county", "360732", "--merge", "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "CATALOG_ENCODING"
    code, out = run(
        "catalog", "import", str(gbk), "--county", "360732", "--merge", "--encoding", "gbk", "--json"
    )
    assert code == 0 and json.loads(out)["matters"] == 114
    assert run("powers", "grant", "360732-13", "SX-002")[0] == 0
    code, out = run("powers", "grant", "360732-13", "XG-07", "--json")
    assert code == 2 and json.loads(out)["error"]["code"] == "POWER_MODE_INVALID"

    accept = [*COMMON, "--operator-centre", "360732-13-BMFW", "--matter", "SX-002"]
    code, out = run("policy", "check", *accept, "--stage", "受理", "--document-kind", "受理通知书", "--json")
    assert code == 0 and json.loads(out)["allowed"] is True
    code, out = run("policy", "check", *accept, "--stage", "审批", "--document-kind", "准予决定书", "--json")
    assert code == 1 and [r["code"] for r in json.loads(out)["reasons"]] == ["STAGE_NOT_DELEGATED"]

    code, out = run(
        "agreement",
        "create",
        "--department",
        "县行政审批局",
        "--township",
        "360732-13",
        "--seal-number",
        "13",
        "--matter",
        "XG-14",
        "--starts",
        "2026-01-01",
        "--ends",
        "2027-01-01",
        "--basis",
        "兴国县行政审批“2号章”委托协议书",
        "--id",
        "AGR-13",
        "--json",
    )
    assert code == 0 and json.loads(out)["version"] == 1
    code, out = run(
        "agreement",
        "create",
        "--department",
        "县行政审批局",
        "--township",
        "360732-13",
        "--seal-number",
        "13",
        "--matter",
        "XG-07",
        "--starts",
        "2028-01-01",
        "--json",
    )
    # 004: the agreement states its term and its basis (issue 22, leak 8)
    assert code == 2 and json.loads(out)["error"]["code"] == "AGREEMENT_TERM_REQUIRED"
    more = ["--ends", "2029-01-01", "--json"]
    code, out = run("agreement", "create", *_no2_args("XG-14", "2028-01-01"), *more)
    assert code == 2 and json.loads(out)["error"]["code"] == "AGREEMENT_BASIS_REQUIRED"
    code, out = run("agreement", "create", *_no2_args("XG-07", "2028-01-01"), "--basis", "协议", *more)
    assert code == 2 and json.loads(out)["error"]["code"] == "AGREEMENT_MODE_INVALID"
    no2 = [
        *COMMON,
        "--operator-centre",
        "360732-13-BMFW",
        "--matter",
        "XG-14",
        "--stage",
        "审批",
        "--document-kind",
        "PERMIT",
        "--seal-kind",
        "DEPARTMENT_NO2",
        "--seal-number",
        "13",
        "--seal-department",
        "县行政审批局",
        "--at",
        "2026-03-01T10:00:00+08:00",
        "--json",
    ]
    code, out = run("policy", "check", *no2, "--approver", "head")
    assert code == 0, out
    code, out = run("policy", "check", *no2)
    assert code == 1 and [r["code"] for r in json.loads(out)["reasons"]] == ["APPROVAL_MISSING"]
    assert run("agreement", "suspend", "AGR-13", "--reason", "检查")[0] == 0
    code, out = run("policy", "check", *no2, "--approver", "head")
    assert code == 1 and [r["code"] for r in json.loads(out)["reasons"]] == ["AGREEMENT_SUSPENDED"]
    code, out = run("agreement", "show", "AGR-13", "--history", "--json")
    assert code == 0 and [h["change"]["action"] for h in json.loads(out)] == [
        "create_agreement",
        "suspend_agreement",
    ]
    code, out = run("policy", "check", *no2, "--approver", "head", "--revision", "6")
    assert code == 0, out  # replayed against the revision before the suspension


def _no2_args(matter: str, starts: str) -> list[str]:
    return [
        "--department",
        "县行政审批局",
        "--township",
        "360732-13",
        "--seal-number",
        "13",
        "--matter",
        matter,
        "--starts",
        starts,
    ]
