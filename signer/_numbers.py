"""Approval document numbers (审批专用文号): gap-free and unique per (sequence, year).

A number is drawn inside the signing transaction: the (sequence, year) counter row is locked
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite writers already hold the database lock from
``BEGIN IMMEDIATE``), incremented, and the number recorded in ``sig_document_numbers`` as ``USED``. If the
signing then fails, the caller rolls back to a savepoint taken after the draw and calls :func:`void_number`,
so the number stays consumed and is recorded ``VOID`` (and logged in the ledger): never reused, never
silently skipped. If the whole transaction rolls back, the counter rolls back with it and no number was
ever handed out.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from core.errors import BadInput, Conflict

from ._storage import DocumentNumberRow, NumberCounterRow

DEFAULT_FORMAT = "{township_short}审批〔{year}〕{seq}号"
CHINA_TZ = timezone(timedelta(hours=8), "CST")
_FIELDS = {"township_short", "township", "county", "year", "seq"}
_SUFFIXES = ("民族乡", "街道办事处", "街道", "乡", "镇")


@dataclass(frozen=True)
class DrawnNumber:
    sequence: str
    year: int
    seq: int
    number: str


def check_format(fmt: str) -> str:
    """A number format must name ``{seq}`` and ``{year}`` and only known fields."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}
    except ValueError as exc:
        raise BadInput("NUMBER_FORMAT_INVALID", f"bad number format {fmt!r}: {exc}", "文号格式无效") from exc
    unknown = names - _FIELDS
    if unknown or not {"seq", "year"} <= names:
        raise BadInput(
            "NUMBER_FORMAT_INVALID",
            f"a number format uses {sorted(_FIELDS)} and must contain {{seq}} and {{year}}",
            "文号格式须包含 {seq} 与 {year}",
            details={"unknown": sorted(unknown)},
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


def year_of(moment: datetime) -> int:
    """The year on the document is China's calendar year, not UTC's."""
    return moment.astimezone(CHINA_TZ).year


def draw_number(
    session: Session,
    *,
    sequence: str,
    year: int,
    fmt: str,
    township: str,
    county: str,
    idempotency_key: str,
    now: datetime,
) -> DrawnNumber:
    check_format(fmt)
    pg = session.get_bind().dialect.name == "postgresql"
    if pg:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(
            pg_insert(NumberCounterRow)
            .values(sequence=sequence, year=year, last_seq=0)
            .on_conflict_do_nothing(index_elements=["sequence", "year"])
        )
    q = select(NumberCounterRow.last_seq).where(
        NumberCounterRow.sequence == sequence, NumberCounterRow.year == year
    )
    if pg:
        q = q.with_for_update()
    last = session.execute(q).scalar_one_or_none()
    if last is None:  # SQLite: the database lock is held, nobody else can insert meanwhile
        session.execute(insert(NumberCounterRow).values(sequence=sequence, year=year, last_seq=0))
        last = 0
    seq = last + 1
    session.execute(
        update(NumberCounterRow)
        .where(NumberCounterRow.sequence == sequence, NumberCounterRow.year == year)
        .values(last_seq=seq)
    )
    number = fmt.format(
        township_short=township_short(township, county), township=township, county=county, year=year, seq=seq
    )
    clash = session.execute(select(DocumentNumberRow.id).where(DocumentNumberRow.number == number)).first()
    if clash is not None:
        raise Conflict(
            "DOCUMENT_NUMBER_CLASH",
            f"{number} already exists (two sequences share one format?)",
            f"文号 {number} 已存在",
        )
    session.add(
        DocumentNumberRow(
            sequence=sequence,
            year=year,
            seq=seq,
            number=number,
            status="USED",
            idempotency_key=idempotency_key,
            created_at=now,
        )
    )
    session.flush()
    return DrawnNumber(sequence=sequence, year=year, seq=seq, number=number)


def void_number(session: Session, drawn: DrawnNumber, reason: str) -> None:
    """Record a drawn number as void (its signing failed); the counter keeps it consumed."""
    row = session.execute(
        select(DocumentNumberRow).where(
            DocumentNumberRow.sequence == drawn.sequence,
            DocumentNumberRow.year == drawn.year,
            DocumentNumberRow.seq == drawn.seq,
        )
    ).scalar_one()
    row.status = "VOID"
    row.reason = reason[:2000]


def numbers(session: Session, sequence: str, year: int) -> list[tuple[int, str, str]]:
    """(seq, number, status) of a sequence in a year, in order: an auditor sees every number's fate."""
    rows = session.execute(
        select(DocumentNumberRow.seq, DocumentNumberRow.number, DocumentNumberRow.status)
        .where(DocumentNumberRow.sequence == sequence, DocumentNumberRow.year == year)
        .order_by(DocumentNumberRow.seq)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]
