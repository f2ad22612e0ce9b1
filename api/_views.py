"""Library dataclasses → JSON for the HTTP API (enums by value, datetimes ISO 8601, serials in hex)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from api._json import JsonObject, JsonValue
from api.cli._common import to_jsonable
from core.errors import BadInput

if TYPE_CHECKING:
    from keystore import Seal, SealEvent


def seal_view(seal: Seal) -> JsonObject:
    return {
        "seal_id": seal.seal_id,
        "name": seal.name,
        "kind": to_jsonable(seal.kind),
        "number": seal.number,
        "county": seal.county,
        "township": seal.township,
        "township_code": seal.township_code,
        "department": seal.department,
        "department_code": getattr(seal, "department_code", None),
        "status": to_jsonable(seal.status),
        "key_algorithm": to_jsonable(seal.key_algorithm),
        "cert_serial": format(seal.cert_serial, "x"),
        "not_before": seal.not_before.isoformat(),
        "not_after": seal.not_after.isoformat(),
        "custodian": seal.custodian,
    }


def event_view(event: SealEvent) -> JsonObject:
    out = to_jsonable(event)
    for key in ("cert_serial", "previous_cert_serial"):
        if isinstance(out.get(key), int):
            out[key] = format(out[key], "x")
    return dict(out)


def jsonable(value: object) -> JsonValue:
    return to_jsonable(value)


#: YYYY-MM with ASCII digits (``\\d`` would also match other scripts' digits, which ``datetime`` refuses).
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


def month_bounds(month: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of ``month`` (YYYY-MM) in ``tz``; BadInput outside
    the years a datetime can hold with its successor (0001..9998)."""
    try:
        year, mon = int(month[:4]), int(month[5:7])
        start = datetime(year, mon, 1, tzinfo=tz)
        end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    except (ValueError, IndexError) as exc:
        raise BadInput("MONTH_INVALID", f"not a month: {month[:16]!r}", "月份无效（应为YYYY-MM）") from exc
    return start, end
