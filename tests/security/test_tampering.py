"""Tampering behind the service's back on seals, seal events and agreements (PostgreSQL, a demo county).

The ledger's own tampering cases are in tests/integration/ledger. Here: the append-only tables refuse
UPDATE, DELETE and TRUNCATE in the database itself (the ledger's, the seal events and, since migration
policies_0002, every ``pol_*`` table); the mutable ``ks_seals`` accepts a direct UPDATE; and what an
auditor can and cannot detect from the ledger when somebody who owns the tables disables the triggers is
shown (docs/reliability.md).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.reliability._home import DemoHome, ledger_bodies

pytestmark = [pytest.mark.postgres, pytest.mark.softhsm]

KEY_COLUMN = {
    "ledger_entries": "idx",
    "ledger_nodes": "id",
    "ledger_checkpoints": "size",
    "ks_seal_events": "id",
    "pol_revisions": "id",
    "pol_organisations": "code",
    "pol_catalog_versions": "id",
    "pol_matters": "code",
    "pol_powers": "township_code",
    "pol_agreements": "agreement_id",
    "pol_stage_tables": "id",
}
APPEND_ONLY = tuple(KEY_COLUMN)


def _as_owner_without_triggers(url: str, table: str, sql: str, params: tuple[Any, ...]) -> None:
    """What only the tables' owner can do: switch the append-only trigger off, write, switch it on."""
    with psycopg.connect(url) as conn:
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        conn.execute(sql, params)
        conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")


def _one(url: str, sql: str) -> Any:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()


def seal_status_drift(url: str) -> dict[str, tuple[str, str | None]]:
    """The auditor's cross-check: each seal's status in ``ks_seals`` against its last SEAL_LIFECYCLE entry.

    Returns {seal_id: (status in the table, status the ledger says)} for every disagreement.
    """
    logged: dict[str, str] = {}
    for _, kind, _, body in ledger_bodies(url):
        if kind == "SEAL_LIFECYCLE":
            logged[body["seal_id"]] = body["status"]
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT seal_id, status FROM ks_seals").fetchall()
    return {sid: (status, logged.get(sid)) for sid, status in rows if logged.get(sid) != status}


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_append_only_tables_refuse_update_delete_truncate(pg_demo: DemoHome, table: str) -> None:
    key = KEY_COLUMN[table]
    (first,) = _one(pg_demo.url, f"SELECT min({key}) FROM {table}")
    assert first is not None, f"{table} is empty in a demo county"
    (count,) = _one(pg_demo.url, f"SELECT count(*) FROM {table}")
    statements = [
        f"UPDATE {table} SET {key} = {key} WHERE {key} = %(k)s",
        f"DELETE FROM {table} WHERE {key} = %(k)s",
        f"TRUNCATE {table} CASCADE",
    ]
    for sql in statements:
        with psycopg.connect(pg_demo.url) as conn:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql, {"k": first})
            assert "append-only" in str(info.value) or "APPEND_ONLY" in str(info.value), (sql, info.value)
    assert _one(pg_demo.url, f"SELECT count(*) FROM {table}")[0] == count
    pg_demo.audit()


def test_seal_status_changed_in_place_is_caught_by_the_lifecycle_cross_check(pg_demo: DemoHome) -> None:
    seal_id = pg_demo.seals["兴江乡"]["seal_id"]
    assert seal_status_drift(pg_demo.url) == {}
    # Somebody with database access re-activates... here: marks a seal CANCELLED→ACTIVE style drift.
    with psycopg.connect(pg_demo.url) as conn:
        conn.execute("UPDATE ks_seals SET status = 'SUSPENDED' WHERE seal_id = %s", (seal_id,))
    try:
        # The ledger itself is untouched, so its audit stays ok: the ledger alone cannot see this ...
        pg_demo.audit()
        # ... but the lifecycle entries forwarded before each checkpoint can: the table disagrees.
        assert seal_status_drift(pg_demo.url) == {seal_id: ("SUSPENDED", "ACTIVE")}
        # And the append-only event table still says what really happened.
        (last_event,) = _one(
            pg_demo.url,
            f"SELECT event FROM ks_seal_events WHERE seal_id = '{seal_id}' ORDER BY id DESC LIMIT 1",
        )
        assert last_event == "ACTIVATED"
    finally:
        with psycopg.connect(pg_demo.url) as conn:
            conn.execute("UPDATE ks_seals SET status = 'ACTIVE' WHERE seal_id = %s", (seal_id,))
    assert seal_status_drift(pg_demo.url) == {}


def agreement_terms_drift(url: str) -> list[tuple[str, int]]:
    """The auditor's cross-check for agreements: each AGREEMENT_CHANGED entry's ``terms_sha256`` against
    the stored version's terms, recomputed with the pure policy model. Returns (agreement_id, version) of
    every disagreement (a version edited in place, or gone)."""
    import json
    from datetime import UTC

    from policies import Agreement, AgreementStatus, Stage

    with psycopg.connect(url) as conn:
        rows = {
            (r[0], r[1]): r
            for r in conn.execute(
                "SELECT agreement_id, version, department_code, township_code, seal_number, matters, stages,"
                " starts_at, ends_at, status, basis FROM pol_agreements"
            ).fetchall()
        }
    drift = []
    for _, kind, _, body in ledger_bodies(url):
        if kind != "AGREEMENT_CHANGED" or "terms_sha256" not in body:
            continue
        row = rows.get((body["agreement_id"], body["version"]))
        if row is None:
            drift.append((body["agreement_id"], body["version"]))
            continue
        aid, ver, dept, township, number, matters, stages, starts, ends, status, basis = row
        stored = Agreement(
            agreement_id=aid, department_code=dept, township_code=township, seal_number=number,
            matters=frozenset(json.loads(matters)),
            stages=frozenset(Stage[x] for x in stages.split(",") if x),
            starts_at=starts.astimezone(UTC), ends_at=ends.astimezone(UTC) if ends else None,
            status=AgreementStatus(status), basis=basis, version=ver,
        )  # fmt: skip
        if stored.terms_sha256() != body["terms_sha256"]:
            drift.append((aid, ver))
    return drift


