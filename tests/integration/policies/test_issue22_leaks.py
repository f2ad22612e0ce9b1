"""Issue 22 (domain fidelity), the leaks closed in the policy store: each test fails on the code before it.

3/4/6 seals only for a registered township, under its own name and the kind's naming pattern;
8     an agreement states its term and its basis (004);
9     a date without an offset is Beijing time: an agreement ending 2027-12-06 no longer applies at 05:00
      Beijing time that day;
12    the per-stage approval setting is stored and read into the facts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from core.errors import BadInput
from policies import CHINA_TZ, DocumentKind, SealKindFact, SigningRequest, Stage
from tests._fixtures.policies import (
    APPROVAL_BUREAU,
    HEALTH_LICENCE_FIRST,
    MEIJIAO,
    XINGGUO,
    meijiao_clerk,
    meijiao_no2_seal,
    meijiao_principal,
)

XINGJIANG = f"{XINGGUO}-11"  # 兴江乡


def _agreement(store: Any, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "department_code": APPROVAL_BUREAU,
        "township_code": MEIJIAO,
        "seal_number": 13,
        "matter_codes": [HEALTH_LICENCE_FIRST],
        "starts_at": datetime(2026, 1, 1),
        "ends_at": datetime(2027, 12, 6),
        "actor": "bureau-admin",
        "basis": "兴国县行政审批“2号章”委托协议书",
    }
    args.update(kw)
    return store.create_agreement(**args)


def _code(fn: Any, *a: Any, **kw: Any) -> str:
    with pytest.raises(BadInput) as err:
        fn(*a, **kw)
    return err.value.code


def test_agreement_needs_its_term_and_basis(policy_store: Any) -> None:
    assert _code(_agreement, policy_store, ends_at=None) == "AGREEMENT_TERM_REQUIRED"
    assert _code(_agreement, policy_store, basis="") == "AGREEMENT_BASIS_REQUIRED"
    assert _code(_agreement, policy_store, basis="   ") == "AGREEMENT_BASIS_REQUIRED"
    made = _agreement(policy_store)
    assert _code(policy_store.amend_agreement, made.agreement_id, actor="a", basis=" ") == (
        "AGREEMENT_BASIS_REQUIRED"
    )


def test_agreement_dates_are_beijing_dates(policy_store: Any) -> None:
    from api.cli._policy import _when

    ends = _when("2027-12-06", "--ends")
    assert ends == datetime(2027, 12, 6, tzinfo=CHINA_TZ)
    made = _agreement(policy_store, ends_at=datetime(2027, 12, 6))  # naive: Beijing
    assert made.ends_at == datetime(2027, 12, 6, tzinfo=CHINA_TZ)
    request = SigningRequest(
        seal=meijiao_no2_seal(
            not_before=datetime(2026, 1, 1, tzinfo=CHINA_TZ), not_after=datetime(2029, 1, 1, tzinfo=CHINA_TZ)
        ),
        operator=meijiao_clerk(),
        matter_code=HEALTH_LICENCE_FIRST,
        stage=Stage.APPROVE,
        document_kind=DocumentKind.PERMIT,
        approver=meijiao_principal(),
    )
    eve = policy_store.decide_now(request, datetime(2027, 12, 5, 23, 59, tzinfo=CHINA_TZ))
    assert eve.allowed, eve.codes
    that_morning = policy_store.decide_now(request, datetime(2027, 12, 6, 5, 0, tzinfo=CHINA_TZ))
    assert that_morning.codes == ("AGREEMENT_EXPIRED",)


def _check(store: Any, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "kind": SealKindFact.TOWNSHIP_APPROVAL,
        "name": "兴国县兴江乡人民政府行政审批服务专用章",
        "township_code": XINGJIANG,
        "township_name": "兴江乡",
    }
    args.update(kw)
    return store.check_seal_issue(**args)


def test_seal_issue_checks_the_register_and_the_name(policy_store: Any) -> None:
    assert _check(policy_store).code == XINGJIANG
    # another township's seal under this township's code
    assert (
        _code(_check, policy_store, name="兴国县梅窖镇人民政府行政审批服务专用章", township_name="梅窖镇")
        == "SEAL_TOWNSHIP_MISMATCH"
    )
    assert _code(_check, policy_store, township_code=f"{XINGGUO}-99") == "SEAL_TOWNSHIP_UNREGISTERED"
    assert _code(_check, policy_store, township_code=APPROVAL_BUREAU) == "SEAL_TOWNSHIP_UNREGISTERED"
    # the 行政公章's name and an old station seal are not an approval seal
    assert _code(_check, policy_store, name="兴国县兴江乡人民政府") == "SEAL_NAME_INVALID"
    assert _code(_check, policy_store, name="兴国县兴江乡林业站业务专用章") == "SEAL_NAME_INVALID"
    assert _check(policy_store, name="兴国县兴江乡人民政府行政审批（服务）专用章").code == XINGJIANG


def test_no2_seal_issue_checks_department_and_number(policy_store: Any) -> None:
    no2: dict[str, Any] = {
        "kind": SealKindFact.DEPARTMENT_NO2,
        "name": "兴国县行政审批局行政审批专用章（13）",
        "township_code": MEIJIAO,
        "township_name": "梅窖镇",
        "department_code": APPROVAL_BUREAU,
        "number": 13,
    }
    assert _check(policy_store, **no2).code == MEIJIAO
    assert _code(_check, policy_store, **{**no2, "number": 14}) == "SEAL_NUMBER_MISMATCH"
    assert (
        _code(_check, policy_store, **{**no2, "department_code": "县不存在局"})
        == "SEAL_DEPARTMENT_UNREGISTERED"
    )
    assert (
        _code(_check, policy_store, **{**no2, "name": "兴国县行政审批局行政审批专用章"})
        == "SEAL_NAME_INVALID"
    )


def test_per_stage_approval_setting_reaches_the_facts(policy_store: Any) -> None:
    from tests._fixtures.policies import make_seal

    county = policy_store.set_township_seal_approval(
        XINGGUO, required=True, stages=[Stage.APPROVE], actor="bureau-admin"
    )
    assert county.approval_required and county.approval_stages == frozenset({Stage.APPROVE})
    request = SigningRequest(
        seal=make_seal(township_code=XINGJIANG),
        operator=meijiao_clerk(org_code=XINGJIANG, service_centre=f"{XINGJIANG}-BMFW"),
        matter_code="ＳＸ-002",  # full width: the same matter
        stage=Stage.ACCEPT,
        document_kind=DocumentKind.ACCEPTANCE_NOTICE,
    )
    policy_store.grant_powers(XINGJIANG, ["SX-002"], actor="admin")
    facts = policy_store.facts_for(request)
    assert facts.township_seal_requires_approval and facts.approval_stages == frozenset({Stage.APPROVE})
    assert policy_store.decide_now(request, datetime.now(CHINA_TZ) - timedelta(days=1)).allowed
    assert _code(policy_store.set_township_seal_approval, XINGGUO, required=True, stages=[], actor="a") == (
        "APPROVAL_STAGES_INVALID"
    )
