"""PolicyStore on SQLite and PostgreSQL (schema by migrations): imports, powers, agreements, replay."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import transaction
from core.errors import BadInput, Conflict, SealServiceError
from policies import DocumentKind, PolicyStore, SigningRequest, Stage
from policies._storage import PolMatter, PolRevision
from tests._fixtures.policies import (
    APPROVAL_BUREAU,
    DISABILITY_CARD,
    HEALTH_LICENCE_FIRST,
    MEIJIAO,
    XINGGUO,
    make_seal,
    meijiao_clerk,
    meijiao_no2_seal,
    meijiao_principal,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RELIEF = "SX-002"


def _code(fn: Any, *args: Any, **kw: Any) -> SealServiceError:
    with pytest.raises(SealServiceError) as info:
        fn(*args, **kw)
    return info.value


def _counts(store: PolicyStore) -> tuple[int, int]:
    with transaction(store.engine) as s:
        return (
            int(s.scalar(select(func.count()).select_from(PolMatter)) or 0),
            int(s.scalar(select(func.count()).select_from(PolRevision)) or 0),
        )


def _agreement(store: PolicyStore, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "department_code": APPROVAL_BUREAU,
        "township_code": MEIJIAO,
        "seal_number": 13,
        "matter_codes": [HEALTH_LICENCE_FIRST, "XG-15"],
        "starts_at": T0,
        "ends_at": T0 + timedelta(days=365),
        "actor": "bureau-admin",
        "basis": "兴国县行政审批“2号章”委托协议书",
    }
    args.update(kw)
    return store.create_agreement(**args)


def _finalise(**kw: Any) -> SigningRequest:
    base = SigningRequest(
        seal=meijiao_no2_seal(not_before=T0, not_after=T0 + timedelta(days=900)),
        operator=meijiao_clerk(),
        matter_code=HEALTH_LICENCE_FIRST,
        stage=Stage.APPROVE,
        document_kind=DocumentKind.PERMIT,
        approver=meijiao_principal(),
    )
    return dataclasses.replace(base, **kw)


def _accept(**kw: Any) -> SigningRequest:
    base = SigningRequest(
        seal=make_seal(township_code=MEIJIAO, not_before=T0, not_after=T0 + timedelta(days=900)),
        operator=meijiao_clerk(),
        matter_code=RELIEF,
        stage=Stage.ACCEPT,
        document_kind=DocumentKind.ACCEPTANCE_NOTICE,
    )
    return dataclasses.replace(base, **kw)


def test_registry_and_catalogs(policy_store: PolicyStore) -> None:
    towns = [o for o in policy_store.organisations(XINGGUO) if o.kind.value == "TOWNSHIP"]
    assert len(towns) == 25
    mj = policy_store.organisation(MEIJIAO)
    assert mj.name == "梅窖镇" and mj.no2_number == 13 and mj.service_centre == f"{MEIJIAO}-BMFW"
    assert policy_store.organisation(APPROVAL_BUREAU).kind.value == "DEPARTMENT"
    assert len(policy_store.matters(XINGGUO)) == 114 + 26


def test_powers_grant_show_revoke(policy_store: PolicyStore) -> None:
    granted = policy_store.grant_powers(MEIJIAO, None, actor="bureau-admin")
    assert (
        len(granted) == 114
    )  # every Shanxi matter; the 26 Xingguo items never go on the township's own list
    shown = {p.power.matter_code: p for p in policy_store.powers(MEIJIAO)}
    assert shown[RELIEF].power.stages == {Stage.ACCEPT, Stage.REVIEW}
    assert policy_store.decide_now(_accept(), T0 + timedelta(days=1)).allowed
    assert policy_store.revoke_powers(MEIJIAO, [RELIEF], actor="bureau-admin") == 1
    d = policy_store.decide_now(_accept(), T0 + timedelta(days=1))
    assert d.codes == ("MATTER_NOT_HELD",)
    assert _code(policy_store.grant_powers, MEIJIAO, ["NOPE"], actor="a").code == "MATTER_UNKNOWN"
    assert (
        _code(policy_store.grant_powers, MEIJIAO, [DISABILITY_CARD], actor="a").code == "POWER_MODE_INVALID"
    )
    e = _code(policy_store.grant_powers, MEIJIAO, [RELIEF], actor="a", stages=[Stage.APPROVE])
    assert e.code == "STAGE_NOT_IN_SCOPE"
    assert _code(policy_store.revoke_powers, MEIJIAO, [RELIEF], actor="a").code == "MATTER_NOT_HELD"


def test_cached_facts_follow_a_change_made_through_another_store(policy_store: PolicyStore) -> None:
    """facts_for caches per revision: a change by another process (another store) is a new revision."""
    policy_store.grant_powers(MEIJIAO, None, actor="bureau-admin")
    at = T0 + timedelta(days=1)
    assert policy_store.decide_now(_accept(), at).allowed
    assert policy_store.decide_now(_accept(), at).allowed  # from the cache
    other = PolicyStore(policy_store.engine)
    assert other.revoke_powers(MEIJIAO, [RELIEF], actor="bureau-admin") == 1
    assert policy_store.decide_now(_accept(), at).codes == ("MATTER_NOT_HELD",)
    other.grant_powers(MEIJIAO, [RELIEF], actor="bureau-admin")
    assert policy_store.decide_now(_accept(), at).allowed


def test_matter_for_reads_one_matter_and_follows_a_new_catalog(policy_store: PolicyStore) -> None:
    """The supervising department's lookup (审管联动) reads one matter, cached per revision."""
    whole = {m.code: m for m in policy_store.matters(XINGGUO)}
    assert policy_store.matter_for(MEIJIAO, RELIEF) == whole[RELIEF]
    assert policy_store.matter_for(MEIJIAO, RELIEF) == whole[RELIEF]  # from the cache
    assert policy_store.matter_for(MEIJIAO, "NO-SUCH") is None
    assert policy_store.matter_for("nowhere", RELIEF) is None
    PolicyStore(policy_store.engine).import_catalog(  # another process replaces the catalog
        XINGGUO,
        "code,name,power_type,mode\nC1,新事项,公共服务,\n".encode(),
        actor="bureau-admin",
        fmt="county",
    )
    assert policy_store.matter_for(MEIJIAO, RELIEF) is None
    c1 = policy_store.matter_for(MEIJIAO, "C1")
    assert c1 is not None and c1.name == "新事项"


