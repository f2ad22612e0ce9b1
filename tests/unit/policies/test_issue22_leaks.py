"""Issue 22 (domain fidelity), the leaks closed in the pure core: each test fails on the code before it.

1  a full-width look-alike code is the same code (CATALOG_DUPLICATE_ROW; requests resolve it);
4  seal names follow the kind's naming pattern (000/001 township seal, 004 No. 2 seal);
12 with township approval on, a window clerk's 受理通知书 needs no approval (003), per-stage settings.
"""

from __future__ import annotations

import dataclasses

import pytest

from core.errors import BadInput
from policies import DocumentKind, SealKindFact, Stage, decide
from policies._catalog import parse_county, parse_shanxi
from policies._seal_names import seal_name_allowed
from tests._fixtures.policies import NOW, make_principal, minimal_facts, township_request


def test_full_width_code_repeats_a_code_catalog_duplicate_row() -> None:
    text = (
        "code,name,power_type,mode\n"
        "YY-001,临时救助,行政给付,乡级负责受理、审核\n"
        "ＹＹ-001 ,临时救助审批,行政给付,\n"
    )
    with pytest.raises(BadInput) as err:
        parse_county(text)
    assert err.value.code == "CATALOG_DUPLICATE_ROW"
    assert err.value.details == {"row": 3, "field": "code"}


def test_codes_are_stored_nfkc_and_trimmed() -> None:
    [m] = parse_county("code,name,power_type,mode\n ＹＹ－００１ ,临时救助,行政给付,\n").matters
    assert m.code == "YY-001"


def test_full_width_matter_name_repeats_a_matter() -> None:
    head = "no,matter,power_type,level,township_scope\n"
    text = head + "1,临时救助(A),行政给付,乡级,\n2,临时救助（Ａ）,行政给付,乡级,\n"
    with pytest.raises(BadInput) as err:
        parse_shanxi(text)
    assert err.value.code == "CATALOG_DUPLICATE_ROW"


def test_a_request_names_the_matter_in_full_width() -> None:
    decision = decide(township_request(matter_code=" Ｍ1"), minimal_facts(), NOW)
    assert decision.allowed, decision.codes


def test_window_clerk_issues_the_acceptance_notice_without_approval_when_approval_is_on() -> None:
    facts = minimal_facts(township_seal_requires_approval=True)
    accept = township_request()  # 受理, 受理通知书, no approver
    assert decide(accept, facts, NOW).allowed
    decision_stage = township_request(stage=Stage.APPROVE, document_kind=DocumentKind.PERMIT)
    assert decide(decision_stage, facts, NOW).codes == ("APPROVAL_MISSING",)
    approved = dataclasses.replace(decision_stage, approver=make_principal())
    assert decide(approved, facts, NOW).allowed


def test_approval_only_at_the_decision_stage() -> None:
    facts = minimal_facts(township_seal_requires_approval=True, approval_stages=frozenset({Stage.APPROVE}))
    review = township_request(stage=Stage.REVIEW, document_kind=DocumentKind.OPINION)
    assert decide(review, facts, NOW).allowed
    everywhere = minimal_facts(township_seal_requires_approval=True, approval_stages=frozenset(Stage))
    assert decide(township_request(), everywhere, NOW).codes == ("APPROVAL_MISSING",)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("融安县泗顶镇人民政府行政审批服务专用章", True),  # 000
        ("融安县泗顶镇人民政府行政审批（服务）专用章", True),  # 001
        ("融安县泗顶镇人民政府行政审批(服务)专用章", True),  # half-width brackets, the same name
        ("融安县泗顶镇人民政府政务服务专用章", True),  # 001
        ("融安县泗顶镇人民政府", False),  # the 行政公章
        ("融安县泗顶镇林业站业务专用章", False),  # an old station seal
        ("融安县大良镇人民政府行政审批服务专用章", False),  # another township
    ],
)
def test_township_seal_names(name: str, ok: bool) -> None:
    allowed, expected = seal_name_allowed(
        SealKindFact.TOWNSHIP_APPROVAL, name, county_name="融安县", township_name="泗顶镇"
    )
    assert allowed is ok
    assert "融安县泗顶镇人民政府行政审批服务专用章" in expected


def test_no2_seal_names() -> None:
    def ok(name: str, number: int = 13) -> bool:
        return seal_name_allowed(
            SealKindFact.DEPARTMENT_NO2,
            name,
            county_name="兴国县",
            township_name="梅窖镇",
            department_code="县行政审批局",
            number=number,
        )[0]

    assert ok("兴国县行政审批局行政审批专用章（13）")
    assert not ok("兴国县行政审批局行政审批专用章（14）")
    assert not ok("兴国县梅窖镇人民政府行政审批服务专用章")
