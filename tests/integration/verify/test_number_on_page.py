"""The page shows the number the seal is bound to, and no other of its series (issue 18, item 5).

Sealed on the real token with the low-level ``seal_pdf`` so the binding can name a number the page does not
show (the service itself refuses such input before a number is drawn: see
``test_sealer_refuses_a_pdf_showing_a_number_of_its_series``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests._fixtures.signer import ACCEPTANCE_DATA
from verifier import Indication, TrustList, VerifyLimits, verify_document

pytestmark = pytest.mark.softhsm
FAST = VerifyLimits(sandbox=False)


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    from core.db import migrate

    migrate(sqlite_url)
    return sqlite_url


@pytest.fixture
def stamper(county_tsa: Any) -> Any:
    from signer._tsa import CountyTimeStamper

    return CountyTimeStamper(county_tsa)


def _page(number: str, basis: str | None = None) -> bytes:
    from signer import render_template

    data = {
        **ACCEPTANCE_DATA,
        "issuer": "兴国县兴江乡人民政府",
        "date": "2026年3月5日",
        "document_number": number,
    }
    if basis is not None:
        data["matter_name"] = basis
    return render_template("acceptance_notice", data)


def _sealed(pdf: bytes, bound: str, key: Any, keystore: Any, stamper: Any, **extra: Any) -> bytes:
    from signer._seal import SealJob, SignatureLevel, seal_pdf

    binding = {
        "matter": "SX-002",
        "stage": "受理",
        "document_kind": "受理通知书",
        "document_number": bound,
        "idempotency_key": f"page-{bound}",
        **extra,
    }
    job = SealJob(key=key, binding=binding, level=SignatureLevel.B_T)
    return seal_pdf(pdf, job, keystore, stamper, max_bytes=50 * 1024 * 1024)


def _verify(pdf: bytes, revocation: Any) -> Any:
    trust = TrustList(
        roots=(revocation.root_der,), intermediates=revocation.intermediates_der, crls=revocation.crls_der
    )
    return verify_document(pdf, trust, now=datetime.now(UTC) + timedelta(minutes=1), limits=FAST)


def _mismatches(r: Any) -> list[str]:
    return [x.detail or "" for s in r.signatures for x in s.reasons if x.code == "BINDING_TEXT_MISMATCH"]


def test_page_showing_another_number_of_the_series_fails(
    sealing_key: Any, keystore: Any, stamper: Any, revocation: Any
) -> None:
    doc = _sealed(_page("兴江审批〔2026〕2号"), "兴江审批〔2026〕5号", sealing_key, keystore, stamper)
    r = _verify(doc, revocation)
    assert r.indication is Indication.TOTAL_FAILED, r.codes
    assert any("〔2026〕2号" in d and "〔2026〕5号" in d for d in _mismatches(r)), _mismatches(r)


def test_page_showing_a_bare_number_fails(
    sealing_key: Any, keystore: Any, stamper: Any, revocation: Any
) -> None:
    doc = _sealed(_page("〔2026〕2号"), "兴江审批〔2026〕5号", sealing_key, keystore, stamper)
    r = _verify(doc, revocation)
    assert r.indication is Indication.TOTAL_FAILED and _mismatches(r), r.codes


def test_page_showing_the_bound_number_passes(
    sealing_key: Any, keystore: Any, stamper: Any, revocation: Any
) -> None:
    doc = _sealed(_page("兴江审批〔2026〕5号"), "兴江审批〔2026〕5号", sealing_key, keystore, stamper)
    r = _verify(doc, revocation)
    assert r.indication is Indication.TOTAL_PASSED, [
        (x.code, x.detail) for s in r.signatures for x in s.reasons
    ]
    assert "number-on-page" in r.checks


def test_a_citation_of_another_organs_number_is_not_a_conflict(
    sealing_key: Any, keystore: Any, stamper: Any, revocation: Any
) -> None:
    page = _page("兴江审批〔2026〕5号", basis="依据兴政发〔2025〕12号办理临时救助")
    doc = _sealed(page, "兴江审批〔2026〕5号", sealing_key, keystore, stamper)
    r = _verify(doc, revocation)
    assert not _mismatches(r), _mismatches(r)


def test_a_template_page_must_show_its_bound_number(
    sealing_key: Any, keystore: Any, stamper: Any, revocation: Any
) -> None:
    # the binding says the page came from our template, yet the number line shows another organ's number
    doc = _sealed(
        _page("兴政发〔2026〕5号"),
        "兴江审批〔2026〕5号",
        sealing_key,
        keystore,
        stamper,
        template="acceptance_notice",
    )
    r = _verify(doc, revocation)
    assert r.indication is Indication.TOTAL_FAILED
    assert any("does not show" in d for d in _mismatches(r)), _mismatches(r)


def test_sealer_refuses_a_pdf_showing_a_number_of_its_series(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, engine: Any, ledger: Any
) -> None:
    from sqlalchemy import text

    from core.errors import BadInput
    from signer import SealRequest

    for i, shown in enumerate(("兴江审批〔2026〕2号", "〔2026〕2号", "兴江审批【２０２６】02号")):
        with pytest.raises(BadInput) as exc:
            sealer.apply_seal(
                SealRequest(
                    seal_id=xingjiang_seal.seal_id,
                    matter_code="SX-002",
                    stage="受理",
                    document_kind="受理通知书",
                    idempotency_key=f"shown-{i}",
                    operator=xingjiang_clerk,
                    reason="受理临时救助申请",
                    unverified_pdf=_page(shown),
                )
            )
        assert exc.value.code == "PDF_SHOWS_DOCUMENT_NUMBER", exc.value
    with engine.connect() as conn:  # refused before a number was drawn: nothing numbered, nothing logged
        assert conn.execute(text("SELECT count(*) FROM sig_document_numbers")).scalar() == 0
    assert ledger.audit().ok
    # another organ's number on the page is no obstacle
    doc = sealer.apply_seal(
        SealRequest(
            seal_id=xingjiang_seal.seal_id,
            matter_code="SX-002",
            stage="受理",
            document_kind="受理通知书",
            idempotency_key="shown-other",
            operator=xingjiang_clerk,
            reason="受理临时救助申请",
            unverified_pdf=_page("兴政发〔2026〕2号"),
        )
    )
    assert doc.document_number == "兴江受理〔2026〕1号"  # an acceptance notice: its own series (issue 22)