def test_organisation_is_cached_per_revision_and_free_inside_a_read_scope(policy_store: PolicyStore) -> None:
    """The signing's supervisor lookup: inside a read scope whose revision is known, organisation() runs no
    statement; a change through another store (a new revision) is seen by the next unit of work."""
    from sqlalchemy import event

    from core.scope import read_scope

    before = policy_store.organisation(MEIJIAO)
    statements: list[str] = []

    def count(*_args: Any) -> None:
        statements.append("x")

    event.listen(policy_store.engine, "before_cursor_execute", count)
    try:
        with read_scope():
            policy_store.current_revision()
            statements.clear()
            assert policy_store.organisation(MEIJIAO) == before
            assert statements == []
            assert _code(policy_store.organisation, "nowhere").code == "ORGANISATION_UNKNOWN"
            assert _code(policy_store.organisation, "nowhere").code == "ORGANISATION_UNKNOWN"
    finally:
        event.remove(policy_store.engine, "before_cursor_execute", count)
    PolicyStore(policy_store.engine).rename_township(MEIJIAO, "梅窖新镇", actor="a", basis="更名")
    after = policy_store.organisation(MEIJIAO)
    assert after.name == "梅窖新镇" and after.revision > before.revision
    assert policy_store.organisation(MEIJIAO, before.revision) == before


