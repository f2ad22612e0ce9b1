"""Document numbers under concurrency: gap-free and unique per (sequence, year), voids kept (PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.softhsm]
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _request(seal: Any, clerk: Any, **kw: Any) -> Any:
    from tests.integration.signer.test_apply_seal import _request as base

    return base(seal, clerk, **kw)


@pytest.fixture
def db_url(pg_url: str) -> str:
    """This module runs on PostgreSQL only: row locks under real concurrency (SQLite serialises at BEGIN)."""
    from core.db import migrate

    migrate(pg_url)
    return pg_url


@pytest.fixture
def pg_engine(pg_url: str) -> Any:
    from core.db import make_engine, migrate

    migrate(pg_url)
    eng = make_engine(pg_url, pool_size=8)
    yield eng
    eng.dispose()


def _reserve(session: Any, key: str, year: int = 2026, commit: bool = False) -> Any:
    from signer._numbers import DEFAULT_FORMAT, reserve_number

    return reserve_number(
        session,
        sequence="360732-11",
        year=year,
        fmt=DEFAULT_FORMAT,
        township="兴江乡",
        county="兴国县",
        idempotency_key=key,
        now=NOW,
        commit=commit,
    )


@pytest.mark.parametrize("commit", [False, True], ids=["caller-commits", "commits-itself"])
def test_concurrent_reservations_are_gap_free(pg_engine: Any, commit: bool) -> None:
    """Six threads reserve, settle or void; ``commit=True`` (the signer's: statement and COMMIT in one
    round trip) is as gap-free as the caller's commit."""
    from core.db import transaction
    from signer._numbers import numbers, settle_number, void_number

    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for i in range(10):
                with transaction(pg_engine) as s:
                    drawn = _reserve(s, f"{w}-{i}", commit=commit)
                with transaction(pg_engine) as s:
                    if i % 4 == 3:  # the signing failed after the reservation: the number is voided, kept
                        assert void_number(s, drawn, "SIGNING_FAILED")
                    else:
                        assert settle_number(s, drawn)
                if i == 5 and not commit:  # a reservation whose transaction dies whole gives its number back
                    try:
                        with transaction(pg_engine) as s:
                            _reserve(s, f"{w}-abort")
                            raise RuntimeError("abort")
                    except RuntimeError:
                        pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with transaction(pg_engine) as s:
        got = numbers(s, "360732-11", 2026)
        other = numbers(s, "360732-11", 2027)
    assert [n for n, _, _ in got] == list(range(1, 61))
    assert len({num for _, num, _ in got}) == 60
    assert sum(1 for _, _, st in got if st == "VOID") == 12
    assert {st for _, _, st in got} == {"USED", "VOID"}
    assert got[16][1] == "兴江审批〔2026〕17号"
    assert other == []


def test_a_retry_takes_over_its_reservation_and_only_one_flip_wins(pg_engine: Any) -> None:
    from core.db import transaction
    from signer._numbers import expired_reservations, numbers, settle_number, void_number

    with transaction(pg_engine) as s:
        first = _reserve(s, "k-crashed")  # its process dies here: RESERVED, never settled
    with transaction(pg_engine) as s:
        other = _reserve(s, "k-other")
    with transaction(pg_engine) as s:
        again = _reserve(s, "k-crashed")  # the client's retry
    assert again == first and other.seq == 2
    with transaction(pg_engine) as s:
        assert numbers(s, "360732-11", 2026) == [
            (1, first.number, "RESERVED"),
            (2, other.number, "RESERVED"),
        ]
    # two twins racing to settle one number: exactly one wins, and a void after it is refused
    with transaction(pg_engine) as s:
        assert settle_number(s, first) is True
    with transaction(pg_engine) as s:
        assert settle_number(s, first) is False
        assert void_number(s, first, "late") is False
    # a later retry of a settled key draws nothing new from its old reservation
    with transaction(pg_engine) as s:
        stale = expired_reservations(s, datetime(2027, 1, 1, tzinfo=UTC))
        fresh = expired_reservations(s, NOW)  # reserved at NOW: not before it
    assert [(d.seq, key) for d, key in stale] == [(2, "k-other")]
    assert fresh == []


