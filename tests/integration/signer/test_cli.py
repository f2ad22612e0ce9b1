"""``yizhang render`` and ``yizhang sign`` as a user runs them (a fresh home, separate processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.softhsm
DOMAIN = Path(__file__).resolve().parents[3] / "policies" / "catalogs"  # shipped as package data


def _yz(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOFTHSM2_CONF", "YIZHANG_HOME")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "yizhang"), *args, "--home", str(home)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def county_with_active_seal(home: Path) -> str:
    """A fresh 兴国县 home with the Shanxi catalog granted to 兴江乡 and its approval seal issued and active,
    each step a separate ``yizhang`` process as a county runs it; the seal's id."""
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
    r = _yz(
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
        "--json",
    )
    assert r.returncode == 0, r.stderr
    seal_id = json.loads(r.stdout)["seal_id"]
    assert (
        _yz(home, "seal", "activate", seal_id, "--actor", "张三", "--approved-by", "王乡长").returncode == 0
    )
    return seal_id


def test_render_and_sign(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = tmp_path / "acc.json"
    data.write_text(
        json.dumps(
            {
                "applicant": "刘某某",
                "matter_name": "临时救助",
                "submitted_date": "2026年3月1日",
                "issuer": "兴国县兴江乡人民政府",
                "date": "2026年3月5日",
            },
            ensure_ascii=False,
        )
    )
    r = _yz(
        home,
        "render",
        "--template",
        "acceptance_notice",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "a.pdf"),
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF-")
    r = _yz(
        home, "render", "--template", "nope", "--data", str(data), "--out", str(tmp_path / "b.pdf"), "--json"
    )
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "TEMPLATE_UNKNOWN"

    seal_id = county_with_active_seal(home)

    out = tmp_path / "sealed.pdf"
    sign = (
        "sign",
        "--seal",
        seal_id,
        "--matter",
        "SX-002",
        "--stage",
        "受理",
        "--kind",
        "受理通知书",
        "--in",
        str(tmp_path / "a.pdf"),
        "--operator",
        "clerk-li",
        "--out",
        str(out),
        "--level",
        "B-T",
        "--json",
    )
    r = _yz(home, *sign)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["document_number"] == "兴江受理〔2026〕1号" and result["replayed"] is False
    pdfsig = subprocess.run(["pdfsig", str(out)], capture_output=True, text=True).stdout
    assert "Signature is Valid" in pdfsig and "Total document signed" in pdfsig
    again = json.loads(_yz(home, *sign).stdout)
    assert again["replayed"] is True and again["sha256"] == result["sha256"]

    r = _yz(
        home,
        "sign",
        "--seal",
        seal_id,
        "--matter",
        "SX-002",
        "--stage",
        "审批",
        "--kind",
        "不予批准决定书",
        "--in",
        str(tmp_path / "a.pdf"),
        "--operator",
        "clerk-li",
        "--out",
        str(tmp_path / "no.pdf"),
        "--json",
    )
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == "SIGNING_REFUSED"
    assert not (tmp_path / "no.pdf").exists()

    # issue 22, leak 11: a free-text approver is no approver; refused before any number is drawn
    stranger = [*sign[:-1], "--approver", "anyone-at-all", "--idempotency-key", "leak-11", "--json"]
    stranger[stranger.index("--out") + 1] = str(tmp_path / "stranger.pdf")
    r = _yz(home, *stranger)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["error"]["code"] == "APPROVER_UNKNOWN"
    assert not (tmp_path / "stranger.pdf").exists()
    nxt = [*sign[:-1], "--idempotency-key", "after-leak-11", "--json"]
    nxt[nxt.index("--out") + 1] = str(tmp_path / "next.pdf")
    r = _yz(home, *nxt)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["document_number"] == "兴江受理〔2026〕2号"  # no number burned by the refusal