def test_agreement_lifecycle_drives_the_decision(policy_store: PolicyStore) -> None:
    agr = _agreement(policy_store)
    at = T0 + timedelta(days=10)
    assert policy_store.decide_now(_finalise(), at).allowed
    assert policy_store.decide_now(_finalise(approver=None), at).codes == ("APPROVAL_MISSING",)
    policy_store.suspend_agreement(agr.agreement_id, actor="bureau-admin", reason="inspection")
    assert policy_store.decide_now(_finalise(), at).codes == ("AGREEMENT_SUSPENDED",)
    policy_store.resume_agreement(agr.agreement_id, actor="bureau-admin")
    amended = policy_store.amend_agreement(agr.agreement_id, actor="bureau-admin", matter_codes=["XG-15"])
    assert amended.version == 4 and amended.matters == {"XG-15"}
    assert policy_store.decide_now(_finalise(), at).codes == ("MATTER_NOT_IN_AGREEMENT",)
    policy_store.revoke_agreement(agr.agreement_id, actor="bureau-admin", reason="correction not made")
    assert "AGREEMENT_REVOKED" in policy_store.decide_now(_finalise(matter_code="XG-15"), at).codes
    assert (
        _code(policy_store.amend_agreement, agr.agreement_id, actor="x", basis="b").code
        == "AGREEMENT_REVOKED"
    )
    history = policy_store.agreement_history(agr.agreement_id)
    assert [a.version for a, _ in history] == [1, 2, 3, 4, 5]
    assert [r.action for _, r in history][-1] == "revoke_agreement"
    assert all(r.actor == "bureau-admin" for _, r in history)
    # the term: not yet in force before it starts, expired after it ends
    agr2 = _agreement(policy_store, starts_at=T0 + timedelta(days=400), ends_at=T0 + timedelta(days=800))
    assert policy_store.decide_now(_finalise(), T0 + timedelta(days=399)).codes == ("AGREEMENT_NOT_IN_FORCE",)
    assert policy_store.decide_now(_finalise(), T0 + timedelta(days=801)).codes == ("AGREEMENT_EXPIRED",)
    assert (
        policy_store.decide_now(_finalise(), T0 + timedelta(days=500)).grant
        == f"agreement:{agr2.agreement_id}"
    )


def test_agreement_bad_input(policy_store: PolicyStore) -> None:
    _agreement(policy_store)
    assert _code(_agreement, policy_store, starts_at=T0 + timedelta(days=100)).code == "AGREEMENT_OVERLAP"
    e = _code(
        _agreement,
        policy_store,
        matter_codes=[DISABILITY_CARD],
        starts_at=T0 + timedelta(days=1000),
        ends_at=T0 + timedelta(days=2000),
    )
    assert e.code == "AGREEMENT_MODE_INVALID" and e.details["code"] == DISABILITY_CARD
    e = _code(
        _agreement,
        policy_store,
        matter_codes=["XG-12"],
        starts_at=T0 + timedelta(days=1000),
        ends_at=T0 + timedelta(days=2000),
    )
    assert e.code == "AGREEMENT_MODE_INVALID"  # 林木采伐 is the forestry bureau's, not the approval bureau's
    e = _code(
        _agreement,
        policy_store,
        matter_codes=["NOPE"],
        starts_at=T0 + timedelta(days=1000),
        ends_at=T0 + timedelta(days=2000),
    )
    assert e.code == "MATTER_UNKNOWN"
    e = _code(
        _agreement,
        policy_store,
        department_code=MEIJIAO,
        township_code=f"{XINGGUO}-14",
        seal_number=14,
        starts_at=T0 + timedelta(days=1000),
        ends_at=T0 + timedelta(days=2000),
    )
    assert e.code == "AGREEMENT_REDELEGATION"
    e = _code(
        _agreement,
        policy_store,
        seal_number=14,
        starts_at=T0 + timedelta(days=1000),
        ends_at=T0 + timedelta(days=2000),
    )
    assert e.code == "AGREEMENT_SEAL_NUMBER_INVALID"
    e = _code(_agreement, policy_store, starts_at=T0 + timedelta(days=1000), ends_at=T0)
    assert e.code == "AGREEMENT_TERM_INVALID"


def test_import_is_all_or_nothing(policy_store: PolicyStore, domain_dir: Path) -> None:
    before = _counts(policy_store)
    good = (domain_dir / "shanxi_township_catalog.csv").read_text(encoding="utf-8")
    bad = good.replace("113,", "113x,", 1)
    e = _code(policy_store.import_catalog, XINGGUO, bad.encode(), actor="a", replace=False)
    assert isinstance(e, BadInput) and e.code == "CATALOG_ROW_INVALID" and e.details["row"] == 114
    dup = good + "115,临时救助,行政给付,乡级,乡级负责受理、审核\n"
    assert (
        _code(policy_store.import_catalog, XINGGUO, dup.encode(), actor="a").code == "CATALOG_DUPLICATE_ROW"
    )
    assert _counts(policy_store) == before