def test_sweeper_skips_a_reservation_being_settled(pg_engine: Any) -> None:
    """PostgreSQL: a number row locked by a settling signing is skipped, not waited for, not voided."""
    from core.db import transaction
    from signer._numbers import expired_reservations, settle_number

    with transaction(pg_engine) as s:
        a = _reserve(s, "k-a")
        b = _reserve(s, "k-b")
    later = datetime(2027, 1, 1, tzinfo=UTC)
    with transaction(pg_engine) as settling:
        assert settle_number(settling, a)  # row a locked until this commits
        with transaction(pg_engine) as sweeping:
            seen = expired_reservations(sweeping, later)
        assert [d.seq for d, _ in seen] == [b.seq]


def test_number_format_rules() -> None:
    from core.errors import BadInput
    from signer._numbers import check_format, township_short, year_of

    with pytest.raises(BadInput) as err:
        check_format("{issuer}{family}{seq}号")
    assert err.value.code == "NUMBER_FORMAT_INVALID"
    with pytest.raises(BadInput):
        check_format("{issuer}{family}{year}{seq}{secret}")
    assert check_format("{issuer}{family}〔{year}〕{seq:03d}号")
    assert township_short("兴江乡") == "兴江"
    assert township_short("兴国县潋江镇人民政府", "兴国县") == "潋江"
    assert township_short("城关街道") == "城关"
    assert year_of(datetime(2026, 12, 31, 17, 0, tzinfo=UTC)) == 2027  # 01:00 on 1 January in Beijing


def test_concurrent_sealing_gap_free_and_one_seal_per_key(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    import threading

    from core.db import transaction
    from signer._numbers import numbers

    results: list[Any] = []
    errors: list[BaseException] = []

    def worker(key: str) -> None:
        try:
            results.append(sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, idempotency_key=key)))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    keys = ["c-1", "c-2", "c-3", "c-4", "same", "same", "same"]
    threads = [threading.Thread(target=worker, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    same = [r for r in results if r.idempotency_key == "same"]
    assert len({r.sha256 for r in same}) == 1 and len({r.ledger_index for r in same}) == 1
    with transaction(engine) as s:
        seq = numbers(s, f"{xingjiang_seal.township_code}/ACCEPTANCE", 2026)  # acceptance notices
    assert [(n, st) for n, _, st in seq] == [(i, "USED") for i in range(1, 6)]
    report = ledger.audit()
    assert report.ok and report.size == 5


def test_a_settled_key_is_answered_not_renumbered(pg_engine: Any) -> None:
    """Under the counter lock a key whose number is USED draws nothing: the signer returns its document."""
    from core.db import transaction
    from signer._numbers import AlreadySettled, numbers, settle_number

    with transaction(pg_engine) as s:
        drawn = _reserve(s, "k-done")
    with transaction(pg_engine) as s:
        assert settle_number(s, drawn) is True
    with pytest.raises(AlreadySettled), transaction(pg_engine) as s:
        _reserve(s, "k-done")
    with transaction(pg_engine) as s:
        assert numbers(s, "360732-11", 2026) == [(1, drawn.number, "USED")]
        assert _reserve(s, "k-next").seq == 2  # the counter did not move for the settled key


@pytest.mark.parametrize("backend", ["postgresql", "postgresql-commit", "sqlite"])
def test_two_sequences_printing_one_number_clash(backend: str, pg_engine: Any, tmp_path: Any) -> None:
    """Two sequences sharing a format would print the same number: the unique index refuses the second
    (DOCUMENT_NUMBER_CLASH) and its reservation, counter bump included, is rolled back."""
    from core.db import make_engine, migrate, transaction
    from core.errors import Conflict
    from signer._numbers import DEFAULT_FORMAT, numbers, reserve_number

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'numbers.db'}"
        migrate(url)
        engine = make_engine(url)
    else:
        engine = pg_engine

    def reserve(sequence: str, key: str) -> Any:
        with transaction(engine) as s:
            return reserve_number(
                s,
                sequence=sequence,
                year=2026,
                fmt=DEFAULT_FORMAT,
                township="兴江乡",
                county="兴国县",
                idempotency_key=key,
                now=NOW,
                commit=backend == "postgresql-commit",  # the clash is raised by the pipelined COMMIT
            )

    first = reserve("centre-a", "a-1")
    with pytest.raises(Conflict) as caught:
        reserve("centre-b", "b-1")
    assert caught.value.code == "DOCUMENT_NUMBER_CLASH"
    with transaction(engine) as s:
        assert numbers(s, "centre-a", 2026) == [(1, first.number, "RESERVED")]
        assert numbers(s, "centre-b", 2026) == []
    assert reserve("centre-a", "a-2").seq == 2
    if backend == "sqlite":
        engine.dispose()


def test_a_reservation_that_commits_itself_is_committed_on_return(pg_engine: Any) -> None:
    """``commit=True``: the number is RESERVED for everyone as soon as the call returns (the counter lock
    is gone), and the caller's transaction then has nothing left to commit or roll back."""
    from core.db import transaction
    from signer._numbers import numbers

    try:
        with transaction(pg_engine) as s:
            drawn = _reserve(s, "k-self", commit=True)
            with transaction(pg_engine) as other:  # another connection sees it, and takes the next number
                assert numbers(other, "360732-11", 2026) == [(1, drawn.number, "RESERVED")]
                assert _reserve(other, "k-after").seq == 2
            raise RuntimeError("the caller fails after the reservation")
    except RuntimeError:
        pass
    with transaction(pg_engine) as s:
        assert [(n, st) for n, _, st in numbers(s, "360732-11", 2026)] == [(1, "RESERVED"), (2, "RESERVED")]


@pytest.mark.parametrize("commit", [False, True], ids=["caller-commits", "commits-itself"])
def test_a_twin_waiting_on_the_counter_lock_takes_over_the_reservation_committed_meanwhile(
    pg_engine: Any, commit: bool
) -> None:
    """The lookup of the key's numbers runs after the counter lock is taken, in the same round trip
    (core.db.fetch_in_one_round_trip): a twin that waited on the lock sees the first one's reservation,
    committed while it waited, and takes it over rather than drawing a second number."""
    import time

    from sqlalchemy import text

    from core.db import transaction
    from signer._numbers import numbers

    got: dict[str, Any] = {}
    with transaction(pg_engine) as first:
        drawn = _reserve(first, "k-twin")  # holds the counter row's lock until this block commits
        twin = threading.Thread(
            target=lambda: got.update(drawn=_run(pg_engine, lambda s: _reserve(s, "k-twin", commit=commit)))
        )
        twin.start()
        deadline = time.monotonic() + 10
        with pg_engine.connect() as probe:  # the twin is queued on the lock before the first commits
            while time.monotonic() < deadline:
                waiting = probe.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                ).scalar_one()
                if waiting:
                    break
                time.sleep(0.01)
        assert waiting, "the twin never waited on the counter lock"
    twin.join(10)
    assert got["drawn"] == drawn
    with transaction(pg_engine) as s:
        assert numbers(s, "360732-11", 2026) == [(1, drawn.number, "RESERVED")]


