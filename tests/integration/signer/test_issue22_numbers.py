"""Issue 22, leak 15: number series per issuing authority and document family.

Before: one counter per township for everything sealed there, so 梅窖's own seal and the No. 2 seals kept
at 梅窖 printed 梅窖审批〔2026〕1–5号 between them (a licence in 兴国县行政审批局's name carried the
township's number), and acceptance notices and opinions consumed 审批 numbers. Now (003: approval results
carry the 行政审批专用文号, the window issues 受理凭证; 004 二.3: the No. 2 seal's 审批文书编号 is the
department's) each issuer and family has its own gap-free series, and earlier numbers stay as they were.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests._fixtures.signer import ACCEPTANCE_DATA, PERMIT_DATA

pytestmark = pytest.mark.softhsm

REFUSAL_DATA = {
    "applicant": "刘某某",
    "matter_name": "内地居民结婚登记",
    "submitted_date": "2026年3月1日",
    "reasons": ["申请材料不齐全"],
    "basis": "《婚姻登记条例》",
}


def _request(seal: Any, clerk: Any, key: str, **kw: Any) -> Any:
    from signer import SealRequest

    args: dict[str, Any] = {
        "seal_id": seal.seal_id,
        "matter_code": "SX-002",  # 临时救助: the township accepts and reviews
        "stage": "受理",
        "document_kind": "受理通知书",
        "idempotency_key": key,
        "operator": clerk,
        "template": "acceptance_notice",
        "template_data": ACCEPTANCE_DATA,
        "level": "B-T",
    }
    args.update(kw)
    return SealRequest(**args)


def _opinion_pdf() -> bytes:
    from signer._templates import render_template

    # any page will do as the clerk's uploaded 意见; it prints no number (the signer assigns it)
    return render_template(
        "acceptance_notice", {**ACCEPTANCE_DATA, "issuer": "兴国县兴江乡人民政府", "date": "2026年3月1日"}
    )


def test_acceptance_notices_and_opinions_do_not_consume_approval_numbers(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, engine: Any
) -> None:
    from core.db import transaction
    from signer import read_binding
    from signer._numbers import numbers

    seal, clerk = xingjiang_seal, xingjiang_clerk
    first_notice = sealer.apply_seal(_request(seal, clerk, "n-1"))
    second_notice = sealer.apply_seal(_request(seal, clerk, "n-2"))
    opinion = sealer.apply_seal(
        _request(
            seal,
            clerk,
            "o-1",
            stage="审核",
            document_kind="意见",
            template=None,
            template_data=None,
            unverified_pdf=_opinion_pdf(),
        )
    )
    refusal = sealer.apply_seal(
        _request(
            seal,
            clerk,
            "d-1",
            matter_code="SX-007",  # 内地居民结婚登记: the township completes it
            stage="审批",
            document_kind="不予批准决定书",
            template="refusal_decision",
            template_data=REFUSAL_DATA,
        )
    )
    assert (first_notice.document_number, second_notice.document_number) == (
        "兴江受理〔2026〕1号",
        "兴江受理〔2026〕2号",
    )
    assert opinion.document_number == "兴江意见〔2026〕1号"
    # the first approval result is No. 1 of the approval series: nothing before it consumed one
    assert refusal.document_number == "兴江审批〔2026〕1号"
    assert read_binding(refusal.pdf)[0]["document_number"] == refusal.document_number
    with transaction(engine) as s:
        assert [n for _, n, _ in numbers(s, seal.township_code, 2026)] == ["兴江审批〔2026〕1号"]
        assert [st for _, _, st in numbers(s, f"{seal.township_code}/ACCEPTANCE", 2026)] == ["USED", "USED"]
        assert [st for _, _, st in numbers(s, f"{seal.township_code}/OPINION", 2026)] == ["USED"]


def _meijiao_no2_seal(seal_registry: Any, policy_store: Any) -> Any:
    from datetime import UTC, datetime, timedelta

    from keystore import SealKind
    from tests._fixtures.keystore import FIXED_NOW
    from tests._fixtures.policies import APPROVAL_BUREAU, HEALTH_LICENCE_FIRST, MEIJIAO

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
    return seal_registry.get(event.seal_id)


def test_a_no2_licence_carries_the_departments_series_not_the_townships(
    sealer: Any, seal_registry: Any, policy_store: Any, engine: Any
) -> None:
    from core.db import transaction
    from signer._numbers import numbers
    from tests._fixtures.keystore import FIXED_NOW, issue_township_seal
    from tests._fixtures.policies import HEALTH_LICENCE_FIRST, MEIJIAO, meijiao_clerk, meijiao_principal

    policy_store.grant_powers(MEIJIAO, None, actor="admin")
    own = issue_township_seal(seal_registry, township="梅窖镇", code=MEIJIAO)
    seal_registry.activate(own.seal_id, actor="县行政审批局-张三", approved_by="乡长", now=FIXED_NOW)
    own = seal_registry.get(own.seal_id)
    no2 = _meijiao_no2_seal(seal_registry, policy_store)
    clerk, head = meijiao_clerk(), meijiao_principal()
    licence = {k: v for k, v in PERMIT_DATA.items() if k not in ("document_number", "issuer")}
    permit = dict(
        matter_code=HEALTH_LICENCE_FIRST,
        stage="审批",
        document_kind="许可证及其附件",
        template="public_place_hygiene_permit",
        template_data=licence,
        approver=head,
    )
    township_refusal = dict(
        matter_code="SX-007",
        stage="审批",
        document_kind="不予批准决定书",
        template="refusal_decision",
        template_data=REFUSAL_DATA,
    )
    a = sealer.apply_seal(_request(own, clerk, "mj-1", **township_refusal))
    b = sealer.apply_seal(_request(no2, clerk, "mj-2", **permit))
    c = sealer.apply_seal(_request(no2, clerk, "mj-3", **permit))
    d = sealer.apply_seal(_request(own, clerk, "mj-4", **township_refusal))
    assert [a.document_number, d.document_number] == ["梅窖审批〔2026〕1号", "梅窖审批〔2026〕2号"]
    assert [b.document_number, c.document_number] == [
        "兴国县行政审批局审批〔2026〕1号",
        "兴国县行政审批局审批〔2026〕2号",
    ]
    with transaction(engine) as s:
        assert [n for n, _, _ in numbers(s, MEIJIAO, 2026)] == [1, 2]
        assert [n for n, _, _ in numbers(s, "dept:县行政审批局", 2026)] == [1, 2]


def test_numbers_drawn_before_the_split_keep_their_series_and_the_counter_continues(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, engine: Any
) -> None:
    """An acceptance notice numbered 兴江审批〔2026〕1号 under the old one-counter scheme stays so; the
    township's approval series continues at 2 (no gap, no reuse), the acceptance series starts at 1."""
    from core.db import transaction
    from signer._numbers import numbers, reserve_number, settle_number

    seal = xingjiang_seal
    with transaction(engine) as s:
        legacy = reserve_number(
            s,
            sequence=seal.township_code,
            year=2026,
            fmt=sealer.number_format,  # no fields: as the old one-counter scheme drew it, for any kind
            township=seal.township,
            county=seal.county,
            idempotency_key="legacy-1",
            now=sealer.clock(),
        )
    with transaction(engine) as s:
        assert settle_number(s, legacy)
    notice = sealer.apply_seal(_request(seal, xingjiang_clerk, "after-1"))
    refusal = sealer.apply_seal(
        _request(
            seal,
            xingjiang_clerk,
            "after-2",
            matter_code="SX-007",
            stage="审批",
            document_kind="不予批准决定书",
            template="refusal_decision",
            template_data=REFUSAL_DATA,
        )
    )
    assert legacy.number == "兴江审批〔2026〕1号"
    assert notice.document_number == "兴江受理〔2026〕1号"
    assert refusal.document_number == "兴江审批〔2026〕2号"
    with transaction(engine) as s:
        assert numbers(s, seal.township_code, 2026) == [
            (1, "兴江审批〔2026〕1号", "USED"),
            (2, "兴江审批〔2026〕2号", "USED"),
        ]


def test_a_number_format_without_issuer_and_family_is_refused() -> None:
    from core.errors import BadInput
    from signer._numbers import check_format

    for fmt in (
        "{township_short}审批〔{year}〕{seq}号",
        "兴国审批〔{year}〕{seq:03d}号",
        "{issuer}〔{year}〕{seq}号",
    ):
        with pytest.raises(BadInput) as err:
            check_format(fmt)
        assert err.value.code == "NUMBER_FORMAT_INVALID"
    assert check_format("{issuer}{family}〔{year}〕{seq:03d}号")
