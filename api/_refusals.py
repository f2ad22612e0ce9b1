"""Refusals are the operator's record, and cheap to abuse only up to a point (issue 21, finding 4).

A policy refusal is evidence about the person who tried, so it is filed under the operator's organisation:
a clerk of township B trying township A's seal makes a DENIED request counted in B's lists and anomalies
report. A's supervisors see it as an *attempt from outside* (the anomalies report's
``attempts_from_outside``), not among A's own refusals. Requests made before the operator's organisation
was recorded are filed under the seal's township, as they were.

Every refusal writes a request row and a ledger entry; a script repeating a refused submission would fill
the ledger. So each account may be refused :attr:`~core.settings.Settings.refusal_limit_per_minute` times a
minute; beyond that a submission the policy refuses is answered ``429 RATE_LIMITED`` and nothing is written
(the operator's log notes it). The count is read from the requests table, so it holds across serve workers;
it is read only when the policy refuses, never on the way to a seal.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, not_, or_, select
from sqlalchemy.orm import QueryableAttribute

from api._errors import RateLimited
from api._services import Services
from api._storage import SigningRequestRow
from core.db import reading

log = logging.getLogger("yizhang.api")

#: A request's organisation column (``township_code``, or ``department_code`` for a department).
OrgColumn = QueryableAttribute[str] | QueryableAttribute[str | None]

WINDOW = timedelta(minutes=1)
DENIED = "DENIED"


def foreign_refusal() -> ColumnElement[bool]:
    """SQL: a refusal whose operator is not of the seal's township (filed under the operator's)."""
    r = SigningRequestRow
    return and_(r.status == DENIED, r.operator_org.is_not(None), r.operator_org != r.township_code)


def is_foreign_refusal(row: SigningRequestRow) -> bool:
    return bool(row.status == DENIED and row.operator_org and row.operator_org != row.township_code)


def filed_under(row: SigningRequestRow) -> str:
    """The organisation whose records hold this request."""
    return str(row.operator_org) if is_foreign_refusal(row) else str(row.township_code)


def of_organisation(org_code: str, column: OrgColumn) -> ColumnElement[bool]:
    """SQL: requests filed under ``org_code``, where ``column`` is the request's own organisation column
    (the township, or the department for a department's officers)."""
    r = SigningRequestRow
    return or_(
        and_(column == org_code, not_(foreign_refusal())), and_(foreign_refusal(), r.operator_org == org_code)
    )


def check_refusal_budget(services: Services, account_id: str, now: datetime) -> None:
    """``RateLimited`` when this account was refused ``refusal_limit_per_minute`` times in the last minute."""
    limit = services.settings.refusal_limit_per_minute
    r = SigningRequestRow
    with reading(services.sessions) as s:
        recent = s.scalar(
            select(func.count())
            .select_from(r)
            .where(r.submitted_by == account_id, r.status == DENIED, r.created_at > now - WINDOW)
        )
    if int(recent or 0) >= limit:
        log.warning(
            "refusal not recorded: account over %d refusals a minute", limit, extra={"account": account_id}
        )
        raise RateLimited(
            "RATE_LIMITED",
            f"more than {limit} refused submissions in a minute; wait before trying again",
            f"一分钟内被拒绝的用章申请超过 {limit} 次，请稍后再试",
            details={"retry_after_s": int(WINDOW.total_seconds())},
        )