def test_gbk_file_refused_then_decoded(policy_store: PolicyStore, domain_dir: Path) -> None:
    gbk = (domain_dir / "shanxi_township_catalog.csv").read_text(encoding="utf-8").encode("gbk")
    before = _counts(policy_store)
    assert _code(policy_store.import_catalog, XINGGUO, gbk, actor="a").code == "CATALOG_ENCODING"
    assert _counts(policy_store) == before
    result = policy_store.import_catalog(XINGGUO, gbk, actor="a", encoding="gbk", replace=False)
    assert result.matters == 114 and result.retired == 0


def test_replay_gives_the_same_decision_after_the_catalog_changed(policy_store: PolicyStore) -> None:
    policy_store.grant_powers(MEIJIAO, [RELIEF], actor="bureau-admin")
    _agreement(policy_store)
    at = T0 + timedelta(days=5)
    township_d = policy_store.decide_now(_accept(), at)
    no2_d = policy_store.decide_now(_finalise(), at)
    assert township_d.allowed and no2_d.allowed
    rev = township_d.versions.revision
    assert rev is not None and no2_d.versions.revision == rev
    # The county replaces its catalog: the Shanxi matters and the No. 2 items both disappear.
    policy_store.import_catalog(
        XINGGUO,
        "code,name,power_type,mode\nC1,新事项,公共服务,\n".encode(),
        actor="bureau-admin",
        fmt="county",
    )
    assert policy_store.decide_now(_accept(), at).codes == ("MATTER_UNKNOWN",)
    assert not policy_store.decide_now(_finalise(), at).allowed
    # Replayed against the versions recorded with them, the decisions are what they were.
    assert policy_store.replay(township_d, _accept()) == township_d
    assert policy_store.replay(no2_d, _finalise()) == no2_d
    assert policy_store.replay(no2_d.versions, _finalise(), at) == no2_d
    # "was this matter delegated on that day?" by time
    later = policy_store.facts_for(_accept(), revision=policy_store.current_revision())
    assert RELIEF not in later.matters
    assert RELIEF in policy_store.facts_for(_accept(), revision=rev).matters


def test_revision_at_time(engine: Any, domain_dir: Path) -> None:
    ticks = iter(T0 + timedelta(days=i) for i in range(1000))
    store = PolicyStore(engine, clock=lambda: next(ticks))
    store.register_county(XINGGUO, "兴国县", actor="admin")  # day 0
    store.import_no2_townships(XINGGUO, (domain_dir / "xingguo_no2_seals.csv").read_bytes(), actor="admin")
    store.import_catalog(XINGGUO, (domain_dir / "shanxi_township_catalog.csv").read_bytes(), actor="admin")
    store.grant_powers(MEIJIAO, [RELIEF], actor="admin")  # day 3
    store.revoke_powers(MEIJIAO, [RELIEF], actor="admin")  # day 4
    held_on = store.revision_at(T0 + timedelta(days=3, hours=12))
    assert store.facts_for(_accept(), revision=held_on).powers
    assert not store.facts_for(_accept(), at=T0 + timedelta(days=4, hours=1)).powers
    assert store.revisions()[0].action == "revoke_powers"


def test_unknown_township_fails_closed(policy_store: PolicyStore) -> None:
    req = _accept(seal=make_seal(township_code="nowhere", not_before=T0, not_after=T0 + timedelta(days=9)))
    d = policy_store.decide_now(req, T0 + timedelta(days=1))
    assert not d.allowed and "MATTER_UNKNOWN" in d.codes


def test_changes_need_an_actor_and_no_duplicates(policy_store: PolicyStore) -> None:
    assert _code(policy_store.grant_powers, MEIJIAO, [RELIEF], actor="").code == "ACTOR_REQUIRED"
    e = _code(
        policy_store.register_township, MEIJIAO, "x", county_code=XINGGUO, service_centre="c", actor="a"
    )
    assert isinstance(e, Conflict) and e.code == "ORGANISATION_EXISTS"
