"""The signing workflow over HTTP with a real token, the real catalogs and policies (SQLite, PostgreSQL).

Sealing is the signer area's ``apply_seal`` (wired by the service): the sealed PDF is checked with pyHanko's
validator against the county root, its receipt against the published log key. Also: the pre-check with its
reasons, the cross-township refusal, the principal's queue, rejection, idempotency, batch, refusals in the
ledger, revocation of an issued decision, the supervision feed, the monthly report, the organisation rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests._fixtures.api import METRICS_AUTH, metrics_token_source

pytestmark = pytest.mark.softhsm

XG = "360732"
XJ, GL, MJ = f"{XG}-11", f"{XG}-12", f"{XG}-13"  # 兴江乡, 古龙岗镇, 梅窖镇
BUREAU = "县行政审批局"
HEALTH_LICENCE_FIRST = "XG-14"


def _pdf() -> bytes:
    from signer import render_template
    from tests._fixtures.signer import ACCEPTANCE_DATA

    return render_template(
        "acceptance_notice", {"issuer": "兴国县兴江乡人民政府", "date": "2026年11月22日", **ACCEPTANCE_DATA}
    )


PDF = _pdf()


@pytest.fixture
def county(ks_settings, county_pki, seal_registry, tmp_path: Path, domain_dir: Path) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    """Xingguo with 兴江乡 and 梅窖镇: policies, a township seal each, 兴江's No. 2 seal (11) entrusted by
    the approval bureau for 公共场所卫生许可（首次）, and one account per role; real HTTP client."""
    from api._accounts import create_account, issue_token
    from api.app import create_app
    from core.db import transaction
    from keystore import SealKind
    from policies import PolicyStore
    from tests._fixtures.keystore import issue_township_seal

    store = PolicyStore(seal_registry._engine)
    store.register_county(XG, "兴国县", actor="t")
    store.register_department(BUREAU, BUREAU, county_code=XG, actor="t")
    for code, name in ((XJ, "兴江乡"), (GL, "古龙岗镇"), (MJ, "梅窖镇")):
        store.register_township(code, name, county_code=XG, service_centre=f"{code}-BMFW", actor="t")
    domain = domain_dir
    store.import_catalog(XG, (domain / "xingguo_county_township_catalog.csv").read_bytes(), actor="t")
    store.import_catalog(XG, (domain / "shanxi_township_catalog.csv").read_bytes(), actor="t", replace=False)
    for code in (XJ, GL, MJ):
        store.grant_powers(code, None, actor="t")
    from datetime import UTC, datetime

    store.create_agreement(
        department_code=BUREAU,
        township_code=XJ,
        seal_number=11,
        matter_codes=[HEALTH_LICENCE_FIRST],
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        ends_at=datetime(2036, 1, 1, tzinfo=UTC),  # 004: an agreement states its term
        actor="t",
        basis="委托协议",
    )
    seals = {}
    for code, name in ((XJ, "兴江乡"), (GL, "古龙岗镇"), (MJ, "梅窖镇")):
        seal = issue_township_seal(seal_registry, name, code, now=None)
        seal_registry.activate(seal.seal_id, actor="t", approved_by="乡长")
        seals[code] = seal.seal_id
    no2 = seal_registry.issue_seal(
        name="兴国县行政审批局行政审批专用章（11）",
        kind=SealKind.DEPARTMENT_NO2,
        number=11,
        township="兴江乡",
        township_code=XJ,
        department="兴国县行政审批局",
        department_code=BUREAU,
        custodian="李保管",
        requested_by=BUREAU,
        approved_by="局长",
        actor="t",
    )
    seal_registry.activate(no2.seal_id, actor="t", approved_by="局长")
    seals["no2"] = no2.seal_id
    # A matter 兴江 may stamp an acceptance notice for with its own seal.
    accept_matter = next(
        p.matter.code for p in store.powers(XJ) if "受理" in {s.value for s in p.power.stages}
    )

    settings = ks_settings.model_copy(
        update={
            "log_key_source": f"file:{tmp_path / 'log.key'}",
            "signature_level": "B-T",
            "metrics_token_source": metrics_token_source(tmp_path),
        }
    )
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    with client:
        people = {
            "admin": ("COUNTY_ADMIN", XG, None),
            "xj.clerk": ("TOWNSHIP_CLERK", XJ, f"{XJ}-BMFW"),
            "xj.clerk2": ("TOWNSHIP_CLERK", XJ, f"{XJ}-BMFW"),
            "xj.principal": ("TOWNSHIP_PRINCIPAL", XJ, f"{XJ}-BMFW"),
            "mj.clerk": ("TOWNSHIP_CLERK", MJ, f"{MJ}-BMFW"),
            "gl.clerk": ("TOWNSHIP_CLERK", GL, f"{GL}-BMFW"),
            "mj.principal": ("TOWNSHIP_PRINCIPAL", MJ, f"{MJ}-BMFW"),
            "bureau": ("DEPARTMENT_OFFICER", BUREAU, None),
            "auditor": ("AUDITOR", XG, None),
        }
        headers = {}
        with transaction(client.app.state.services.sessions) as s:
            for username, (role, org, centre) in people.items():
                a = create_account(
                    s,
                    username=username,
                    display_name=username,
                    role=role,
                    org_code=org,
                    service_centre=centre,
                    created_by="t",
                )
                headers[username] = {
                    "Authorization": f"Bearer {issue_token(s, a.account_id, name='t').secret}"
                }
        yield {"client": client, "h": headers, "seals": seals, "accept_matter": accept_matter}


def _submit(
    c: TestClient, h: dict, seal: str, matter: str, stage: str, kind: str, key: str, pdf: bytes = PDF
):  # type: ignore[no-untyped-def]
    return c.post(
        "/v1/signing-requests",
        data={
            "seal_id": seal,
            "matter_code": matter,
            "stage": stage,
            "document_kind": kind,
            "reason": "办理",
            "idempotency_key": key,
            "applicant": "张三",
        },
        files={"file": ("doc.pdf", pdf, "application/pdf")},
        headers=h,
    )


def _check_sealed(c: TestClient, h: dict, view: dict, admin: dict) -> None:  # type: ignore[type-arg]
    """The sealed PDF validates (pyHanko, county root as the only anchor); its receipt proves the entry."""
    from cryptography.hazmat.primitives import serialization

    from ledger import NoteVerifier, verify_receipt
    from tests._fixtures.signer import validate_all

    r = c.get(f"/v1/signing-requests/{view['request_id']}/document", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    import hashlib

    assert hashlib.sha256(r.content).hexdigest() == view["sealed_sha256"]
    root = c.app.state.services.county_pki.root_certificate.public_bytes(serialization.Encoding.DER)
    [status] = validate_all(r.content, root)
    assert status.intact and status.valid and status.trusted
    c.post("/v1/ledger/checkpoint", headers=admin)
    receipt = c.get(f"/v1/signing-requests/{view['request_id']}/receipt", headers=h)
    assert receipt.status_code == 200, receipt.text
    vkey = c.get("/v1/public/log-key").text.strip()
    proven = verify_receipt(receipt.text, [NoteVerifier.from_vkey(vkey)])
    assert proven.index == view["ledger_index"]
    assert receipt.text == c.get(f"/v1/public/proofs/{view['ledger_index']}").text
    # the evidence record (issue 19 item 4b): none until the day's checkpoint is timestamped
    evidence = f"/v1/public/proofs/{view['ledger_index']}?evidence=1"
    pending = c.get(evidence)
    assert pending.status_code == 404 and pending.json()["code"] == "LEDGER_EVIDENCE_PENDING", pending.text
    from api._ltv import anchor_for

    assert anchor_for(c.app.state.services).run_round().stamped is not None
    record = c.get(evidence)
    assert record.status_code == 200 and record.headers["content-type"] == "application/json"
    body = record.json()
    assert body["format"] == "yizhang-evidence-record/1" and body["index"] == view["ledger_index"]
    assert [link["kind"] for link in body["chain"]] == ["STAMP"]
    assert verify_receipt(body["proof"], [NoteVerifier.from_vkey(vkey)]).index == view["ledger_index"]


def test_township_seal_allowed_and_cross_township_refused(county) -> None:
    c, h, seals = county["client"], county["h"], county["seals"]
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "key-0001")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "SEALED" and body["requires_approval"] is False, body
    assert body["document_number"].startswith("兴江受理〔") and body["ledger_index"] is not None
    _check_sealed(c, h["xj.clerk"], body, h["admin"])
    # The same key and payload: the same request, not a second one.
    again = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "key-0001")
    assert again.status_code == 200 and again.json()["request_id"] == body["request_id"]
    other = _submit(
        c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "不予受理通知书", "key-0001"
    )
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"

    # 梅窖镇's clerk tries 兴江乡's seal: refused by the policy, with its reason code.
    r = _submit(c, h["mj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "key-0002")
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "POLICY_DENIED"
    assert "OPERATOR_WRONG_TOWNSHIP" in {x["code"] for x in r.json()["reasons"]}
    # A stage the township does not hold for that matter.
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "审批", "准予决定书", "key-0003")
    assert r.status_code == 403 and r.json()["reasons"]
    # 梅窖镇 sees none of 兴江乡's requests: only its own clerk's refused attempt (issue 21).
    seen = c.get("/v1/signing-requests", headers=h["mj.principal"]).json()
    assert [(v["status"], v["submitted_by"] != "") for v in seen] == [("DENIED", True)], seen
    r = c.get(f"/v1/signing-requests/{body['request_id']}", headers=h["mj.clerk"])
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"

    # Refusals are in the ledger, and the ledger audits clean.
    audit = c.get("/v1/ledger/audit", headers=h["auditor"]).json()
    assert audit["ok"] is True and audit["size"] >= 2
    metrics = c.get("/metrics", headers=METRICS_AUTH).text
    assert 'yizhang_denials_total{code="OPERATOR_WRONG_TOWNSHIP"}' in metrics


def test_no2_seal_needs_the_principal(county) -> None:
    c, h, seals = county["client"], county["h"], county["seals"]
    args = (seals["no2"], HEALTH_LICENCE_FIRST, "审批", "许可证及其附件")
    r = _submit(c, h["xj.clerk"], *args, "no2-0001")
    assert r.status_code == 201, r.text
    pending = r.json()
    assert pending["status"] == "PENDING_APPROVAL" and pending["requires_approval"] is True
    rid = pending["request_id"]

    queue = c.get("/v1/signing-requests?status=PENDING_APPROVAL", headers=h["xj.principal"]).json()
    assert [q["request_id"] for q in queue] == [rid]
    # Not the clerk, not the other township's principal.
    r = c.post(f"/v1/signing-requests/{rid}/approve", json={"comment": "同意"}, headers=h["xj.clerk"])
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"
    r = c.post(f"/v1/signing-requests/{rid}/approve", json={"comment": "同意"}, headers=h["mj.principal"])
    assert r.status_code == 403 and r.json()["code"] == "OTHER_ORGANISATION"
    r = c.post(f"/v1/signing-requests/{rid}/approve", json={"comment": "同意"}, headers=h["xj.principal"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "SEALED" and r.json()["decision_comment"] == "同意", r.text
    sealed = r.json()
    _check_sealed(c, h["xj.clerk"], sealed, h["admin"])
    r = c.post(f"/v1/signing-requests/{rid}/approve", json={}, headers=h["xj.principal"])
    assert r.status_code == 409 and r.json()["code"] == "NOT_PENDING"
    # The department sees uses of its No. 2 seal.
    assert rid in {v["request_id"] for v in c.get("/v1/signing-requests", headers=h["bureau"]).json()}

    # A second one, rejected with a comment: logged as a refusal.
    r = _submit(c, h["xj.clerk2"], *args, "no2-0002")
    rid2 = r.json()["request_id"]
    r = c.post(f"/v1/signing-requests/{rid2}/reject", json={"comment": ""}, headers=h["xj.principal"])
    assert r.status_code == 400 and r.json()["code"] == "COMMENT_REQUIRED"
    r = c.post(f"/v1/signing-requests/{rid2}/reject", json={"comment": "材料不全"}, headers=h["xj.principal"])
    assert r.status_code == 200 and r.json()["status"] == "REJECTED"
    # Not sealed: nothing to download, no status change.
    r = c.get(f"/v1/signing-requests/{rid2}/document", headers=h["xj.clerk"])
    assert r.status_code == 409 and r.json()["code"] == "NOT_SEALED"
    r = c.post(
        f"/v1/signing-requests/{rid2}/status",
        json={"status": "REVOKED", "reason": "x"},
        headers=h["xj.principal"],
    )
    assert r.status_code == 409 and r.json()["code"] == "NOT_SEALED"
    # The issued permit is later revoked (撤销): a ledger entry, the request's status, a feed event.
    size_before = c.get("/v1/ledger/size", headers=h["auditor"]).json()["size"]
    revoke = {"status": "REVOKED", "reason": "以欺骗手段取得"}
    r = c.post(f"/v1/signing-requests/{rid}/status", json=revoke, headers=h["xj.clerk"])
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"
    r = c.post(f"/v1/signing-requests/{rid}/status", json=revoke, headers=h["bureau"])
    assert r.status_code == 200 and r.json()["decision_status"] == "REVOKED", r.text
    assert r.json()["status_ledger_index"] == size_before  # the entry just appended
    history = c.get(f"/v1/signing-requests/{rid}/history", headers=h["xj.clerk"]).json()
    assert [(e["status"], e["ledger_index"]) for e in history] == [
        ("ISSUED", sealed["ledger_index"]),
        ("REVOKED", size_before),
    ]
    assert history[1]["reason"] == "以欺骗手段取得"
    r = c.post(
        f"/v1/signing-requests/{rid}/status", json={"status": "CHANGED", "reason": "x"}, headers=h["bureau"]
    )
    assert r.status_code == 409 and r.json()["code"] == "DECISION_FINAL"
    assert c.get("/v1/ledger/size", headers=h["auditor"]).json()["size"] == size_before + 1
    feed = c.get("/v1/supervision/feed?cursor=0", headers=h["admin"]).json()
    mine = [e["event"] for e in feed["events"] if e["request_id"] == rid]
    assert mine == ["DECISION_ISSUED", "DECISION_STATUS_CHANGED"]
    assert all("张三" not in json.dumps(e, ensure_ascii=False) for e in feed["events"])  # no personal data
    assert c.get("/v1/ledger/audit", headers=h["auditor"]).json()["ok"] is True
    # A verifier elsewhere learns that the permit was revoked.
    c.post("/v1/seals/crl/publish", headers=h["admin"])
    pdf = c.get(f"/v1/signing-requests/{rid}/document", headers=h["xj.clerk"]).content
    report = c.post("/v1/verify", files={"file": ("permit.pdf", pdf, "application/pdf")}).json()
    assert "DECISION_REVOKED" in json.dumps(report), json.dumps(report, ensure_ascii=False)[:3000]

    report = c.get(
        f"/v1/reports/monthly?month={pending['created_at'][:7]}&department_code={BUREAU}", headers=h["bureau"]
    )
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = report.text.lstrip("\ufeff").strip().splitlines()
    # Chinese headers, names not codes (issue 23)
    assert lines[0] == "月份,乡镇,委托部门,事项代码,事项名称,状态,件数" and len(lines) == 3  # 已用印, 已驳回
    month = pending["created_at"][:7]
    _check_report_pdf(
        c.get(f"/v1/reports/monthly?month={month}&department_code={BUREAU}&format=pdf", headers=h["bureau"]),
        month,
    )
    by_accept = {**h["bureau"], "Accept": "application/pdf"}
    url = f"/v1/reports/monthly?month={month}&department_code={BUREAU}"
    _check_report_pdf(c.get(url, headers=by_accept), month)
    r = c.get(f"/v1/reports/monthly?month=2026-01&department_code={BUREAU}", headers=h["mj.principal"])
    assert r.status_code == 403
    r = c.get(f"/v1/reports/anomalies?month={pending['created_at'][:7]}", headers=h["admin"])
    assert r.status_code == 200 and any(k.endswith("REJECTED_BY_PRINCIPAL") for k in r.json()["refused"]), (
        r.text
    )


def _check_report_pdf(r, month: str) -> None:  # type: ignore[no-untyped-def]
    """The PDF form of the monthly report: qpdf finds it sound; its text names township, month, counts."""
    import subprocess
    import tempfile

    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF-")
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(r.content)
        f.flush()
        check = subprocess.run(["qpdf", "--check", f.name], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        fonts = subprocess.run(["pdffonts", f.name], capture_output=True, text=True).stdout
        assert "CID TrueType" in fonts and "yes" in fonts.splitlines()[-1]  # embedded
        text = subprocess.run(["pdftotext", "-layout", f.name, "-"], capture_output=True, text=True).stdout
    year, mon = month.split("-")
    assert f"{year}年{int(mon)}月" in text and "行政审批专用章使用情况月报" in text, text
    assert "兴江乡" in text and BUREAU in text, text
    assert "本月办理事项 2 件，其中二号章（行政审批专用章）用印 1 次" in text, text
    assert "已用印" in text and "已驳回" in text and HEALTH_LICENCE_FIRST in text, text


def test_bad_submissions_are_4xx(county) -> None:
    c, h, seals = county["client"], county["h"], county["seals"]
    r = _submit(
        c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "bad-0001", b"GIF89a"
    )
    assert r.status_code == 400 and r.json()["code"] == "NOT_A_PDF"
    r = _submit(c, h["xj.clerk"], "nope", county["accept_matter"], "受理", "受理通知书", "bad-0002")
    assert r.status_code == 404 and r.json()["code"] == "SEAL_NOT_FOUND"
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "午饭", "受理通知书", "bad-0003")
    assert r.status_code == 400 and r.json()["code"] == "STAGE_UNKNOWN"
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "情书", "bad-0004")
    assert r.status_code == 400 and r.json()["code"] == "DOCUMENT_KIND_UNKNOWN"
    r = c.post("/v1/signing-requests", data={"seal_id": "x"}, headers=h["xj.clerk"])
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_FAILED"
    big = b"%PDF-" + b"0" * (c.app.state.services.settings.max_pdf_bytes + 300_000)
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "bad-0005", big)
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"
    r = _submit(c, h["admin"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "bad-0006")
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"


def test_batch_answers_each_item(county) -> None:
    c, h, seals = county["client"], county["h"], county["seals"]
    items = [
        {
            "seal_id": seals[XJ],
            "matter_code": county["accept_matter"],
            "stage": "受理",
            "document_kind": "受理通知书",
            "reason": "办理",
            "idempotency_key": "batch-0001",
        },
        {
            "seal_id": seals[MJ],
            "matter_code": county["accept_matter"],
            "stage": "受理",
            "document_kind": "受理通知书",
            "reason": "办理",
            "idempotency_key": "batch-0002",
        },
        {"seal_id": seals[XJ], "reason": "缺字段"},
    ]
    r = c.post(
        "/v1/signing-requests/batch",
        data={"items": json.dumps(items, ensure_ascii=False)},
        files=[("files", (f"{i}.pdf", PDF, "application/pdf")) for i in range(3)],
        headers=h["xj.clerk"],
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 403, 422]
    assert results[0]["request"]["status"] == "SEALED"
    assert "OPERATOR_WRONG_TOWNSHIP" in {x["code"] for x in results[1]["error"]["reasons"]}
    r = c.post(
        "/v1/signing-requests/batch",
        data={"items": "[]"},
        files=[("files", ("a.pdf", PDF, "application/pdf"))],
        headers=h["xj.clerk"],
    )
    assert r.status_code == 400 and r.json()["code"] == "BATCH_ITEMS_INVALID"


def test_supervision_feed_is_scoped(county) -> None:
    c, h = county["client"], county["h"]
    r = c.get("/v1/supervision/feed?cursor=0", headers=h["bureau"])
    assert r.status_code == 200 and r.json() == {"events": [], "next_cursor": 0}
    assert c.get("/v1/supervision/feed", headers=h["xj.clerk"]).json()["code"] == "ROLE_FORBIDDEN"


def test_a_county_day(county) -> None:
    """Three townships at work: sealing at each window, a No. 2 seal use approved, a matter outside the
    powers refused, a cross-township attempt refused, a decision revoked, the monthly report, a clean audit
    and every receipt proven against a signed checkpoint."""
    from ledger import NoteVerifier, verify_receipt

    c, h, seals, matter = county["client"], county["h"], county["seals"], county["accept_matter"]
    sealed: list[dict] = []  # type: ignore[type-arg]
    # 兴江乡 also uses its No. 2 seal below; both draw from 兴江乡's one number sequence.
    for n, (clerk, code) in enumerate((("xj.clerk", XJ), ("gl.clerk", GL), ("mj.clerk", MJ))):
        for k in range(2):
            r = _submit(c, h[clerk], seals[code], matter, "受理", "受理通知书", f"county-day-{n}-{k}")
            assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
            sealed.append(r.json())
    numbers = [v["document_number"] for v in sealed]
    assert len(set(numbers)) == len(numbers)
    assert {v["document_number"][:2] for v in sealed} == {"兴江", "古龙", "梅窖"}

    r = _submit(
        c, h["xj.clerk"], seals["no2"], HEALTH_LICENCE_FIRST, "审批", "许可证及其附件", "county-day-no2"
    )
    assert r.json()["status"] == "PENDING_APPROVAL"
    r = c.post(
        f"/v1/signing-requests/{r.json()['request_id']}/approve",
        json={"comment": "同意"},
        headers=h["xj.principal"],
    )
    assert r.status_code == 200 and r.json()["status"] == "SEALED", r.text
    permit = r.json()
    sealed.append(permit)

    # Outside the powers: 残疾人证 is 帮办代办, never stamped by a township.
    r = _submit(c, h["gl.clerk"], seals[GL], "XG-07", "受理", "受理通知书", "county-day-outside")
    assert r.status_code == 403 and r.json()["code"] == "POLICY_DENIED"
    assert r.json()["reasons"], r.text
    # Across townships: 梅窖镇's window with 古龙岗镇's seal.
    r = _submit(c, h["mj.clerk"], seals[GL], matter, "受理", "受理通知书", "county-day-cross")
    assert r.status_code == 403 and "OPERATOR_WRONG_TOWNSHIP" in {x["code"] for x in r.json()["reasons"]}

    r = c.post(
        f"/v1/signing-requests/{permit['request_id']}/status",
        json={"status": "REVOKED", "reason": "申请人以欺骗手段取得许可"},
        headers=h["xj.principal"],
    )
    assert r.status_code == 200 and r.json()["decision_status"] == "REVOKED"

    month = permit["created_at"][:7]
    report = c.get(f"/v1/reports/monthly?month={month}", headers=h["admin"]).text.lstrip("\ufeff")
    rows = [line.split(",") for line in report.strip().splitlines()[1:]]
    assert {r[1] for r in rows} == {"兴江乡", "古龙岗镇", "梅窖镇"}
    assert sum(int(r[6]) for r in rows if r[5] == "已用印") == len(sealed)

    audit = c.get("/v1/ledger/audit", headers=h["auditor"]).json()
    assert audit["ok"] is True and audit["first_bad_index"] is None
    assert c.post("/v1/ledger/checkpoint", headers=h["admin"]).status_code == 200
    verifier = NoteVerifier.from_vkey(c.get("/v1/public/log-key").text.strip())
    for v in sealed:
        receipt = c.get(f"/v1/signing-requests/{v['request_id']}/receipt", headers=h["auditor"]).text
        assert verify_receipt(receipt, [verifier]).index == v["ledger_index"]
    metrics = c.get("/metrics", headers=METRICS_AUTH).text
    assert (
        "yizhang_signings_total{" in metrics
        and 'yizhang_denials_total{code="OPERATOR_WRONG_TOWNSHIP"}' in metrics
    )


def test_no2_and_township_numbers_do_not_clash(county) -> None:
    c, h, seals = county["client"], county["h"], county["seals"]
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "clash-township")
    assert r.json()["status"] == "SEALED"
    r = _submit(c, h["xj.clerk"], seals["no2"], HEALTH_LICENCE_FIRST, "审批", "许可证及其附件", "clash-no2")
    r = c.post(
        f"/v1/signing-requests/{r.json()['request_id']}/approve",
        json={"comment": "同意"},
        headers=h["xj.principal"],
    )
    assert r.status_code == 200 and r.json()["status"] == "SEALED", r.text


def test_concurrent_retries_seal_once(county) -> None:
    """Six copies of one submission at once (a client retrying hard): one request, one sealing, no 500."""
    from concurrent.futures import ThreadPoolExecutor

    c, h, seals = county["client"], county["h"], county["seals"]

    def go(_: int):  # type: ignore[no-untyped-def]
        return _submit(
            c, h["mj.clerk"], seals[MJ], county["accept_matter"], "受理", "受理通知书", "retry-storm-1"
        )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(go, range(6)))
    assert all(a.status_code in (200, 201, 409) for a in answers), [a.text for a in answers]
    ok = [a.json() for a in answers if a.status_code in (200, 201)]
    assert ok and len({a["request_id"] for a in ok}) == 1
    listed = [v for v in c.get("/v1/signing-requests", headers=h["mj.clerk"]).json() if v["reason"] == "办理"]
    assert len(listed) == 1
    sealed = c.get(f"/v1/signing-requests/{ok[0]['request_id']}", headers=h["mj.clerk"]).json()
    assert sealed["status"] == "SEALED" and sealed["document_number"].endswith("〕1号")


def test_a_retry_finishes_a_sealing_that_was_cut_off(county) -> None:
    """The first attempt was approved but not sealed (here: no signer wired, as while a token is down); the
    client's retry with the same key seals it, once, and a further retry is a pure replay."""
    c, h, seals = county["client"], county["h"], county["seals"]
    services = c.app.state.services
    signer = services.signer
    services.wired.signer = None
    try:
        first = _submit(
            c, h["gl.clerk"], seals[GL], county["accept_matter"], "受理", "受理通知书", "cut-off-1"
        )
    finally:
        services.wired.signer = signer
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "APPROVED" and first.json()["document_number"] is None
    again = _submit(c, h["gl.clerk"], seals[GL], county["accept_matter"], "受理", "受理通知书", "cut-off-1")
    assert again.status_code == 200, again.text
    view = again.json()
    assert view["request_id"] == first.json()["request_id"]
    assert view["status"] == "SEALED" and view["document_number"].endswith("〕1号")
    _check_sealed(c, h["gl.clerk"], view, h["admin"])
    third = _submit(c, h["gl.clerk"], seals[GL], county["accept_matter"], "受理", "受理通知书", "cut-off-1")
    assert third.status_code == 200 and third.json()["sealed_sha256"] == view["sealed_sha256"]
    feed = c.get("/v1/supervision/feed?cursor=0", headers=h["admin"]).json()
    issued = [e for e in feed["events"] if e["request_id"] == view["request_id"]]
    assert [e["event"] for e in issued] == ["DECISION_ISSUED"]
