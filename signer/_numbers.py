"""Approval document numbers (审批专用文号): gap-free and unique per (sequence, year).

A sequence is one issuing authority's series of one document family (:class:`Series`, issue 22 leak 15):
the township's own seal, each No. 2 seal kept there (in its department's name), and within each the
approval results, the acceptance papers and the opinions are numbered apart.

A number is *reserved* in a short transaction of its own: the (sequence, year) counter row is locked
(on PostgreSQL by an ``INSERT … ON CONFLICT DO UPDATE`` that creates or touches it; SQLite writers already
hold the database lock from ``BEGIN IMMEDIATE``), incremented, and the number recorded in
``sig_document_numbers`` as ``RESERVED`` with the request's idempotency key; the transaction commits at
once, so the counter lock is held for milliseconds, not for the whole signing. The number then ends in
exactly one of two states:

* ``USED``: the signing's final transaction flips ``RESERVED → USED`` together with its ``SEAL_SIGNED``
  ledger entry and the stored sealed document (:func:`settle_number`);
* ``VOID``: the signing failed (:func:`void_number`, with a ``DOCUMENT_NUMBER_VOIDED`` ledger entry), or
  its process died and the reservation outlived ``number_reservation_ttl_s`` (:func:`expired_reservations`,
  voided by the sweeper the same way).

A retry with the same idempotency key takes over its own ``RESERVED`` number instead of drawing another
(so a crash followed by a retry leaves no gap). Both flips are conditional (``WHERE status = 'RESERVED'``):
of two racers on one number exactly one wins; the loser learns it from the row count. A number is never
reused and never silently skipped; an auditor sees every number's fate.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, insert, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import execute_and_commit, fetch_in_one_round_trip
from core.errors import BadInput, Conflict

from ._storage import DocumentNumberRow, NumberCounterRow

if TYPE_CHECKING:
    from keystore import Seal
    from policies import NumberFamily

DEFAULT_FORMAT = "{issuer}{family}〔{year}〕{seq}号"
CHINA_TZ = timezone(timedelta(hours=8), "CST")
_FIELDS = {
    "issuer",
    "family",
    "township_short",
    "township",
    "county",
    "department",
    "seal_number",
    "year",
    "seq",
}
#: Without these a format would print one look for every issuer and family: series would collide.
_REQUIRED = {"issuer", "family", "seq", "year"}
_SUFFIXES = ("民族乡", "街道办事处", "街道", "乡", "镇")
RESERVED, USED, VOID = "RESERVED", "USED", "VOID"


@dataclass(frozen=True)
class DrawnNumber:
    sequence: str
    year: int
    seq: int
    number: str


@dataclass(frozen=True)
class Series:
    """One issuing authority's series of one document family (issue 22, leak 15).

    ``sequence`` keys the counter; ``fields`` fill the format (all but ``year`` and ``seq``). The township's
    own approval seal numbers in the township's name (``梅窖审批〔2026〕N号``, counter key = the township
    code, as before, so earlier numbers continue); a No. 2 seal in its department's name, on the department's
    series (``兴国县林业局审批〔2026〕N号``, 004: the seal and the decision are the department's);
    acceptance papers and opinions each in their own family (``梅窖受理〔2026〕N号``), never on the
    approval series (003).
    """

    sequence: str
    fields: Mapping[str, str]


def series_for(seal: Seal, family: NumberFamily) -> Series:
    """The series a document of ``family`` (a ``policies.NumberFamily``) sealed with ``seal`` draws from."""
    township = township_short(seal.township, seal.county)
    if getattr(seal.kind, "name", str(seal.kind)) == "DEPARTMENT_NO2":
        # The department's series, one counter for all its No. 2 seals: the number is the department's
        # 审批文书编号 (004 二.3), whichever township finalised the matter (the ledger names it).
        issuer = seal.department or seal.department_code or ""
        base = f"dept:{seal.department_code or issuer}"
    else:
        issuer, base = township, seal.township_code
    sequence = base if family.name == "APPROVAL" else f"{base}/{family.name}"
    fields = {
        "issuer": issuer,
        "family": family.value,
        "township_short": township,
        "township": seal.township,
        "county": seal.county,
        "department": seal.department or "",
        "seal_number": "" if seal.number is None else str(seal.number),
    }
    return Series(sequence=sequence, fields=MappingProxyType(fields))


def _fields(township: str, county: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    short = township_short(township, county)
    out = {
        "issuer": short,
        "family": "审批",
        "township_short": short,
        "township": township,
        "county": county,
        "department": "",
        "seal_number": "",
    }
    out.update(extra or {})
    return out


def check_format(fmt: str) -> str:
    """A number format names ``{issuer}``, ``{family}``, ``{year}`` and ``{seq}``, and only known fields."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}
    except ValueError as exc:
        raise BadInput("NUMBER_FORMAT_INVALID", f"bad number format {fmt!r}: {exc}", "文号格式无效") from exc
    unknown = names - _FIELDS
    if unknown or not _REQUIRED <= names:
        raise BadInput(
            "NUMBER_FORMAT_INVALID",
            f"a number format uses {sorted(_FIELDS)} and must contain {{issuer}}, {{family}}, {{year}} and "
            "{seq}: each issuing authority and document family has its own series (issue 22)",
            "文号格式须包含 {issuer}、{family}、{year} 与 {seq}（各发文机关、各类文书分别编号）",
            details={"unknown": sorted(unknown), "missing": sorted(_REQUIRED - names)},
        )
    return fmt


def township_short(township: str, county: str = "") -> str:
    """``兴江乡`` → ``兴江``; a county prefix is dropped too (``兴国县兴江乡`` → ``兴江``)."""
    name = township.strip()
    if county and name.startswith(county):
        name = name[len(county) :]
    name = name.removesuffix("人民政府")
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def series_prefix(
    fmt: str, township: str, county: str = "", fields: Mapping[str, str] | None = None
) -> str | None:
    """The issuing-organ part a number of this series starts with (``兴江审批`` for the default format),
    None when the format has no bracketed year (``〔{year}〕`` and its variants) to recognise a number by."""
    head, sep, _ = fmt.partition("{year}")
    if not sep or not head or head[-1] not in "〔【[(（［":
        return None
    try:
        text = head[:-1].format(**_fields(township, county, fields))
    except (KeyError, IndexError, ValueError):
        return None
    return text.strip() or None


def year_of(moment: datetime) -> int:
    """The year on the document is China's calendar year, not UTC's."""
    return moment.astimezone(CHINA_TZ).year


class AlreadySettled(Exception):  # noqa: N818 -- a signal, not an error
    """A signing with this idempotency key has already used its number: its stored document is the answer."""


# The counter row, locked (created on the year's first number) and read: the UPDATE changes nothing.
_LOCK_COUNTER = (
    pg_insert(NumberCounterRow)
    .values(sequence=bindparam("sequence"), year=bindparam("year"), last_seq=literal_column("0"))
    .on_conflict_do_update(index_elements=["sequence", "year"], set_={"last_seq": NumberCounterRow.last_seq})
    .returning(NumberCounterRow.last_seq)
)
# This idempotency key's open or used numbers
_MINE = (
    select(
        DocumentNumberRow.sequence,
        DocumentNumberRow.year,
        DocumentNumberRow.seq,
        DocumentNumberRow.number,
        DocumentNumberRow.status,
    )
    .where(
        DocumentNumberRow.idempotency_key == bindparam("key"),
        or_(DocumentNumberRow.status == bindparam("reserved"), DocumentNumberRow.status == bindparam("used")),
    )
    .order_by(DocumentNumberRow.seq)
)
# The statements of a draw and a flip, built once (their cache keys memoized) with named bind values that
# are no column's name (an INSERT or UPDATE would take a value named after a column as that column's).
_numbers_t = cast(Table, DocumentNumberRow.__table__)
_counters_t = cast(Table, NumberCounterRow.__table__)
# SQLite: the counter row, read under the database lock BEGIN IMMEDIATE took (None on the year's first)
_COUNTER = select(_counters_t.c.last_seq).where(
    _counters_t.c.sequence == bindparam("n_sequence"), _counters_t.c.year == bindparam("n_year")
)
# The drawn number, RESERVED with the request's idempotency key
_RECORD = insert(_numbers_t).values(
    sequence=bindparam("n_sequence"),
    year=bindparam("n_year"),
    seq=bindparam("n_seq"),
    number=bindparam("n_number"),
    status=bindparam("n_status"),
    idempotency_key=bindparam("n_key"),
    created_at=bindparam("n_now"),
)
# The counter moved on to the drawn number; SQLite makes the row on the year's first number
_BUMP = (
    update(_counters_t)
    .where(_counters_t.c.sequence == bindparam("n_sequence"), _counters_t.c.year == bindparam("n_year"))
    .values(last_seq=bindparam("n_seq"))
)
_NEW_COUNTER = insert(_counters_t).values(
    sequence=bindparam("n_sequence"), year=bindparam("n_year"), last_seq=bindparam("n_seq")
)
# PostgreSQL: both in one statement (the bump as a data-modifying CTE of the insert)
_RECORD_AND_BUMP = _RECORD.add_cte(_BUMP.cte("bump"))
# RESERVED -> USED or VOID, only while still RESERVED; a void says why
_FLIP_WHERE = (
    _numbers_t.c.sequence == bindparam("n_sequence"),
    _numbers_t.c.year == bindparam("n_year"),
    _numbers_t.c.seq == bindparam("n_seq"),
    _numbers_t.c.status == bindparam("n_reserved"),
)
_FLIP = update(_numbers_t).where(*_FLIP_WHERE).values(status=bindparam("n_status"))
_FLIP_WITH_REASON = (
    update(_numbers_t).where(*_FLIP_WHERE).values(status=bindparam("n_status"), reason=bindparam("n_reason"))
)


def reserve_number(
    session: Session,
    *,
    sequence: str,
    year: int,
    fmt: str,
    township: str,
    county: str,
    idempotency_key: str,
    now: datetime,
    commit: bool = False,
    fields: Mapping[str, str] | None = None,
) -> DrawnNumber:
    """The number for this request: its own earlier reservation if one is still open, else the next one.

    Run it in a transaction of its own and commit at once: the counter row stays locked until then.
    ``commit=True`` does that here on PostgreSQL: the last statement and the COMMIT share one round trip
    (:func:`core.db.execute_and_commit`), so the lock does not wait for this thread to be scheduled again.
    Raises :class:`AlreadySettled` when a twin with this idempotency key has settled its number meanwhile.
    ``fields`` (a :class:`Series`' fields) name the issuer and family; without them the township's approval
    series.

    PostgreSQL, three statements in two round trips: lock the counter row (creating it on the year's first
    number) and read it, then look up this key's numbers under the lock (a new statement, so a twin's
    reservation committed while this one waited is seen), both sent at once
    (:func:`core.db.fetch_in_one_round_trip`); then bump the counter and record the number in one statement,
    with the COMMIT when ``commit``. A number another sequence
    already printed (two sequences sharing one format) is refused by the unique index, not by a lookup.
    """
    check_format(fmt)
    pg = session.get_bind().dialect.name == "postgresql"
    mine: Sequence[Any]
    pipelined = (
        fetch_in_one_round_trip(
            session,
            [
                (_LOCK_COUNTER, {"sequence": sequence, "year": year}),
                (_MINE, {"key": idempotency_key, "reserved": RESERVED, "used": USED}),
            ],
        )
        if pg
        else None
    )
    if pipelined is not None:
        # PostgreSQL: lock the counter row (creating it on the year's first number) and read it, then look
        # up this key's numbers under the lock, in one round trip: the second statement starts once the
        # first holds the lock, with its own snapshot, so a twin's reservation committed meanwhile is seen.
        last: int | None = pipelined[0][0][0]
        mine = pipelined[1]
    else:
        if pg:
            last = session.execute(_LOCK_COUNTER, {"sequence": sequence, "year": year}).scalar_one()
        else:  # SQLite: BEGIN IMMEDIATE holds the database lock, nobody else writes meanwhile
            last = session.execute(_COUNTER, {"n_sequence": sequence, "n_year": year}).scalar_one_or_none()
        # Under the counter lock: a retry (or a concurrent twin) of this request takes over its
        # reservation, or learns that the twin has finished.
        mine = session.execute(_MINE, {"key": idempotency_key, "reserved": RESERVED, "used": USED}).all()
    if any(r[4] == USED for r in mine):
        raise AlreadySettled(idempotency_key)
    for r in mine:
        if (r[0], r[1]) == (sequence, year):
            return DrawnNumber(sequence=sequence, year=year, seq=r[2], number=r[3])
    seq = (last or 0) + 1
    number = fmt.format(**_fields(township, county, fields), year=year, seq=seq)
    values = {
        "n_sequence": sequence,
        "n_year": year,
        "n_seq": seq,
        "n_number": number,
        "n_status": RESERVED,
        "n_key": idempotency_key,
        "n_now": now,
    }
    try:
        if pg:
            if commit:
                execute_and_commit(session, (_RECORD_AND_BUMP, values))
            else:
                session.execute(_RECORD_AND_BUMP, values)
        else:
            session.execute(_NEW_COUNTER if last is None else _BUMP, values)
            session.execute(_RECORD, values)
    except IntegrityError as exc:
        detail = str(exc.orig)
        if "uq_sig_document_numbers_number" not in detail and "sig_document_numbers.number" not in detail:
            raise
        raise Conflict(
            "DOCUMENT_NUMBER_CLASH",
            f"{number} already exists (two sequences share one format?)",
            f"文号 {number} 已存在",
        ) from None
    return DrawnNumber(sequence=sequence, year=year, seq=seq, number=number)


def _flip(session: Session, drawn: DrawnNumber, status: str, reason: str | None = None) -> bool:
    values: dict[str, object] = {
        "n_sequence": drawn.sequence,
        "n_year": drawn.year,
        "n_seq": drawn.seq,
        "n_reserved": RESERVED,
        "n_status": status,
    }
    if reason is None:
        result = session.execute(_FLIP, values)
    else:
        result = session.execute(_FLIP_WITH_REASON, {**values, "n_reason": reason[:2000]})
    return bool(getattr(result, "rowcount", 0) == 1)


def settle_number(session: Session, drawn: DrawnNumber) -> bool:
    """``RESERVED → USED``; False when the reservation is no longer open (a twin settled it, or expired)."""
    return _flip(session, drawn, USED)


def void_number(session: Session, drawn: DrawnNumber, reason: str) -> bool:
    """``RESERVED → VOID`` (its signing failed or never ended); the counter keeps the number consumed.

    False when the reservation is no longer open: then there is nothing to void (and nothing to log).
    """
    return _flip(session, drawn, VOID, reason)


def expired_reservations(
    session: Session, before: datetime, limit: int = 100
) -> list[tuple[DrawnNumber, str]]:
    """Open reservations made before ``before``, with their idempotency keys, locked for voiding.

    On PostgreSQL the rows are locked ``SKIP LOCKED``: a signing settling one right now keeps it, and two
    sweepers never void the same number.
    """
    q = (
        select(
            DocumentNumberRow.sequence,
            DocumentNumberRow.year,
            DocumentNumberRow.seq,
            DocumentNumberRow.number,
            DocumentNumberRow.idempotency_key,
        )
        .where(DocumentNumberRow.status == RESERVED, DocumentNumberRow.created_at < before)
        .order_by(DocumentNumberRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return [
        (DrawnNumber(sequence=r[0], year=r[1], seq=r[2], number=r[3]), r[4]) for r in session.execute(q).all()
    ]


def numbers(session: Session, sequence: str, year: int) -> list[tuple[int, str, str]]:
    """(seq, number, status) of a sequence in a year, in order: an auditor sees every number's fate."""
    rows = session.execute(
        select(DocumentNumberRow.seq, DocumentNumberRow.number, DocumentNumberRow.status)
        .where(DocumentNumberRow.sequence == sequence, DocumentNumberRow.year == year)
        .order_by(DocumentNumberRow.seq)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]
