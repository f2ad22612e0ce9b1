"""apply_seal end to end on the real token, real policies and the real ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests._fixtures.signer import ACCEPTANCE_DATA, validate_all

pytestmark = pytest.mark.softhsm
ACCEPTANCE_SERIES = "360732-11/ACCEPTANCE"  # 兴江乡's acceptance papers (issue 22, leak 15)


def _request(seal: Any, xingjiang_clerk: Any, **kw: Any) -> Any:
    from signer import SealRequest

    args: dict[str, Any] = {
        "seal_id": seal.seal_id,
        "matter_code": "SX-002",  # 临时救助: 兴江乡 may accept and review it
        "stage": "受理",
        "document_kind": "受理通知书",
        "idempotency_key": "req-0001",
        "operator": xingjiang_clerk,
        "reason": "受理临时救助申请",
        "template": "acceptance_notice",
        "template_data": ACCEPTANCE_DATA,
        "level": "B-T",
    }
    args.update(kw)
    return SealRequest(**args)


def test_apply_seal_logs_numbers_and_replays(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, county_pki: Any, engine: Any
) -> None:
    from cryptography.hazmat.primitives import serialization

    from core.db import transaction
    from signer import read_binding
    from signer._numbers import numbers

    first = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk))
    # an acceptance notice: the township's acceptance series, not its approval series (issue 22, leak 15)
    assert first.document_number.startswith("兴江受理〔") and first.document_number.endswith("〕1号")
    assert first.sha256 == hashlib.sha256(first.pdf).hexdigest()
    root = county_pki.root_certificate.public_bytes(serialization.Encoding.DER)
    [status] = validate_all(first.pdf, root)
    assert status.intact and status.valid and status.trusted
    binding = read_binding(first.pdf)[0]
    assert binding["document_number"] == first.document_number
    assert binding["stage"] == "ACCEPT" and binding["document_kind"] == "ACCEPTANCE_NOTICE"

    entry = ledger.get(first.ledger_index)
    assert entry.kind.value == "SEAL_SIGNED" and entry.body["document_sha256"] == first.sha256

    again = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk))
    assert again.replayed and again.pdf == first.pdf and again.ledger_index == first.ledger_index

    second = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="req-0002"))
    assert second.document_number.endswith("〕2号")
    assert second.ledger_index == first.ledger_index + 1

    with transaction(engine) as s:
        seq = numbers(s, ACCEPTANCE_SERIES, 2026)
    assert [(n, st) for n, _, st in seq] == [(1, "USED"), (2, "USED")]


def test_idempotency_key_reused_for_other_request(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any
) -> None:
    from core.errors import Conflict

    sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk))
    with pytest.raises(Conflict) as err:
        sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, matter_code="SX-004"))
    assert err.value.code == "IDEMPOTENCY_KEY_REUSED"


def test_refusal_produces_no_document_and_a_ledger_entry(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    from core.db import transaction
    from core.errors import PolicyDenied
    from signer._numbers import numbers

    with pytest.raises(PolicyDenied) as err:
        # 临时救助 may only be accepted/reviewed in the township, never decided there
        sealer.apply_seal(
            _request(
                xingjiang_seal,
                xingjiang_clerk,
                stage="审批",
                document_kind="不予批准决定书",
                template="refusal_decision",
            )
        )
    assert err.value.code == "SIGNING_REFUSED"
    codes = [r["code"] for r in err.value.details["reasons"]]
    assert "STAGE_NOT_DELEGATED" in codes
    report = ledger.audit()
    assert report.ok and report.size == 1
    with transaction(engine) as s:
        assert numbers(s, ACCEPTANCE_SERIES, 2026) == []


def test_failure_after_draw_voids_the_number(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    from core.db import transaction
    from core.errors import Unavailable
    from signer import HttpTimeStamper
    from signer._numbers import numbers

    working = sealer.timestamper
    sealer._timestamper = HttpTimeStamper("http://127.0.0.1:9/tsa", timeout_s=2)  # nothing listens there
    with pytest.raises(Unavailable) as err:
        sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk))
    assert err.value.code == "TSA_UNAVAILABLE"
    sealer._timestamper = working
    ok = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="req-after"))
    assert ok.document_number.endswith("〕2号")  # 1 was voided, never reused
    with transaction(engine) as s:
        assert [(n, st) for n, _, st in numbers(s, ACCEPTANCE_SERIES, 2026)] == [
            (1, "VOID"),
            (2, "USED"),
        ]
    report = ledger.audit()
    assert report.ok and report.size == 2  # DOCUMENT_NUMBER_VOIDED, SEAL_SIGNED


def test_bad_input_codes(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, permit_pdf: bytes, ledger: Any
) -> None:
    from core.errors import BadInput

    def code(**kw: Any) -> str:
        with pytest.raises(BadInput) as err:
            sealer.apply_seal(
                _request(xingjiang_seal, xingjiang_clerk, template=None, template_data=None, **kw)
            )
        return err.value.code

    assert code(unverified_pdf=b"hello") == "PDF_NOT_PDF"
    assert code(unverified_pdf=_encrypted(permit_pdf)) == "PDF_ENCRYPTED"
    assert code(unverified_pdf=b"%PDF-1.7\n garbage") == "PDF_MALFORMED"
    from signer import Placement

    protected = Placement(page=0, box=(300, 100, 420, 220), protected=((0, (350, 150, 500, 200)),))
    assert code(unverified_pdf=permit_pdf, placement=protected) == "STAMP_OVERLAPS_PROTECTED"
    small = sealer.settings.model_copy(update={"max_pdf_bytes": 1000})
    sealer.settings = small
    assert code(unverified_pdf=permit_pdf, idempotency_key="big") == "PDF_TOO_LARGE"
    assert ledger.audit().size == 0  # bad input leaves no trace, not even a voided number


def test_token_failure_mid_way_voids_the_number_and_releases_nothing(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any, keystore: Any
) -> None:
    from core.db import transaction
    from core.errors import KeystoreError
    from signer._numbers import numbers
    from signer._storage import SealedDocumentRow

    keystore.destroy_key(xingjiang_seal.key_label, private_only=True)  # the token loses the key mid-service
    with pytest.raises(KeystoreError) as err:
        sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="lost-key"))
    assert err.value.family == "keystore"
    with transaction(engine) as s:
        assert [(n, st) for n, _, st in numbers(s, ACCEPTANCE_SERIES, 2026)] == [(1, "VOID")]
        assert s.get(SealedDocumentRow, "lost-key") is None
    report = ledger.audit()
    assert report.ok and report.size == 1  # only DOCUMENT_NUMBER_VOIDED


def test_no2_seal_needs_agreement_and_principal(
    sealer: Any, seal_registry: Any, policy_store: Any, county_pki: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import serialization

    from core.errors import PolicyDenied
    from keystore import SealKind
    from tests._fixtures.keystore import FIXED_NOW
    from tests._fixtures.policies import (
        APPROVAL_BUREAU,
        HEALTH_LICENCE_FIRST,
        MEIJIAO,
        meijiao_clerk,
        meijiao_principal,
    )
    from tests._fixtures.signer import PERMIT_DATA

    event = seal_registry.issue_seal(
        name="兴国县行政审批局行政审批专用章（13）",
        kind=SealKind.DEPARTMENT_NO2,
        number=13,
        township="梅窖镇",
        township_code=MEIJIAO,
        department="兴国县行政审批局",
        department_code=APPROVAL_BUREAU,
        custodian="梅窖镇保管员",
        requested_by="兴国县行政审批局",
        approved_by="局长",
        actor="县行政审批局-张三",
        now=FIXED_NOW,
    )
    seal_registry.activate(event.seal_id, actor="县行政审批局-张三", approved_by="局长", now=FIXED_NOW)
    seal = seal_registry.get(event.seal_id)
    start = datetime.now(UTC) - timedelta(days=30)
    policy_store.create_agreement(
        department_code=APPROVAL_BUREAU,
        township_code=MEIJIAO,
        seal_number=13,
        matter_codes=[HEALTH_LICENCE_FIRST],
        starts_at=start,
        ends_at=start + timedelta(days=365),
        actor="bureau-admin",
        basis="“2号章”委托协议书",
    )
    data = {k: v for k, v in PERMIT_DATA.items() if k not in ("document_number", "issuer")}
    kw = dict(
        matter_code=HEALTH_LICENCE_FIRST,
        stage="审批",
        document_kind="许可证及其附件",
        template="public_place_hygiene_permit",
        template_data=data,
        level="B-LT",
    )
    with pytest.raises(PolicyDenied) as err:
        sealer.apply_seal(_request(seal, meijiao_clerk(), idempotency_key="no2-a", **kw))
    assert "APPROVAL_MISSING" in [r["code"] for r in err.value.details["reasons"]]

    done = sealer.apply_seal(
        _request(seal, meijiao_clerk(), approver=meijiao_principal(), idempotency_key="no2-b", **kw)
    )
    # the department's series: the licence is in its name (issue 22, leak 15)
    assert done.document_number.startswith("兴国县行政审批局审批〔") and done.level == "B-LT"
    root = county_pki.root_certificate.public_bytes(serialization.Encoding.DER)
    [status] = validate_all(done.pdf, root)
    assert status.intact and status.valid and status.trusted
    import subprocess
    from pathlib import Path

    out = Path(__file__).resolve().parents[3] / "test-output" / "signer"
    out.mkdir(parents=True, exist_ok=True)
    (out / "permit_no2_blt.pdf").write_bytes(done.pdf)
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "70",
            "-png",
            "-singlefile",
            str(out / "permit_no2_blt.pdf"),
            str(out / "permit_no2_blt"),
        ],
        check=True,
    )


def test_county_attestation_keeps_the_township_seal_valid(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, seal_registry: Any, county_pki: Any, ledger: Any
) -> None:
    from cryptography.hazmat.primitives import serialization

    from core.errors import BadInput, PolicyDenied
    from keystore import SealKind
    from policies import Actor, Role
    from signer import AttestRequest, read_binding
    from tests._fixtures.keystore import FIXED_NOW

    sealed = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk))
    event = seal_registry.issue_seal(
        # the keystore models department seals only as No. 2 seals: one stands in for the bureau's own seal
        name="兴国县行政审批局行政审批专用章（20）",
        kind=SealKind.DEPARTMENT_NO2,
        number=20,
        township="兴国县行政审批局",
        township_code="360732-20",
        department="兴国县行政审批局",
        department_code="县行政审批局",
        custodian="局保管员",
        requested_by="兴国县行政审批局",
        approved_by="局长",
        actor="县行政审批局-张三",
        now=FIXED_NOW,
    )
    seal_registry.activate(event.seal_id, actor="县行政审批局-张三", approved_by="局长", now=FIXED_NOW)
    officer = Actor(user_id="bureau-zhao", role=Role.DEPARTMENT_OFFICER, org_code="县行政审批局")
    attested = sealer.attest(
        AttestRequest(seal_id=event.seal_id, sealed_pdf=sealed.pdf, idempotency_key="att-1", operator=officer)
    )
    assert attested.pdf.startswith(sealed.pdf) and attested.document_number == sealed.document_number
    root = county_pki.root_certificate.public_bytes(serialization.Encoding.DER)
    statuses = validate_all(attested.pdf, root)
    # township seal, department seal, document timestamp (county default B-LTA)
    assert len(statuses) == 3 and all(s.intact and s.valid and s.trusted for s in statuses)
    assert read_binding(attested.pdf)[1]["attests_document_number"] == sealed.document_number
    assert ledger.audit().size == 2

    with pytest.raises(PolicyDenied) as err:  # a township seal cannot attest
        sealer.attest(
            AttestRequest(
                seal_id=xingjiang_seal.seal_id,
                sealed_pdf=sealed.pdf,
                idempotency_key="att-2",
                operator=officer,
            )
        )
    assert err.value.code == "ATTEST_SEAL_NOT_DEPARTMENT"
    from signer import render_template
    from tests._fixtures.signer import PERMIT_DATA

    with pytest.raises(BadInput) as bad:  # nothing to attest
        sealer.attest(
            AttestRequest(
                seal_id=event.seal_id,
                sealed_pdf=render_template("public_place_hygiene_permit", PERMIT_DATA),
                idempotency_key="att-3",
                operator=officer,
            )
        )
    assert bad.value.code == "ATTEST_NOT_SEALED"


def test_verification_qr_is_drawn_and_sealed(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, county_pki: Any
) -> None:
    import subprocess
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization

    from core.errors import BadInput
    from signer import read_binding

    done = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, verify_qr=True))
    root = county_pki.root_certificate.public_bytes(serialization.Encoding.DER)
    [status] = validate_all(done.pdf, root)
    assert status.intact and status.valid and status.trusted and status.coverage.name == "ENTIRE_FILE"
    out = Path(__file__).resolve().parents[3] / "test-output" / "signer"
    out.mkdir(parents=True, exist_ok=True)
    f = out / "acceptance_qr.pdf"
    f.write_bytes(done.pdf)
    text = subprocess.run(["pdftotext", str(f), "-"], capture_output=True, text=True).stdout
    assert "扫码验证" in text and "/verify" in text
    subprocess.run(
        ["pdftoppm", "-r", "70", "-png", "-singlefile", str(f), str(out / "acceptance_qr")], check=True
    )
    assert len(read_binding(done.pdf)[0]["source_sha256"]) == 64
    # the label is drawn whole, not clipped by the box it is cached in: at 72 dpi (1 px = 1 pt) the host
    # line ("http://127.0.0.1:8000/verify", ~100 pt at 7 pt) has ink 60 pt and more right of its start
    from PIL import Image

    from signer._qr import qr_box

    subprocess.run(
        ["pdftoppm", "-r", "72", "-gray", "-png", "-singlefile", str(f), str(out / "qr72")], check=True
    )
    page = Image.open(out / "qr72.png").convert("L")
    x0, y0, x1, _ = qr_box((0.0, 0.0, float(page.width), float(page.height)))
    band = page.crop(
        (int(x1 + 6 + 60), int(page.height - y0 - 28), int(x1 + 6 + 140), int(page.height - y0 - 18))
    )
    assert band.getextrema()[0] < 128
    # an already-signed PDF gets no QR code (it would change a page under the earlier signature)
    with pytest.raises(BadInput) as err:
        sealer.apply_seal(
            _request(
                xingjiang_seal,
                xingjiang_clerk,
                idempotency_key="qr-2",
                template=None,
                template_data=None,
                unverified_pdf=done.pdf,
                verify_qr=True,
            )
        )
    assert err.value.code == "QR_ON_SIGNED_PDF"


def _one_page(ops: bytes) -> bytes:
    """An unsigned A4 page drawn by the content ``ops``."""
    from io import BytesIO

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    w = PdfFileWriter()
    contents = w.add_object(generic.StreamObject(stream_data=ops))
    w.insert_page(
        PageObject(contents=contents, media_box=(0, 0, 595, 842), resources=generic.DictionaryObject())
    )
    out = BytesIO()
    w.write(out)
    return out.getvalue()


@pytest.mark.timeout(300)  # PDFIUM_LOCK taken again while the signing holds it would hang here
def test_verification_qr_if_blank_on_an_upload(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, engine: Any
) -> None:
    """``verify_qr="if_blank"`` on an upload: the code is printed where its place is blank and left out
    where the page has ink there; a page showing a number of the series is still refused. Both read the
    upload from one PDFium document per signing (issue 24)."""
    from core.db import transaction
    from core.errors import BadInput
    from signer._numbers import numbers
    from signer._qr import qr_box
    from signer._templates import render_template
    from tests._fixtures.signer import PERMIT_DATA
    from verifier import page_texts

    x0, y0, x1, y1 = qr_box((0.0, 0.0, 595.0, 842.0))
    ink = b"0 g %.2f %.2f 2 2 re f" % ((x0 + x1) / 2, (y0 + y1) / 2)  # in the middle of the code's place

    def seal(key: str, pdf: bytes) -> Any:
        upload = dict(template=None, template_data=None, unverified_pdf=pdf, verify_qr="if_blank")
        return sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key=key, **upload))

    blank = seal("qr-blank", _one_page(b""))
    assert "扫码验证" in page_texts(blank.pdf)[0]
    inked = seal("qr-ink", _one_page(ink))
    assert "扫码验证" not in page_texts(inked.pdf)[0]
    assert inked.document_number is not None
    with pytest.raises(BadInput) as err:
        seal("qr-number", render_template("public_place_hygiene_permit", PERMIT_DATA))
    assert err.value.code == "PDF_SHOWS_DOCUMENT_NUMBER", err.value
    with transaction(engine) as s:  # the refused upload drew no number
        assert [(n, st) for n, _, st in numbers(s, ACCEPTANCE_SERIES, 2026)] == [(1, "USED"), (2, "USED")]


def _encrypted(pdf: bytes) -> bytes:
    import subprocess
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.pdf", Path(d) / "out.pdf"
        src.write_bytes(pdf)
        subprocess.run(["qpdf", "--encrypt", "u", "o", "256", "--", str(src), str(dst)], check=True)
        return dst.read_bytes()


def test_async_entry_point_and_guard(sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any) -> None:
    import asyncio

    from core.errors import SigningError

    async def main() -> tuple[Any, str]:
        done = await sealer.async_apply_seal(
            _request(xingjiang_seal, xingjiang_clerk, idempotency_key="async-1")
        )
        try:
            sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="async-2"))
        except SigningError as exc:
            return done, exc.code
        return done, ""

    done, code = asyncio.run(main())
    assert done.document_number.endswith("〕1号")
    assert code == "SYNC_CALL_ON_EVENT_LOOP"
    # refused before any number was drawn: the next one is 2, and nothing was voided
    after = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="async-3"))
    assert after.document_number.endswith("〕2号")


def _reserve_as_if_crashed(sealer: Any, seal: Any, key: str) -> Any:
    """What a process that died mid-signing leaves: its number reserved, committed, never settled."""
    from core.db import transaction
    from policies import NumberFamily
    from signer._numbers import reserve_number, series_for, year_of

    with transaction(sealer.engine) as s:
        series = series_for(seal, NumberFamily.ACCEPTANCE)  # the request seals an acceptance notice
        return reserve_number(
            s,
            sequence=series.sequence,
            year=year_of(sealer.clock()),
            fmt=sealer.number_format,
            township=seal.township,
            county=seal.county,
            idempotency_key=key,
            now=sealer.clock(),
            fields=series.fields,
        )


def test_retry_after_a_crash_takes_over_the_reserved_number(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    from core.db import transaction
    from signer._numbers import numbers

    left = _reserve_as_if_crashed(sealer, xingjiang_seal, "crashed")
    other = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="meanwhile"))
    retried = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="crashed"))
    assert retried.document_number == left.number and retried.document_number.endswith("〕1号")
    assert other.document_number.endswith("〕2号")
    with transaction(engine) as s:
        assert [(n, st) for n, _, st in numbers(s, ACCEPTANCE_SERIES, 2026)] == [
            (1, "USED"),
            (2, "USED"),
        ]
    assert sealer.sweep_reservations(__import__("datetime").timedelta(0)) == []  # nothing left open
    report = ledger.audit()
    assert report.ok and report.size == 2


def test_sweeper_voids_what_a_dead_signing_left_and_logs_it(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    from datetime import timedelta

    from core.db import transaction
    from signer._numbers import numbers

    left = _reserve_as_if_crashed(sealer, xingjiang_seal, "dead")
    assert sealer.sweep_reservations() == []  # younger than number_reservation_ttl_s: kept for a retry
    assert sealer.sweep_reservations(timedelta(0)) == [left.number]
    assert sealer.sweep_reservations(timedelta(0)) == []  # once
    later = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="dead"))
    assert later.document_number.endswith("〕2号")  # the voided number is never reused, not even by its key
    with transaction(engine) as s:
        assert [(n, st) for n, _, st in numbers(s, ACCEPTANCE_SERIES, 2026)] == [
            (1, "VOID"),
            (2, "USED"),
        ]
    report = ledger.audit()
    assert report.ok and report.size == 2
    voided = ledger.get(0)
    assert voided.kind.value == "DOCUMENT_NUMBER_VOIDED"
    assert voided.body["reason"] == "RESERVATION_EXPIRED" and voided.body["document_number"] == left.number
    assert voided.body["idempotency_key"] == "dead" and "operator" not in voided.body  # salted (issue 21)
    assert ledger.opened([voided])[0]["operator"] == "yizhang:number-sweeper"


def test_a_signing_outliving_its_reservation_releases_nothing(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    """The sweeper voids the number while the signing still runs: the late settle fails, nothing leaves."""
    from datetime import timedelta

    from core.db import transaction
    from core.errors import Unavailable
    from signer._numbers import numbers
    from signer._storage import SealedDocumentRow
    from signer._tsa import CountyTimeStamper

    class SlowTsa(CountyTimeStamper):
        async def async_request_tsa_response(self, req: Any) -> Any:
            sealer.sweep_reservations(timedelta(0))  # meanwhile, the reservation's time ran out
            return await super().async_request_tsa_response(req)

    working = sealer.timestamper
    sealer._timestamper = SlowTsa(sealer.county_tsa())
    try:
        with pytest.raises(Unavailable) as err:
            sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="slow"))
    finally:
        sealer._timestamper = working
    assert err.value.code == "DOCUMENT_NUMBER_EXPIRED"
    with transaction(engine) as s:
        assert [(n, st) for n, _, st in numbers(s, ACCEPTANCE_SERIES, 2026)] == [(1, "VOID")]
        assert s.get(SealedDocumentRow, "slow") is None
    retry = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="slow"))
    assert retry.document_number.endswith("〕2号") and not retry.replayed
    report = ledger.audit()
    assert report.ok and report.size == 2  # DOCUMENT_NUMBER_VOIDED, SEAL_SIGNED


def test_on_settled_commits_with_the_settle_or_not_at_all(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    """The caller's writes go with the settle (PostgreSQL: in the ledger's round trip): both or neither."""
    from sqlalchemy import Column, MetaData, String, Table, bindparam, insert, select
    from sqlalchemy.exc import IntegrityError

    from core.db import transaction
    from signer._numbers import numbers
    from signer._storage import SealedDocumentRow

    caller = Table(
        "caller_record",
        MetaData(),
        Column("key", String(64), primary_key=True),
        Column("number", String(200)),
    )
    caller.create(engine)
    seen: list[tuple[str, int]] = []
    write = insert(caller).values(key=bindparam("key"), number=bindparam("number"))

    def record(doc: Any) -> list[Any]:
        seen.append((doc.document_number, doc.ledger_index))
        return [(write, {"key": doc.idempotency_key, "number": doc.document_number})]

    done = sealer.apply_seal(
        _request(xingjiang_seal, xingjiang_clerk, idempotency_key="kept"), on_settled=record
    )
    assert seen == [(done.document_number, done.ledger_index)]
    again = sealer.apply_seal(
        _request(xingjiang_seal, xingjiang_clerk, idempotency_key="kept"), on_settled=record
    )
    assert again.replayed and len(seen) == 1  # a replay settles nothing: not called

    # The caller's write fails in the database (its key exists): nothing of the settle stays.
    def clash(doc: Any) -> list[Any]:
        return [(write, {"key": "kept", "number": doc.document_number})]

    with pytest.raises(IntegrityError):
        sealer.apply_seal(
            _request(xingjiang_seal, xingjiang_clerk, idempotency_key="clash"), on_settled=clash
        )

    # The caller fails before writing anything: the same.
    class CallerFailed(Exception):
        pass

    def fail(doc: Any) -> list[Any]:
        raise CallerFailed

    with pytest.raises(CallerFailed):
        sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="lost"), on_settled=fail)

    with transaction(engine) as s:
        assert [tuple(r) for r in s.execute(select(caller)).all()] == [("kept", done.document_number)]
        assert s.get(SealedDocumentRow, "clash") is None and s.get(SealedDocumentRow, "lost") is None
        assert [(n, st) for n, _, st in numbers(s, ACCEPTANCE_SERIES, 2026)] == [
            (1, "USED"),
            (2, "VOID"),
            (3, "VOID"),
        ]
    caller.drop(engine)
    report = ledger.audit()
    kinds = [ledger.get(i).kind.value for i in range(report.size)]
    # The failed signings left no SEAL_SIGNED, only their voided numbers.
    assert report.ok and kinds == ["SEAL_SIGNED", "DOCUMENT_NUMBER_VOIDED", "DOCUMENT_NUMBER_VOIDED"]
