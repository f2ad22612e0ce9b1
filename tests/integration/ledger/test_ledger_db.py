"""The ledger on real SQLite and PostgreSQL: appends, idempotency, checkpoints, receipts, triggers,
tampering behind the service's back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from core.db import transaction
from core.errors import BadInput, Conflict, LedgerIntegrityError, NotFound
from ledger import EntryKind, Ledger, NoteVerifier, _entry, _merkle, verify_receipt
from ledger._note import sign_checkpoint
from tests._fixtures.ledger import MemorySigner

APPEND_ONLY = ("ledger_entries", "ledger_nodes", "ledger_checkpoints")


@contextmanager
def behind_the_back(engine: Engine) -> Iterator[Any]:
    """A connection with the append-only triggers out of the way (PostgreSQL: disabled; SQLite: dropped)."""
    with engine.begin() as c:
        if engine.dialect.name == "postgresql":
            for t in APPEND_ONLY:
                c.exec_driver_sql(f"ALTER TABLE {t} DISABLE TRIGGER USER")
            yield c
            for t in APPEND_ONLY:
                c.exec_driver_sql(f"ALTER TABLE {t} ENABLE TRIGGER USER")
        else:
            saved = c.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND name LIKE 'ledger_%'"
            ).all()
            for name, _ in saved:
                c.exec_driver_sql(f"DROP TRIGGER {name}")
            yield c
            for _, sql in saved:
                c.exec_driver_sql(sql)


def _codes(report: Any) -> set[str]:
    return {p.code for p in report.problems}


def _row(c: Any, idx: int) -> Any:
    return c.execute(text("SELECT * FROM ledger_entries WHERE idx = :i"), {"i": idx}).one()


def test_append_checkpoint_receipt_audit(filled_ledger: Ledger, engine: Engine) -> None:
    lg = filled_ledger
    assert lg.size() == 20
    report = lg.audit()
    assert report.ok, report.problems
    assert (report.size, report.first_bad_index, report.checkpoints_checked) == (20, None, 2)
    hashes = [lg.get(i).entry_hash for i in range(20)]
    assert report.root == _merkle.root_of(hashes).hex()
    assert lg.root() == _merkle.root_of(hashes)
    for i in (0, 7, 19):
        assert lg.inclusion_proof(i, 20) == _merkle.inclusion_proof(i, hashes)
    for s1 in (1, 10, 13, 20):
        assert lg.consistency_proof(s1, 20) == _merkle.consistency_proof(s1, hashes)
    # chain: each entry commits to the previous one's hash
    for i in range(1, 20):
        assert lg.get(i).prev_hash == hashes[i - 1]
    r = lg.receipt(15)
    assert r.checkpoint.size == 20
    verify_receipt(r.to_text(), [NoteVerifier.for_signer(lg.signer)], lg.origin)  # type: ignore[arg-type]
    assert lg.audit(from_index=13).ok
    assert lg.audit(deep=True).ok


def test_idempotency_key_returns_the_first_entry(ledger: Ledger, engine: Engine, make_fields) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as s:
        first = ledger.append(s, make_fields(0), "req-1")
    with transaction(engine) as s:
        again = ledger.append(s, make_fields(5), "req-1")
        batch = ledger.append_many(s, [(make_fields(1), "req-2"), (make_fields(1), "req-2")])
    assert again == first and again.index == 0
    assert [e.index for e in batch] == [1, 1]
    assert ledger.size() == 2
    with pytest.raises(Conflict) as exc, transaction(engine) as s:
        ledger.append(
            s,
            make_fields(
                0,
                kind=EntryKind.DOCUMENT_NUMBER_VOIDED,
                body={"document_number": "n", "operator": "o", "reason": "r"},
            ),
            "req-1",
        )
    assert exc.value.code == "LEDGER_IDEMPOTENCY_CONFLICT"


def test_append_rolls_back_with_the_callers_transaction(ledger: Ledger, engine: Engine, make_fields) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), transaction(engine) as s:
        ledger.append(s, make_fields(0), "doomed")
        raise RuntimeError("the sealed document failed to store")
    assert ledger.size() == 0
    with transaction(engine) as s:
        e = ledger.append(s, make_fields(1), "doomed")
    assert e.index == 0  # no gap left behind by the aborted transaction
    assert ledger.audit().ok


def test_bad_input_is_refused_before_the_lock(ledger: Ledger, engine: Engine, make_fields) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput) as exc, transaction(engine) as s:
        ledger.append(s, make_fields(0, body={"seal_id": "x"}), "k")
    assert exc.value.code == "LEDGER_ENTRY_INVALID"
    with pytest.raises(BadInput) as exc, transaction(engine) as s:
        ledger.append(s, make_fields(0), "")
    assert exc.value.code == "LEDGER_IDEMPOTENCY_KEY_INVALID"


def test_personal_data_is_erasable_without_breaking_the_chain(
    ledger: Ledger, engine: Engine, make_fields
) -> None:  # type: ignore[no-untyped-def]
    with transaction(engine) as s:
        e = ledger.append(
            s, make_fields(0, applicant_name="张三", applicant_id_number="360732199001011234"), "p"
        )
        ledger.append(s, make_fields(1), "q")
    assert "张三" not in e.encoded.decode("utf-8", "replace")
    clear = ledger.personal_data(0)
    # The applicant's data, and (issue 21) the people and the free-text reason of the body.
    assert clear == {
        "applicant_name": "张三",
        "applicant_id_number": "360732199001011234",
        **{k: e_body for k, e_body in make_fields(0).body.items() if k in ("operator", "approver", "reason")},
    }
    with engine.connect() as c:
        salt = c.execute(text("SELECT salt FROM ledger_personal WHERE field='applicant_name'")).scalar_one()
    assert e.personal["applicant_name"] == _entry.commit_personal(bytes(salt), "张三")
    with transaction(engine) as s:
        assert ledger.erase_personal_data(s, 0) == len(clear)
    assert ledger.personal_data(0) == {}
    assert ledger.audit().ok


def test_triggers_refuse_update_and_delete(filled_ledger: Ledger, engine: Engine) -> None:
    statements = [
        "UPDATE ledger_entries SET kind = 'SEAL_LIFECYCLE' WHERE idx = 3",
        "DELETE FROM ledger_entries WHERE idx = 19",
        "UPDATE ledger_nodes SET hash = hash WHERE id = 0",
        "DELETE FROM ledger_nodes",
        "UPDATE ledger_checkpoints SET note = 'x'",
        "DELETE FROM ledger_checkpoints",
    ]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE ledger_entries")
    for sql in statements:
        with pytest.raises(DBAPIError) as exc, engine.begin() as c:
            c.exec_driver_sql(sql)
        assert "LEDGER_APPEND_ONLY" in str(exc.value)
    assert filled_ledger.audit().ok


def test_checkpoint_stamps_are_append_only(filled_ledger: Ledger, engine: Engine) -> None:
    """The evidence chains' links (issue 19 item 4b) are refused UPDATE, DELETE and TRUNCATE like the rest."""
    from datetime import UTC, datetime, timedelta

    from ledger import stamp_imprint

    cp = filled_ledger.checkpoint_of_size(10)
    assert cp is not None
    now = datetime.now(UTC)
    filled_ledger.add_stamp(
        10, b"token", stamp_imprint(cp.note), gen_time=now, tsa_not_after=now + timedelta(days=1)
    )
    statements = [
        "UPDATE ledger_checkpoint_stamps SET tst_der = tst_der",
        "DELETE FROM ledger_checkpoint_stamps",
    ]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE ledger_checkpoint_stamps")
    for sql in statements:
        with pytest.raises(DBAPIError) as exc, engine.begin() as c:
            c.exec_driver_sql(sql)
        assert "LEDGER_APPEND_ONLY" in str(exc.value), sql
    assert [s.size for s in filled_ledger.stamps()] == [10]


