"""Issue 22, leaks 2 and 14: the declared document kind is bound to the template, and bad template data is
refused before a number is drawn. Each fails on the code before it (the permit sealed as a 受理通知书; a
number was drawn and voided, TEMPLATE_DATA_INVALID after it)."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import BadInput
from tests._fixtures.signer import ACCEPTANCE_DATA, PERMIT_DATA

pytestmark = pytest.mark.softhsm


def _request(seal: Any, clerk: Any, **kw: Any) -> Any:
    from signer import SealRequest

    args: dict[str, Any] = {
        "seal_id": seal.seal_id,
        "matter_code": "SX-002",  # 兴江乡 may accept and review it
        "stage": "受理",
        "document_kind": "受理通知书",
        "idempotency_key": "req-22",
        "operator": clerk,
        "template": "acceptance_notice",
        "template_data": ACCEPTANCE_DATA,
        "level": "B-T",
    }
    args.update(kw)
    return SealRequest(**args)


def _nothing_drawn(engine: Any, ledger: Any, township: str) -> None:
    from core.db import transaction
    from signer._numbers import numbers

    with transaction(engine) as s:
        assert numbers(s, township, 2026) == []
    assert ledger.audit().size == 0


def test_the_permit_template_is_never_an_acceptance_notice(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    data = {k: v for k, v in PERMIT_DATA.items() if k not in ("document_number", "issuer", "date")}
    with pytest.raises(BadInput) as err:
        sealer.apply_seal(
            _request(
                xingjiang_seal, xingjiang_clerk, template="public_place_hygiene_permit", template_data=data
            )
        )
    assert err.value.code == "TEMPLATE_KIND_MISMATCH"
    assert err.value.details["allowed"] == ["PERMIT"]
    _nothing_drawn(engine, ledger, xingjiang_seal.township_code)


def test_bad_template_data_is_refused_before_a_number_is_drawn(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    short = {k: v for k, v in ACCEPTANCE_DATA.items() if k != next(iter(ACCEPTANCE_DATA))}
    with pytest.raises(BadInput) as err:
        sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, template_data=short))
    assert err.value.code == "TEMPLATE_DATA_INVALID"
    with pytest.raises(BadInput) as err:
        sealer.apply_seal(
            _request(xingjiang_seal, xingjiang_clerk, template_data={**ACCEPTANCE_DATA, "x": {}})
        )
    assert err.value.code == "TEMPLATE_DATA_INVALID"
    _nothing_drawn(engine, ledger, xingjiang_seal.township_code)


def test_an_uploaded_pdf_says_its_kind_was_declared(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any
) -> None:
    from signer import read_binding
    from signer._templates import render_template

    notice = {**ACCEPTANCE_DATA, "issuer": "兴国县兴江乡人民政府", "date": "2026年3月1日"}
    uploaded = render_template("acceptance_notice", notice)  # no number printed: the signer assigns it

    done = sealer.apply_seal(
        _request(xingjiang_seal, xingjiang_clerk, template=None, template_data=None, unverified_pdf=uploaded)
    )
    binding = read_binding(done.pdf)[0]
    assert binding["document_kind"] == "ACCEPTANCE_NOTICE" and binding["document_kind_source"] == "declared"
    templated = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key="req-22b"))
    assert read_binding(templated.pdf)[0]["document_kind_source"] == "template"
