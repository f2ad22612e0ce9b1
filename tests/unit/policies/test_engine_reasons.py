"""Every reason code, each with a minimal case that differs from an allowed baseline in one respect."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest

from policies import (
    MESSAGES,
    AgreementStatus,
    DocumentKind,
    PolicyFacts,
    Role,
    SealKindFact,
    SealStatusFact,
    SigningRequest,
    Stage,
    decide,
)
from tests._fixtures.policies import (
    CENTRE2,
    NOW,
    T1,
    T2,
    make_agreement,
    make_clerk,
    make_no2_seal,
    make_principal,
    make_seal,
    minimal_facts,
    no2_request,
    township_request,
)

Case = Callable[[], tuple[SigningRequest, PolicyFacts]]


def test_baselines_are_allowed() -> None:
    for req in (township_request(), no2_request()):
        d = decide(req, minimal_facts(), NOW)
        assert d.allowed, d.codes
        assert d.reasons == ()
    d = decide(no2_request(), minimal_facts(), NOW)
    assert d.requires_approval
    assert d.grant == "agreement:AGR-1"
    assert d.versions.revision == 7 and d.versions.agreements == (("AGR-1", 1),)
    d = decide(township_request(), minimal_facts(), NOW)
    assert not d.requires_approval
    assert d.versions.power == (T1, "M1", 3)


def _agreement(**kw: object) -> PolicyFacts:
    return minimal_facts(agreements=(make_agreement(**kw),))


CASES: dict[str, Case] = {
    "SEAL_NOT_ACTIVE": lambda: (
        township_request(seal=make_seal(status=SealStatusFact.ISSUED)),
        minimal_facts(),
    ),
    "SEAL_SUSPENDED": lambda: (
        township_request(seal=make_seal(status=SealStatusFact.SUSPENDED)),
        minimal_facts(),
    ),
    "SEAL_CANCELLED": lambda: (
        township_request(seal=make_seal(status=SealStatusFact.CANCELLED)),
        minimal_facts(),
    ),
    "SEAL_RETIRED": lambda: (
        township_request(seal=make_seal(status=SealStatusFact.RETIRED)),
        minimal_facts(),
    ),
    "SEAL_NOT_YET_VALID": lambda: (
        township_request(seal=make_seal(not_before=NOW + timedelta(seconds=1))),
        minimal_facts(),
    ),
    "SEAL_EXPIRED": lambda: (township_request(seal=make_seal(not_after=NOW)), minimal_facts()),
    "SEAL_KIND_MISMATCH": lambda: (no2_request(matter_code="N2"), minimal_facts()),
    "MATTER_UNKNOWN": lambda: (township_request(matter_code="NOPE"), minimal_facts()),
    "MATTER_REQUIRES_ADMIN_SEAL": lambda: (township_request(matter_code="ADM"), minimal_facts()),
    "MATTER_REQUIRES_AGENCY_SEAL": lambda: (township_request(matter_code="AGY"), minimal_facts()),
    "MODE_FORBIDS_SEAL": lambda: (township_request(matter_code="A1"), minimal_facts()),
    "MATTER_NOT_HELD": lambda: (township_request(), minimal_facts(powers={})),
    "STAGE_NOT_DELEGATED": lambda: (
        township_request(matter_code="M2", stage=Stage.APPROVE, document_kind=DocumentKind.PERMIT),
        minimal_facts(),
    ),
    "DOCUMENT_KIND_NOT_ALLOWED": lambda: (
        township_request(document_kind=DocumentKind.PERMIT),
        minimal_facts(),
    ),
    "AGREEMENT_MISSING": lambda: (no2_request(), minimal_facts(agreements=())),
    "AGREEMENT_NOT_IN_FORCE": lambda: (no2_request(), _agreement(starts_at=NOW + timedelta(days=1))),
    "AGREEMENT_EXPIRED": lambda: (no2_request(), _agreement(ends_at=NOW)),
    "AGREEMENT_SUSPENDED": lambda: (no2_request(), _agreement(status=AgreementStatus.SUSPENDED)),
    "AGREEMENT_REVOKED": lambda: (no2_request(), _agreement(status=AgreementStatus.REVOKED)),
    "MATTER_NOT_IN_AGREEMENT": lambda: (no2_request(), _agreement(matters=frozenset({"OTHER"}))),
    "STAGE_NOT_IN_AGREEMENT": lambda: (no2_request(), _agreement(stages=frozenset({Stage.ACCEPT}))),
    "OPERATOR_WRONG_TOWNSHIP": lambda: (township_request(operator=make_clerk(org_code=T2)), minimal_facts()),
    "OPERATOR_WRONG_SERVICE_CENTRE": lambda: (
        township_request(operator=make_clerk(service_centre=CENTRE2)),
        minimal_facts(),
    ),
    "OPERATOR_ROLE_NOT_ALLOWED": lambda: (
        township_request(operator=make_clerk(role=Role.AUDITOR)),
        minimal_facts(),
    ),
    "OPERATOR_ACCOUNT_DISABLED": lambda: (
        township_request(operator=make_clerk(active=False)),
        minimal_facts(),
    ),
    "TOWNSHIP_MERGED": lambda: (
        township_request(),
        dataclasses.replace(minimal_facts(), township_closed="MERGED", township_successor=T2),
    ),
    "TOWNSHIP_RETIRED": lambda: (
        township_request(),
        dataclasses.replace(minimal_facts(), township_closed="RETIRED"),
    ),
    "APPROVAL_MISSING": lambda: (no2_request(approver=None), minimal_facts()),
    "SELF_APPROVAL": lambda: (
        no2_request(approver=make_clerk(role=Role.TOWNSHIP_PRINCIPAL)),
        minimal_facts(),
    ),
    "APPROVER_NOT_PRINCIPAL": lambda: (
        no2_request(approver=make_principal(role=Role.TOWNSHIP_CLERK)),
        minimal_facts(),
    ),
}


def test_every_code_has_a_case() -> None:
    assert set(CASES) | {"NO_GRANT"} == set(MESSAGES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_reason(code: str) -> None:
    req, facts = CASES[code]()
    d = decide(req, facts, NOW)
    assert not d.allowed
    assert code in d.codes
    r = next(r for r in d.reasons if r.code == code)
    assert r.message_en and r.message_zh and r.message_en != r.message_zh


def test_agency_matter_names_the_agency_seal() -> None:
    # issue 22, leak 19: a 派出机构 matter was refused with "须使用乡镇行政公章", naming the wrong seal
    d = decide(township_request(matter_code="AGY"), minimal_facts(), NOW)
    assert d.codes == ("MATTER_REQUIRES_AGENCY_SEAL",)
    zh = d.reasons[0].message_zh
    assert "融安县市场监督管理局大将市场监督管理所的印章" in zh and "须使用乡镇行政公章" not in zh
    assert "dispatched agency 融安县市场监督管理局大将市场监督管理所" in d.reasons[0].message_en


def test_deny_by_default_without_rules() -> None:
    # With no deny rule at all, only a positive grant allows: unknown matter -> NO_GRANT.
    d = decide(township_request(matter_code="NOPE"), minimal_facts(), NOW, rules=())
    assert d.codes == ("NO_GRANT",) and not d.allowed
    d = decide(no2_request(), minimal_facts(agreements=()), NOW, rules=())
    assert d.codes == ("NO_GRANT",) and not d.allowed
    assert decide(township_request(), minimal_facts(), NOW, rules=()).allowed


def test_power_beyond_scope_is_not_delegated() -> None:
    # A power row claiming 审批 for a matter whose scope is 受理 only does not reach beyond the scope.
    facts = minimal_facts()
    powers = dict(facts.powers)
    powers[(T1, "M2")] = dataclasses.replace(powers[(T1, "M2")], stages=frozenset(Stage))
    req = township_request(matter_code="M2", stage=Stage.APPROVE, document_kind=DocumentKind.PERMIT)
    d = decide(req, dataclasses.replace(facts, powers=powers), NOW)
    assert d.codes == ("STAGE_NOT_DELEGATED",)


def test_every_applicable_reason_is_returned() -> None:
    req = township_request(
        seal=make_seal(status=SealStatusFact.SUSPENDED, not_after=NOW),
        operator=make_clerk(org_code=T2, service_centre=CENTRE2, role=Role.AUDITOR),
        matter_code="M2",
        stage=Stage.APPROVE,
        document_kind=DocumentKind.ACCEPTANCE_NOTICE,
    )
    d = decide(req, minimal_facts(), NOW)
    assert set(d.codes) == {
        "SEAL_NOT_ACTIVE",
        "SEAL_SUSPENDED",
        "SEAL_EXPIRED",
        "STAGE_NOT_DELEGATED",
        "DOCUMENT_KIND_NOT_ALLOWED",
        "OPERATOR_WRONG_TOWNSHIP",
        "OPERATOR_WRONG_SERVICE_CENTRE",
        "OPERATOR_ROLE_NOT_ALLOWED",
    }


def test_empty_facts_fail_closed() -> None:
    for req in (township_request(), no2_request()):
        d = decide(req, PolicyFacts.empty(), NOW)
        assert not d.allowed
        assert "MATTER_UNKNOWN" in d.codes
        assert "DOCUMENT_KIND_NOT_ALLOWED" in d.codes
        assert "OPERATOR_WRONG_SERVICE_CENTRE" in d.codes


def test_township_seal_approval_is_configurable() -> None:
    # by default every stage but 受理 (003: window staff issue the 受理凭证 themselves, issue 22)
    facts = minimal_facts(township_seal_requires_approval=True)
    review = township_request(stage=Stage.REVIEW, document_kind=DocumentKind.OPINION)
    d = decide(review, facts, NOW)
    assert d.codes == ("APPROVAL_MISSING",) and d.requires_approval
    assert decide(dataclasses.replace(review, approver=make_principal()), facts, NOW).allowed


def test_township_seal_on_a_no2_matter_is_a_kind_mismatch() -> None:
    req = township_request(matter_code="N1")
    d = decide(req, minimal_facts(), NOW)
    assert "SEAL_KIND_MISMATCH" in d.codes


def test_no2_seal_of_another_number_has_no_agreement() -> None:
    req = no2_request(seal=make_no2_seal(number=14))
    assert "AGREEMENT_MISSING" in decide(req, minimal_facts(), NOW).codes


def test_malformed_seal_facts_are_a_kind_mismatch() -> None:
    req = township_request(seal=make_seal(department_code="D1"))
    assert "SEAL_KIND_MISMATCH" in decide(req, minimal_facts(), NOW).codes
    req2 = no2_request(seal=make_seal(kind=SealKindFact.DEPARTMENT_NO2))
    assert "SEAL_KIND_MISMATCH" in decide(req2, minimal_facts(), NOW).codes


def test_naive_time_is_read_as_utc() -> None:
    assert decide(township_request(), minimal_facts(), NOW.replace(tzinfo=None)).allowed


def test_clerk_never_uses_another_townships_seal() -> None:
    # T2's clerk at T2's centre with T1's seal, for a matter both townships hold.
    req = township_request(operator=make_clerk(org_code=T2, service_centre=CENTRE2))
    d = decide(req, minimal_facts(), NOW)
    assert not d.allowed
    assert {"OPERATOR_WRONG_TOWNSHIP", "OPERATOR_WRONG_SERVICE_CENTRE"} <= set(d.codes)