def test_checkpoints_never_disagree(filled_ledger: Ledger, engine: Engine, make_fields) -> None:  # type: ignore[no-untyped-def]
    lg = filled_ledger
    again = lg.checkpoint()
    assert again.size == 20 and again == lg.latest_checkpoint()
    # Rewrite a stored node behind the service's back: the next checkpoint must not be signed.
    with behind_the_back(engine) as c:
        c.execute(
            text("UPDATE ledger_nodes SET hash = :h WHERE id = :i"), {"h": b"\x55" * 32, "i": (4 << 48) | 0}
        )
    with transaction(engine) as s:
        lg.append(s, make_fields(20), "key-20")
    with pytest.raises(LedgerIntegrityError) as exc:
        lg.checkpoint()
    assert exc.value.code == "LEDGER_CHECKPOINT_INCONSISTENT"
    assert lg.latest_checkpoint().size == 20  # type: ignore[union-attr]


def test_a_signer_with_the_wrong_key_signs_nothing(ledger: Ledger, engine: Engine, make_fields) -> None:  # type: ignore[no-untyped-def]
    from ledger import CallableSigner

    other = MemorySigner()
    liar = CallableSigner(ledger.origin, ledger.signer.public_key, other.sign)  # type: ignore[union-attr]
    with transaction(engine) as s:
        ledger.append(s, make_fields(0), "k0")
    bad = Ledger(engine, liar)
    with pytest.raises(LedgerIntegrityError) as exc:
        bad.checkpoint()
    assert exc.value.code == "LEDGER_SIGNER_INVALID"
    assert bad.latest_checkpoint() is None
    bad.close()


