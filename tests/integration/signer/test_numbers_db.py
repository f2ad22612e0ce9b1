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


def test_concurrent_draws_are_gap_free(pg_engine: Any) -> None:
    from core.db import transaction
    from signer._numbers import DEFAULT_FORMAT, draw_number, numbers, void_number

    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for i in range(10):
                with transaction(pg_engine) as s:
                    drawn = draw_number(
                        s,
                        sequence="360732-11",
                        year=2026,
                        fmt=DEFAULT_FORMAT,
                        township="兴江乡",
                        county="兴国县",
                        idempotency_key=f"{w}-{i}",
                        now=NOW,
                    )
                    if i % 4 == 3:  # the signing failed after the draw: the number is voided, kept
                        sp = s.begin_nested()
                        sp.rollback()
                        void_number(s, drawn, "SIGNING_FAILED")
                if i == 5:  # a transaction that dies whole gives its number back
                    try:
                        with transaction(pg_engine) as s:
                            draw_number(
                                s,
                                sequence="360732-11",
                                year=2026,
                                fmt=DEFAULT_FORMAT,
                                township="兴江乡",
                                county="兴国县",
                                idempotency_key=f"{w}-abort",
                                now=NOW,
                            )
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
    assert got[16][1] == "兴江审批〔2026〕17号"
    assert other == []


def test_number_format_rules() -> None:
    from core.errors import BadInput
    from signer._numbers import check_format, township_short, year_of

    with pytest.raises(BadInput) as err:
        check_format("{township_short}审批{seq}号")
    assert err.value.code == "NUMBER_FORMAT_INVALID"
    with pytest.raises(BadInput):
        check_format("{year}{seq}{secret}")
    assert check_format("兴国审批〔{year}〕{seq:03d}号")
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
        seq = numbers(s, xingjiang_seal.township_code, 2026)
    assert [(n, st) for n, _, st in seq] == [(i, "USED") for i in range(1, 6)]
    report = ledger.audit()
    assert report.ok and report.size == 5