def _run(engine: Any, work: Any) -> Any:
    from core.db import transaction

    with transaction(engine) as s:
        return work(s)


def test_draws_and_flips_are_compiled_once(pg_engine: Any) -> None:
    """The statements of a draw, a settle and a void are built once (bind parameters): after the first of
    each, every one is found in SQLAlchemy's statement cache; a void keeps its reason (cut at 2000)."""
    from sqlalchemy import event, select

    from core.db import transaction
    from signer._numbers import numbers, settle_number, void_number
    from signer._storage import DocumentNumberRow

    seen: list[tuple[str, Any]] = []

    @event.listens_for(pg_engine, "after_cursor_execute")
    def record(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith(("WITH", "UPDATE")):
            seen.append((statement.split()[0], context.cache_hit))

    drawn = []
    for i in range(6):
        with transaction(pg_engine) as s:
            drawn.append(_reserve(s, f"k-{i}", commit=i % 2 == 0))
        with transaction(pg_engine) as s:
            assert (settle_number(s, drawn[-1]) if i % 3 else void_number(s, drawn[-1], "x" * 3000)) is True
    event.remove(pg_engine, "after_cursor_execute", record)
    dialect = pg_engine.dialect
    assert len(seen) == 12 and dialect.NO_CACHE_KEY not in {hit for _, hit in seen}
    # the first draw, settle and void compile; the rest are hits
    assert [hit for _, hit in seen].count(dialect.CACHE_HIT) >= 9, seen
    with transaction(pg_engine) as s:
        assert [(n, st) for n, _, st in numbers(s, "360732-11", 2026)] == [
            (i + 1, "VOID" if i % 3 == 0 else "USED") for i in range(6)
        ]
        reasons = s.scalars(select(DocumentNumberRow.reason).order_by(DocumentNumberRow.seq)).all()
        assert reasons == ["x" * 2000, None, None, "x" * 2000, None, None]