def test_index_past_the_end(filled_ledger: Ledger) -> None:
    for call in (
        lambda: filled_ledger.receipt(20),
        lambda: filled_ledger.get(99),
        lambda: filled_ledger.inclusion_proof(5, 21),
    ):
        with pytest.raises(NotFound) as exc:
            call()
        assert exc.value.code == "LEDGER_INDEX_OUT_OF_RANGE"
    report = filled_ledger.audit(from_index=21)
    assert not report.ok and "LEDGER_INDEX_OUT_OF_RANGE" in _codes(report)


# --- tampering behind the service's back -----------------------------------------------------------------


def test_changed_row_payload(filled_ledger: Ledger, engine: Engine) -> None:
    with behind_the_back(engine) as c:
        enc = bytes(_row(c, 7).encoded).replace(b"APPROVAL_FORM", b"APPROVAL_FORX")
        c.execute(text("UPDATE ledger_entries SET encoded = :e WHERE idx = 7"), {"e": enc})
    report = filled_ledger.audit()
    assert not report.ok and report.first_bad_index == 7
    assert {"LEDGER_ENTRY_HASH_MISMATCH", "LEDGER_CHAIN_BROKEN", "LEDGER_CHECKPOINT_MISMATCH"} <= _codes(
        report
    )


def test_changed_row_with_its_hash_recomputed(filled_ledger: Ledger, engine: Engine) -> None:
    with behind_the_back(engine) as c:
        enc = bytes(_row(c, 12).encoded).replace(b"APPROVAL_FORM", b"APPROVAL_FORX")
        c.execute(
            text("UPDATE ledger_entries SET encoded = :e, entry_hash = :h WHERE idx = 12"),
            {"e": enc, "h": _merkle.leaf_hash(enc)},
        )
    report = filled_ledger.audit()
    assert report.first_bad_index == 12
    assert {"LEDGER_ENTRY_REWRITTEN", "LEDGER_CHAIN_BROKEN", "LEDGER_CHECKPOINT_MISMATCH"} <= _codes(report)


def test_changed_last_row_rehashed(filled_ledger: Ledger, engine: Engine) -> None:
    with behind_the_back(engine) as c:
        enc = bytes(_row(c, 19).encoded).replace(b"APPROVAL_FORM", b"APPROVAL_FORX")
        c.execute(
            text("UPDATE ledger_entries SET encoded = :e, entry_hash = :h WHERE idx = 19"),
            {"e": enc, "h": _merkle.leaf_hash(enc)},
        )
    report = filled_ledger.audit()
    assert report.first_bad_index == 19 and "LEDGER_ENTRY_REWRITTEN" in _codes(report)


def test_deleted_row(filled_ledger: Ledger, engine: Engine) -> None:
    with behind_the_back(engine) as c:
        c.execute(text("DELETE FROM ledger_entries WHERE idx = 4"))
    report = filled_ledger.audit()
    assert report.first_bad_index == 4
    assert {"LEDGER_INDEX_GAP", "LEDGER_CHAIN_BROKEN"} <= _codes(report)