def test_agreement_rows_refuse_edits_and_an_edit_is_caught_by_the_terms_hash(pg_demo: DemoHome) -> None:
    """The ledger commits to each agreement version's terms (``terms_sha256``): an in-place edit by the
    tables' owner, with the triggers off, leaves the ledger audit ok but shows in the terms cross-check."""
    assert agreement_terms_drift(pg_demo.url) == []
    agreement_id, version, ends_at = _one(
        pg_demo.url, "SELECT agreement_id, version, ends_at FROM pol_agreements ORDER BY revision LIMIT 1"
    )
    logged = [
        body for _, kind, _, body in ledger_bodies(pg_demo.url)
        if kind == "AGREEMENT_CHANGED" and body["agreement_id"] == agreement_id
    ]  # fmt: skip
    assert logged and {"agreement_id", "change", "actor"} <= set(logged[0])
    (versions,) = _one(
        pg_demo.url, f"SELECT count(*) FROM pol_agreements WHERE agreement_id = '{agreement_id}'"
    )
    # Detectable: a version row added or deleted behind the service's back (versions != logged changes).
    assert versions == len(logged)
    # The service's own database role cannot edit terms in place any more (policies_0002) ...
    with psycopg.connect(pg_demo.url) as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute(
            "UPDATE pol_agreements SET ends_at = now() + interval '100 years'"
            " WHERE agreement_id = %s AND version = %s",
            (agreement_id, version),
        )
    # ... but the tables' owner can switch the trigger off: then the edit is not visible in the ledger.
    _as_owner_without_triggers(
        pg_demo.url,
        "pol_agreements",
        "UPDATE pol_agreements SET ends_at = now() + interval '100 years'"
        " WHERE agreement_id = %s AND version = %s",
        (agreement_id, version),
    )
    try:
        pg_demo.audit()  # the ledger itself is untouched ...
        assert agreement_terms_drift(pg_demo.url) == [(agreement_id, version)]  # ... but it disagrees
        with psycopg.connect(pg_demo.url) as conn:
            conn.execute(
                "INSERT INTO pol_agreements SELECT agreement_id, version + 100, revision, department_code,"
                " township_code, seal_number, matters, stages, starts_at, ends_at, status, basis, change"
                " FROM pol_agreements WHERE agreement_id = %s AND version = %s",
                (agreement_id, version),
            )
        (versions_now,) = _one(
            pg_demo.url, f"SELECT count(*) FROM pol_agreements WHERE agreement_id = '{agreement_id}'"
        )
        assert versions_now != len(logged)  # an inserted version is caught by counting
    finally:
        _as_owner_without_triggers(
            pg_demo.url,
            "pol_agreements",
            "DELETE FROM pol_agreements WHERE agreement_id = %s AND version = %s",
            (agreement_id, version + 100),
        )
        _as_owner_without_triggers(
            pg_demo.url,
            "pol_agreements",
            "UPDATE pol_agreements SET ends_at = %s WHERE agreement_id = %s AND version = %s",
            (ends_at, agreement_id, version),
        )


def revision_drift(url: str) -> list[int]:
    """Forwarded policy revisions whose row no longer says what the ledger logged (actor, action, note)."""
    logged = {
        int(key.split(":", 1)[1]): body
        for _, kind, key, body in ledger_bodies(url)
        if kind in ("AGREEMENT_CHANGED", "POWERS_CHANGED") and key.startswith("policy-rev:")
    }
    with psycopg.connect(url) as conn:
        rows = {
            r[0]: r[1:] for r in conn.execute("SELECT id, actor, action, note FROM pol_revisions").fetchall()
        }
    return sorted(
        n for n, body in logged.items() if rows.get(n) != (body["actor"], body["change"], body["note"])
    )


def test_policy_revision_changed_after_forwarding_is_caught_by_the_cross_check(pg_demo: DemoHome) -> None:
    assert revision_drift(pg_demo.url) == []
    (revision,) = _one(
        pg_demo.url, "SELECT min(id) FROM pol_revisions WHERE action IN ('create_agreement', 'grant_powers')"
    )
    (actor,) = _one(pg_demo.url, f"SELECT actor FROM pol_revisions WHERE id = {revision}")
    with psycopg.connect(pg_demo.url) as conn, pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("UPDATE pol_revisions SET actor = 'forged' WHERE id = %s", (revision,))
    update = "UPDATE pol_revisions SET actor = %s WHERE id = %s"
    _as_owner_without_triggers(pg_demo.url, "pol_revisions", update, ("forged", revision))
    try:
        pg_demo.audit()  # the ledger is untouched
        assert revision_drift(pg_demo.url) == [revision]
    finally:
        _as_owner_without_triggers(pg_demo.url, "pol_revisions", update, (actor, revision))
    assert revision_drift(pg_demo.url) == []
