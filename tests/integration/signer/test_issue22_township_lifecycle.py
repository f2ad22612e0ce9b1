"""Issue 22, leak 7: township lifecycle — rename (乡改镇), merger with succession, retirement.

Before: no rename or merger at all; after 乡改镇 the registry and verifier kept the old name, a merged
township kept its powers and could still seal, and could not be retired. Now (``api._townships``, the
policy store's ``rename_township`` / ``merge_township`` / ``retire_township``): the new name from a new
revision on and on each live seal's new certificate, earlier documents still verify under the name they were
sealed with; a merged township's powers pass to its successor and its seals are sealed away, and any use of
them is refused naming the rule (``TOWNSHIP_MERGED`` / ``TOWNSHIP_RETIRED``); each act is a
``TOWNSHIP_CHANGED`` ledger entry with its basis.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.errors import BadInput, PolicyDenied
from tests._fixtures.signer import XINGJIANG, seal_acceptance_notice

pytestmark = pytest.mark.softhsm

GULONGGANG = "360732-12"  # 古龙岗镇
BASIS = "赣府字〔2026〕5号"


def _later() -> datetime:
    """When the rename's and merger's seal changes take effect: a minute after now, i.e. after the sealing
    the test has just done (computed when the test runs, not when the module is collected: in a full run
    the module is imported many minutes before this test runs)."""
    return datetime.now(UTC) + timedelta(minutes=1)


def _verify(pdf: bytes, county_pki: Any, later: datetime) -> Any:
    """As a verifier after the change, with the CRLs published after it."""
    from tests._fixtures.signer import county_trust
    from verifier import VerifyLimits, verify_document

    trust = county_trust(county_pki, crl_at=later + timedelta(minutes=2))
    return verify_document(pdf, trust, now=later + timedelta(minutes=5), limits=VerifyLimits(sandbox=False))


def _township_entries(engine: Any, ledger: Any, registry: Any, store: Any) -> list[Any]:
    from api._journal import forward_events

    forward_events(engine, ledger, registry, store)
    entries = [ledger.get(i) for i in range(ledger.audit().size)]
    return [e for e in entries if e.kind.value == "TOWNSHIP_CHANGED"]


def test_rename_shows_the_new_name_and_old_documents_keep_theirs(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    seal_registry: Any,
    policy_store: Any,
    county_pki: Any,
    ledger: Any,
    engine: Any,
) -> None:
    from api._townships import rename_township

    before = seal_acceptance_notice(sealer, xingjiang_seal, xingjiang_clerk, key="rn-1", level="B-T")
    later = _later()
    old_revision = policy_store.current_revision()
    for bad in ("", "  "):
        with pytest.raises(BadInput) as err:
            rename_township(policy_store, seal_registry, XINGJIANG, "兴江镇", actor="admin", basis=bad)
        assert err.value.code == "TOWNSHIP_BASIS_REQUIRED"

    done = rename_township(
        policy_store, seal_registry, XINGJIANG, "兴江镇", actor="admin", basis=BASIS, now=later
    )
    assert (done.state, done.name, done.former_names) == ("ACTIVE", "兴江镇", ("兴江乡",))
    assert done.seals_changed == [xingjiang_seal.seal_id]
    # the registry: the new name now, the old one at the old revision
    assert policy_store.organisation(XINGJIANG).name == "兴江镇"
    assert policy_store.organisation(XINGJIANG, revision=old_revision).name == "兴江乡"
    seal = seal_registry.get(xingjiang_seal.seal_id)
    assert (seal.name, seal.township) == ("兴国县兴江镇人民政府行政审批服务专用章", "兴江镇")
    # run again (an interrupted command): nothing left to do, nothing changed twice
    again = rename_township(policy_store, seal_registry, XINGJIANG, "兴江镇", actor="admin", basis=BASIS)
    assert again.seals_changed == []

    after = seal_acceptance_notice(sealer, seal, xingjiang_clerk, key="rn-2", level="B-T")
    assert after.document_number == "兴江受理〔2026〕2号"  # the township's series goes on under its new name
    old_report, new_report = _verify(before.pdf, county_pki, later), _verify(after.pdf, county_pki, later)
    assert old_report.passed, old_report.codes
    assert new_report.passed, new_report.codes
    assert old_report.signatures[0].seal.seal_name == "兴国县兴江乡人民政府行政审批服务专用章"
    assert old_report.signatures[0].seal.township == "兴江乡"
    assert new_report.signatures[0].seal.seal_name == "兴国县兴江镇人民政府行政审批服务专用章"
    assert new_report.signatures[0].seal.township == "兴江镇"

    [entry] = _township_entries(engine, ledger, seal_registry, policy_store)
    assert entry.body["township_code"] == XINGJIANG and entry.body["change"] == "rename_township"
    assert entry.body["basis"] == BASIS


def test_a_merged_township_cannot_seal_and_its_powers_pass_to_the_successor(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    seal_registry: Any,
    policy_store: Any,
    county_pki: Any,
    ledger: Any,
    engine: Any,
) -> None:
    from api._townships import merge_township
    from keystore import SealStatus
    from signer._numbers import numbers

    before = seal_acceptance_notice(sealer, xingjiang_seal, xingjiang_clerk, key="mg-1", level="B-T")
    later = _later()
    # the recorded decision first (the policy): from here the township's seal is refused, by name of the rule
    policy_store.merge_township(XINGJIANG, GULONGGANG, actor="admin", basis=BASIS)
    with pytest.raises(PolicyDenied) as err:
        seal_acceptance_notice(sealer, xingjiang_seal, xingjiang_clerk, key="mg-2", level="B-T")
    codes = [r["code"] for r in err.value.details["reasons"]]
    assert "TOWNSHIP_MERGED" in codes
    zh = next(r["message_zh"] for r in err.value.details["reasons"] if r["code"] == "TOWNSHIP_MERGED")
    assert "并入" in zh and "002" in zh

    # the whole act (re-run after the policy step): its seals sealed away
    done = merge_township(
        policy_store, seal_registry, XINGJIANG, GULONGGANG, actor="admin", basis=BASIS, now=later
    )
    assert (done.state, done.successor_code) == ("MERGED", GULONGGANG)
    assert done.seals_retired == [xingjiang_seal.seal_id]
    assert seal_registry.get(xingjiang_seal.seal_id).status is SealStatus.RETIRED

    succeeded = {p.matter.code: p.power.stages for p in policy_store.powers(GULONGGANG)}
    assert "SX-002" in succeeded  # 兴江's powers are 古龙岗's now
    assert XINGJIANG not in {o.code for o in policy_store.organisations()}
    from core.db import transaction

    with transaction(engine) as s:
        assert [st for _, _, st in numbers(s, f"{XINGJIANG}/ACCEPTANCE", 2026)] == [
            "USED"
        ]  # none drawn after
    report = _verify(before.pdf, county_pki, later)
    assert report.passed, report.codes  # sealed before: still valid

    [entry] = _township_entries(engine, ledger, seal_registry, policy_store)
    assert entry.body["change"] == "merge_township" and entry.body["basis"] == BASIS

    # a closed township is neither renamed nor merged again into another
    from api._townships import rename_township
    from core.errors import Conflict

    with pytest.raises(Conflict) as closed:
        rename_township(policy_store, seal_registry, XINGJIANG, "兴江镇", actor="admin", basis=BASIS)
    assert closed.value.code == "TOWNSHIP_CLOSED"


def test_a_retired_township_is_refused_by_name(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, seal_registry: Any, policy_store: Any
) -> None:
    from api._townships import retire_township

    policy_store.retire_township(XINGJIANG, actor="admin", basis=BASIS)
    with pytest.raises(PolicyDenied) as err:
        seal_acceptance_notice(sealer, xingjiang_seal, xingjiang_clerk, key="rt-1", level="B-T")
    assert "TOWNSHIP_RETIRED" in [r["code"] for r in err.value.details["reasons"]]
    done = retire_township(policy_store, seal_registry, XINGJIANG, actor="admin", basis=BASIS)
    assert (done.state, done.successor_code, done.seals_retired) == (
        "RETIRED",
        None,
        [xingjiang_seal.seal_id],
    )


def test_merge_is_into_another_township_of_the_county(policy_store: Any) -> None:
    with pytest.raises(BadInput) as err:
        policy_store.merge_township(XINGJIANG, XINGJIANG, actor="admin", basis=BASIS)
    assert err.value.code == "TOWNSHIP_MERGE_INVALID"
    with pytest.raises(BadInput) as err:
        policy_store.merge_township(XINGJIANG, GULONGGANG, actor="admin", basis="")
    assert err.value.code == "TOWNSHIP_BASIS_REQUIRED"