def test_reordered_rows(filled_ledger: Ledger, engine: Engine) -> None:
    with behind_the_back(engine) as c:
        a, b = _row(c, 5), _row(c, 6)
        for idx, r in ((5, b), (6, a)):
            c.execute(
                text(
                    "UPDATE ledger_entries SET encoded = :e, entry_hash = :h, prev_hash = :p, "
                    "idempotency_key = :k WHERE idx = :i"
                ),
                {"e": r.encoded, "h": r.entry_hash, "p": r.prev_hash, "k": f"swap-{idx}", "i": idx},
            )
    report = filled_ledger.audit()
    assert report.first_bad_index == 5
    assert {"LEDGER_ENTRY_INDEX_MISMATCH", "LEDGER_CHAIN_BROKEN"} <= _codes(report)


def _forged(c: Any, idx: int, prev: bytes) -> dict[str, Any]:
    enc = _entry.encode(
        idx,
        prev,
        EntryKind.DOCUMENT_NUMBER_VOIDED,
        _entry.parse_time("2026-03-01T10:00:00.000000Z"),
        {"document_number": "forged", "operator": "intruder", "reason": "cover-up"},
        {},
    )
    return {
        "i": idx,
        "k": "DOCUMENT_NUMBER_VOIDED",
        "at": _entry.parse_time("2026-03-01T10:00:00.000000Z"),
        "e": enc,
        "h": _merkle.leaf_hash(enc),
        "p": prev,
        "key": f"forged-{idx}",
    }


INSERT = (
    "INSERT INTO ledger_entries (idx, kind, seal_id, at, encoded, entry_hash, prev_hash, idempotency_key, "
    "created_at) VALUES (:i, :k, NULL, :at, :e, :h, :p, :key, :at)"
)


def test_inserted_row_in_the_middle(filled_ledger: Ledger, engine: Engine) -> None:
    with behind_the_back(engine) as c:
        # shift 9..19 up by one (in two steps: the primary key must never collide), then slip a row in at 9
        c.execute(text("UPDATE ledger_entries SET idx = idx + 1000 WHERE idx >= 9"))
        c.execute(text("UPDATE ledger_entries SET idx = idx - 999 WHERE idx >= 1000"))
        c.execute(text(INSERT), _forged(c, 9, bytes(_row(c, 8).entry_hash)))
    report = filled_ledger.audit()
    assert report.first_bad_index == 9
    assert {"LEDGER_ENTRY_REWRITTEN", "LEDGER_ENTRY_INDEX_MISMATCH", "LEDGER_INDEX_OUT_OF_RANGE"} <= _codes(
        report
    )


def test_inserted_row_at_the_end(filled_ledger: Ledger, engine: Engine) -> None:
    with engine.begin() as c:  # INSERT is allowed by the triggers: only the head says it is not ours
        c.execute(text(INSERT), _forged(c, 20, bytes(_row(c, 19).entry_hash)))
    report = filled_ledger.audit()
    assert report.first_bad_index == 20 and _codes(report) == {"LEDGER_INDEX_OUT_OF_RANGE"}


def test_truncated_tail(filled_ledger: Ledger, engine: Engine) -> None:
    with behind_the_back(engine) as c:
        c.execute(text("DELETE FROM ledger_entries WHERE idx >= 17"))
    report = filled_ledger.audit()
    assert report.first_bad_index == 17
    assert {"LEDGER_TRUNCATED", "LEDGER_CHECKPOINT_BEYOND_END"} <= _codes(report)


def test_checkpoint_with_a_wrong_signature(filled_ledger: Ledger, engine: Engine) -> None:
    note = filled_ledger.checkpoints()[0].note
    sig_at = note.index("\u2014") + len(filled_ledger.origin) + 10
    bad = note[:sig_at] + ("A" if note[sig_at] != "A" else "B") + note[sig_at + 1 :]
    with behind_the_back(engine) as c:
        c.execute(text("UPDATE ledger_checkpoints SET note = :n WHERE size = 10"), {"n": bad})
    report = filled_ledger.audit()
    assert report.first_bad_index == 10
    assert _codes(report) == {"LEDGER_CHECKPOINT_SIGNATURE_INVALID"}


