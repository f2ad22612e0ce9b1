"""The signer's one door: ``signer.precheck`` reads only; ``Sealer.seal`` takes the pre-check of the same
request as the signing's decision, and decides itself for any other request."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.signer.test_apply_seal import _request

pytestmark = pytest.mark.softhsm

REFUSED = {"stage": "审批", "document_kind": "不予批准决定书", "template": "refusal_decision"}


def test_precheck_writes_nothing_and_says_why(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any
) -> None:
    from signer import precheck

    allowed = sealer.precheck(_request(xingjiang_seal, xingjiang_clerk))
    assert allowed.allowed and allowed.seal.seal_id == xingjiang_seal.seal_id
    # the same check through the function the API calls (the token's parts need not be wired for it)
    other = _request(xingjiang_seal, xingjiang_clerk, **REFUSED)
    refused = precheck(other, seals=sealer.registry, policies=sealer.policy_store)
    assert not refused.allowed and "STAGE_NOT_DELEGATED" in [r.code for r in refused.reasons]
    assert ledger.size() == 0  # no SIGNING_REFUSED entry: a pre-check is not a signing


def test_seal_takes_its_precheck_and_only_its_own(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any
) -> None:
    from core.errors import PolicyDenied
    from signer import read_binding

    request = _request(xingjiang_seal, xingjiang_clerk)
    checked = sealer.precheck(request)
    done = sealer.seal(request, checked=checked)
    assert done.document_number.endswith("〕1号")
    assert read_binding(done.pdf)[0]["policy_revision"] == checked.decision.versions.revision

    # an allowed pre-check of another request does not let a refused one through: the signer decides
    other = _request(xingjiang_seal, xingjiang_clerk, idempotency_key="req-0002", **REFUSED)
    with pytest.raises(PolicyDenied) as err:
        sealer.seal(other, checked=checked)
    assert err.value.code == "SIGNING_REFUSED"
    assert [e.kind.value for e in (ledger.get(i) for i in range(ledger.size()))] == [
        "SEAL_SIGNED",
        "SIGNING_REFUSED",
    ]
