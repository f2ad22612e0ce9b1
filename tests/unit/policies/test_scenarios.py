"""Scenarios from the source documents, decided by the pure engine over the real catalogs."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from policies import AgreementStatus, DocumentKind, PolicyFacts, SigningRequest, Stage, decide
from tests._fixtures.policies import (
    DISABILITY_CARD,
    HEALTH_LICENCE_FIRST,
    MEIJIAO,
    NOW,
    XINGGUO,
    county_facts,
    make_seal,
    meijiao_clerk,
    meijiao_no2_seal,
    meijiao_principal,
)

RELIEF = "SX-002"  # 临时救助, 乡级负责受理、审核


@pytest.fixture(scope="module")
def facts(domain_dir: Path) -> PolicyFacts:
    return county_facts(domain_dir)


def _shanxi_req(**kw: object) -> SigningRequest:
    base = SigningRequest(
        seal=make_seal(township_code=MEIJIAO),
        operator=meijiao_clerk(),
        matter_code=RELIEF,
        stage=Stage.ACCEPT,
        document_kind=DocumentKind.ACCEPTANCE_NOTICE,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _finalise(**kw: object) -> SigningRequest:
    base = SigningRequest(
        seal=meijiao_no2_seal(),
        operator=meijiao_clerk(),
        matter_code=HEALTH_LICENCE_FIRST,
        stage=Stage.APPROVE,
        document_kind=DocumentKind.PERMIT,
        approver=meijiao_principal(),
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_shanxi_township_stamps_acceptance_notice_for_temporary_relief(facts: PolicyFacts) -> None:
    assert facts.matters[RELIEF].name == "临时救助"
    assert decide(_shanxi_req(), facts, NOW).allowed
    assert decide(_shanxi_req(stage=Stage.REVIEW, document_kind=DocumentKind.OPINION), facts, NOW).allowed


def test_shanxi_township_never_stamps_an_approval_decision_for_it(facts: PolicyFacts) -> None:
    for kind in (DocumentKind.APPROVAL_DECISION, DocumentKind.REFUSAL_DECISION, DocumentKind.PERMIT):
        d = decide(_shanxi_req(stage=Stage.APPROVE, document_kind=kind), facts, NOW)
        assert not d.allowed and d.codes == ("STAGE_NOT_DELEGATED",)
    # nor an approval decision dressed up as an acceptance-stage document
    d = decide(_shanxi_req(document_kind=DocumentKind.APPROVAL_DECISION), facts, NOW)
    assert d.codes == ("DOCUMENT_KIND_NOT_ALLOWED",)


def test_xingguo_township_finalises_health_licence_with_bureau_seal_13(facts: PolicyFacts) -> None:
    m = facts.matters[HEALTH_LICENCE_FIRST]
    assert m.sub_item == "公共场所卫生许可（首次）" and m.department_code == "县行政审批局"
    d = decide(_finalise(), facts, NOW)
    assert d.allowed and d.requires_approval and d.grant == "agreement:AGR-13"


def test_only_with_the_principals_approval(facts: PolicyFacts) -> None:
    assert decide(_finalise(approver=None), facts, NOW).codes == ("APPROVAL_MISSING",)
    selfie = meijiao_principal(user_id="mj-clerk")
    assert decide(_finalise(approver=selfie), facts, NOW).codes == ("SELF_APPROVAL",)
    other_head = meijiao_principal(org_code=f"{XINGGUO}-14")
    assert decide(_finalise(approver=other_head), facts, NOW).codes == ("APPROVER_NOT_PRINCIPAL",)


def test_only_while_the_agreement_is_in_force(facts: PolicyFacts) -> None:
    agr = next(a for a in facts.agreements if a.township_code == MEIJIAO)
    rest = tuple(a for a in facts.agreements if a is not agr)
    cases = {
        "AGREEMENT_SUSPENDED": dataclasses.replace(agr, status=AgreementStatus.SUSPENDED),
        "AGREEMENT_REVOKED": dataclasses.replace(agr, status=AgreementStatus.REVOKED),
        "AGREEMENT_EXPIRED": dataclasses.replace(agr, ends_at=NOW - timedelta(seconds=1)),
        "AGREEMENT_NOT_IN_FORCE": dataclasses.replace(agr, starts_at=NOW + timedelta(days=1)),
    }
    for code, changed in cases.items():
        d = decide(_finalise(), dataclasses.replace(facts, agreements=(*rest, changed)), NOW)
        assert d.codes == (code,)
    assert decide(_finalise(), dataclasses.replace(facts, agreements=rest), NOW).codes == (
        "AGREEMENT_MISSING",
    )


def test_never_for_disability_card_matters(facts: PolicyFacts) -> None:
    assert "残疾人证" in facts.matters[DISABILITY_CARD].name
    for seal in (meijiao_no2_seal(), make_seal(township_code=MEIJIAO)):
        d = decide(_finalise(seal=seal, matter_code=DISABILITY_CARD), facts, NOW)
        assert not d.allowed and "MODE_FORBIDS_SEAL" in d.codes


def test_clerk_never_uses_another_townships_seal(facts: PolicyFacts) -> None:
    other_clerk = meijiao_clerk(user_id="x", org_code=f"{XINGGUO}-14", service_centre=f"{XINGGUO}-14-BMFW")
    for req in (_shanxi_req(operator=other_clerk), _finalise(operator=other_clerk)):
        d = decide(req, facts, NOW)
        assert not d.allowed
        assert {"OPERATOR_WRONG_TOWNSHIP", "OPERATOR_WRONG_SERVICE_CENTRE"} <= set(d.codes)
    # and the seal itself, carried to another township's centre, is 异地使用
    d = decide(_shanxi_req(operator=meijiao_clerk(service_centre=f"{XINGGUO}-14-BMFW")), facts, NOW)
    assert d.codes == ("OPERATOR_WRONG_SERVICE_CENTRE",)


def test_bureau_seal_13_is_not_for_the_forestry_bureaus_matter(facts: PolicyFacts) -> None:
    d = decide(_finalise(matter_code="XG-12"), facts, NOW)  # 林木采伐许可证核发: 县林业局
    assert "SEAL_KIND_MISMATCH" in d.codes and not d.allowed