def test_checkpoint_from_an_unknown_key_and_a_forked_root(filled_ledger: Ledger, engine: Engine) -> None:
    intruder = MemorySigner(filled_ledger.origin)
    root15 = filled_ledger.root(15)
    foreign = sign_checkpoint(filled_ledger.origin, 15, root15, intruder)
    forked = sign_checkpoint(filled_ledger.origin, 5, b"\x42" * 32, filled_ledger.signer)  # type: ignore[arg-type]
    with engine.begin() as c:
        for cp in (foreign, forked):
            c.execute(
                text(
                    "INSERT INTO ledger_checkpoints (size, root, origin, key_name, note, created_at) "
                    "VALUES (:s, :r, :o, :o, :n, CURRENT_TIMESTAMP)"
                ),
                {"s": cp.size, "r": cp.root, "o": cp.origin, "n": cp.note},
            )
    report = filled_ledger.audit()
    problems = {(p.code, p.index) for p in report.problems}
    assert ("LEDGER_CHECKPOINT_UNKNOWN_KEY", 15) in problems
    assert ("LEDGER_CHECKPOINT_MISMATCH", 5) in problems
    assert ("LEDGER_CHECKPOINT_INCONSISTENT", 10) in problems
    assert report.first_bad_index == 5


def test_audit_from_a_reader_without_the_private_key(filled_ledger: Ledger, engine: Engine) -> None:
    reader = Ledger(engine, None, origin=filled_ledger.origin, verifiers=filled_ledger.verifiers)
    try:
        assert reader.audit().ok
        with pytest.raises(BadInput) as exc:
            reader.checkpoint()
        assert exc.value.code == "LEDGER_NO_SIGNER"
        stranger = Ledger(
            engine, None, origin=filled_ledger.origin, verifiers=[NoteVerifier.for_signer(MemorySigner())]
        )
        report = stranger.audit()
        assert _codes(report) == {"LEDGER_CHECKPOINT_UNKNOWN_KEY"}
        stranger.close()
    finally:
        reader.close()


def test_usage_view(filled_ledger: Ledger) -> None:
    rows = filled_ledger.usage("seal-360732-001", "2026-03")
    assert len(rows) == 20
    r = rows[0]
    assert (r.matter, r.approver, r.user, r.count) == (
        "最低生活保障审核确认",
        "principal-wang",
        "clerk-li",
        1,
    )
    assert r.document_number == "兴审批〔2026〕1号" and r.date == "2026-03-01"
    assert r.cert_serial == str(0x1234567890ABCDEF1234567890ABCDEF)
    assert filled_ledger.usage("seal-360732-001", "2026-04") == []
    assert filled_ledger.usage("other", "2026-03") == []
    with pytest.raises(BadInput) as exc:
        filled_ledger.usage("x", "March")
    assert exc.value.code == "LEDGER_MONTH_INVALID"


def test_one_statement_appends_are_found_in_the_statement_cache(pg_url: str, make_fields) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL's append (entry, nodes and head in one statement, the caller's writes pipelined with it)
    must be cacheable: a multi-VALUES INSERT is not, and compiling it anew for every signing cost ~8 % of a
    worker's CPU. The caller's writes are statements built once, with their values apart."""
    from sqlalchemy import bindparam, event, insert

    from core.db import make_engine, migrate
    from ledger._service import checkpoints_t  # any table: the caller's write joins the statement

    migrate(pg_url)
    eng = make_engine(pg_url)
    lg = Ledger(eng, MemorySigner())
    seen: list[Any] = []

    @event.listens_for(eng, "after_cursor_execute")
    def record(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("WITH"):
            seen.append(context.cache_hit)

    checkpoint = insert(checkpoints_t).values(
        {c: bindparam(c) for c in ("size", "root", "origin", "key_name", "note", "created_at")}
    )

    def also(entries: list[Any]) -> list[Any]:
        values = {
            "size": entries[0].index + 1,
            "root": b"r" * 32,
            "origin": "o",
            "key_name": "k",
            "note": f"n{entries[0].index}",
            "created_at": entries[0].at,
        }
        return [(checkpoint, values)]

    try:
        for i in range(24):
            with transaction(eng) as s:
                lg.append(s, make_fields(i), f"k-{i}", fresh=True, then=also, last=i % 2 == 0)
        assert lg.size() == 24
        with transaction(eng) as s:  # the caller's writes were made, each with its entry
            notes = s.execute(select(checkpoints_t.c.note).order_by(checkpoints_t.c.size)).scalars().all()
        assert notes == [f"n{i}" for i in range(24)]
        dialect = eng.dialect
        assert len(seen) == 24
        assert dialect.NO_CACHE_KEY not in seen
        # a new shape (nodes written per append vary with the tree's size) compiles once, then it is a hit
        assert seen.count(dialect.CACHE_HIT) >= 16, seen
    finally:
        eng.dispose()
