"""The monthly report (月报) as data: one builder for the console page, the CSV and the PDF.

The month is the county's (Asia/Shanghai): 01-01 03:00 Beijing time counts for January. Everything a reader
sees is a name: townships and departments by name, matters with their full title (``XG-15 公共场所卫生许可
（变更）``), statuses in Chinese, refusal reasons by their Chinese message; never an enum name or a UUID.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING

from sqlalchemy import select

from api._charts import BarChart
from api._storage import SigningRequestRow
from api._views import month_bounds
from core.db import reading
from core.errors import SealServiceError
from policies import CHINA_TZ

if TYPE_CHECKING:
    from api._services import Services
    from ledger import UsageRow


STATUS_ZH = {
    "SEALED": "已用印",
    "APPROVED": "已批准待用印",
    "PENDING_APPROVAL": "待审批",
    "DENIED": "策略拒绝",
    "REJECTED": "已驳回",
    "FAILED": "用印失败",
}
REFUSED = frozenset({"DENIED", "REJECTED"})
#: How many months the per-township chart shows, ending with the report's month.
CHART_MONTHS = 6
#: The per-township chart shows this many townships (most uses first); the rest are summed as 其他.
CHART_TOWNSHIPS = 12
CSV_HEADER = ("月份", "乡镇", "委托部门", "事项代码", "事项名称", "状态", "件数")


@dataclass(frozen=True)
class ReportLine:
    township: str
    department: str
    matter_code: str
    matter_title: str
    status: str  # in Chinese
    count: int


@dataclass(frozen=True)
class TownshipRow:
    township: str
    handled: int
    sealed: int
    no2_sealed: int
    refused: int


@dataclass(frozen=True)
class MatterRow:
    matter_code: str
    matter_title: str
    handled: int
    sealed: int
    refused: int


@dataclass(frozen=True)
class MonthlyReport:
    month: str
    scope: str  # 全县, or the township's / department's name
    generated_at: str  # Beijing time, YYYY-MM-DD HH:MM
    lines: tuple[ReportLine, ...]
    townships: tuple[TownshipRow, ...]
    matters: tuple[MatterRow, ...]
    charts: tuple[BarChart, ...]

    @property
    def handled(self) -> int:
        return sum(line.count for line in self.lines)

    @property
    def no2_uses(self) -> int:
        return sum(r.no2_sealed for r in self.townships)

    @property
    def title(self) -> str:
        year, mon = self.month.split("-")
        return f"{year}年{int(mon)}月 委托事项办理及行政审批专用章使用情况月报"

    @property
    def summary(self) -> str:
        return f"本月办理事项 {self.handled} 件，其中二号章（行政审批专用章）用印 {self.no2_uses} 次。"

    def csv_rows(self) -> list[tuple[object, ...]]:
        return [
            (self.month, ln.township, ln.department, ln.matter_code, ln.matter_title, ln.status, ln.count)
            for ln in self.lines
        ]


def previous_months(month: str, n: int) -> list[str]:
    """``n`` months ending with ``month`` (YYYY-MM), oldest first."""
    year, mon = int(month[:4]), int(month[5:7])
    out = []
    for _ in range(n):
        out.append(f"{year:04d}-{mon:02d}")
        year, mon = (year - 1, 12) if mon == 1 else (year, mon - 1)
    return out[::-1]


class _Names:
    """Organisation, matter and seal names from the policy store and the seal registry, looked up once."""

    def __init__(self, services: Services) -> None:
        self.store = services.policy_store
        self.registry = services.seal_registry
        self.orgs: dict[str, str] = {}
        self.matters: dict[str, str] = {}
        if self.store is not None:
            try:
                orgs = self.store.organisations()
                self.orgs = {o.code: o.name for o in orgs}
                counties = {o.county_code for o in orgs if o.county_code}
                counties |= {o.code for o in orgs if getattr(o.kind, "value", o.kind) == "COUNTY"}
                for county in counties:
                    self.matters.update({m.code: m.title for m in self.store.matters(county)})
            except SealServiceError:
                pass

    def org(self, code: str | None) -> str:
        return self.orgs.get(code or "", code or "")

    def seal_number(self, seal_id: str) -> str:
        if self.registry is None:
            return ""
        try:
            return str(self.registry.get(seal_id).number)
        except SealServiceError:
            return ""


def build_monthly_report(
    services: Services,
    month: str,
    *,
    township_code: str | None = None,
    department_code: str | None = None,
    now: datetime | None = None,
) -> MonthlyReport:
    """The report of ``month`` for one township, one department, or the county (neither given).

    The caller has checked that the principal may see that scope."""
    start, end = month_bounds(month, CHINA_TZ)
    months = previous_months(month, CHART_MONTHS)
    chart_start, _ = month_bounds(months[0], CHINA_TZ)
    stmt = select(SigningRequestRow).where(
        SigningRequestRow.created_at >= chart_start, SigningRequestRow.created_at < end
    )
    if department_code is not None:
        stmt = stmt.where(SigningRequestRow.department_code == department_code)
    if township_code is not None:
        stmt = stmt.where(SigningRequestRow.township_code == township_code)
    names = _Names(services)
    counts: dict[tuple[str, str, str, str], int] = {}
    per_month: dict[tuple[str, str], int] = {}  # (township, month) -> sealed
    reasons: dict[str, tuple[str, int]] = {}  # code -> (message, count)
    per_no2_seal: dict[tuple[str, str, str], int] = {}  # (township, department, seal) -> sealed
    with reading(services.sessions) as s:
        for r in s.scalars(stmt):
            at = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
            local_month = at.astimezone(CHINA_TZ).strftime("%Y-%m")
            if r.status == "SEALED":
                per_month[(r.township_code, local_month)] = (
                    per_month.get((r.township_code, local_month), 0) + 1
                )
            if not start <= at < end:
                continue
            key = (r.township_code, r.department_code or "", r.matter_code, r.status)
            counts[key] = counts.get(key, 0) + 1
            if r.status in REFUSED:
                for reason in json.loads(r.reason_codes or "[]") or [{"code": r.status}]:
                    code = str(reason.get("code", r.status))
                    message = str(reason.get("message_zh") or STATUS_ZH.get(code, code))
                    reasons[code] = (reasons.get(code, (message, 0))[0], reasons.get(code, ("", 0))[1] + 1)
            if r.status == "SEALED" and r.department_code:
                k = (r.township_code, r.department_code, r.seal_id)
                per_no2_seal[k] = per_no2_seal.get(k, 0) + 1

    lines = tuple(
        ReportLine(
            names.org(town),
            names.org(dept) if dept else "—",
            matter,
            names.matters.get(matter, ""),
            STATUS_ZH.get(status, status),
            n,
        )
        for (town, dept, matter, status), n in sorted(counts.items())
    )
    townships: dict[str, list[int]] = {}
    matters: dict[str, list[int]] = {}
    for (town, dept, matter, status), n in counts.items():
        t = townships.setdefault(town, [0, 0, 0, 0])
        m = matters.setdefault(matter, [0, 0, 0])
        t[0] += n
        m[0] += n
        if status == "SEALED":
            t[1] += n
            m[1] += n
            if dept:
                t[2] += n
        if status in REFUSED:
            t[3] += n
            m[2] += n
    township_rows = tuple(
        TownshipRow(names.org(code), *vals) for code, vals in sorted(townships.items(), key=lambda kv: kv[0])
    )
    matter_rows = tuple(
        MatterRow(code, names.matters.get(code, ""), *vals) for code, vals in sorted(matters.items())
    )

    # 1. sealed uses per township per month (the report's month and the five before it)
    towns = sorted(
        {t for t, _ in per_month}, key=lambda t: (-sum(per_month.get((t, m), 0) for m in months), t)
    )
    shown, rest = towns[:CHART_TOWNSHIPS], towns[CHART_TOWNSHIPS:]
    categories = [names.org(t) for t in shown]
    values = [tuple(per_month.get((t, m), 0) for m in months) for t in shown]
    if rest:
        categories.append("其他乡镇")
        values.append(tuple(sum(per_month.get((t, m), 0) for t in rest) for m in months))
    uses = BarChart(
        "chart-uses",
        f"各乡镇每月用印次数（{months[0]} 至 {months[-1]}）",
        tuple(categories),
        tuple(months),
        tuple(values),
        empty_text="这几个月没有用印记录",
    )
    # 2. refusals by reason (a request refused for two reasons counts under both)
    ordered = sorted(reasons.items(), key=lambda kv: (-kv[1][1], kv[0]))
    refusals = BarChart(
        "chart-refusals",
        "拒绝用印原因（本月）",
        tuple(f"{message}（{code}）" for code, (message, _n) in ordered),
        ("次数",),
        tuple((n,) for _code, (_m, n) in ordered),
        empty_text="本月没有拒绝或驳回",
    )
    # 3. No. 2 seal uses per agreement: one No. 2 seal per agreement (township, department, seal number)
    agreements = sorted(per_no2_seal.items(), key=lambda kv: (-kv[1], kv[0]))
    no2 = BarChart(
        "chart-no2",
        "二号章按委托协议用印次数（本月）",
        tuple(
            f"{names.org(t)}·{names.org(d)}" + (f"（{num}）" if (num := names.seal_number(seal)) else "")
            for (t, d, seal), _n in agreements
        ),
        ("用印",),
        tuple((n,) for _k, n in agreements),
        empty_text="本月没有二号章用印",
    )
    scope = "、".join(names.org(c) for c in (township_code, department_code) if c) or "全县"
    generated = (now or datetime.now(CHINA_TZ)).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
    return MonthlyReport(month, scope, generated, lines, township_rows, matter_rows, (uses, refusals, no2))


USAGE_HEADER = (
    "序号",
    "日期",
    "事项代码",
    "事项名称",
    "事由",
    "批准人",
    "使用人",
    "数量",
    "证书编号",
    "文号",
    "文书种类",
    "办理环节",
)


def display_names(services: Services) -> dict[str, str]:
    """Account id and username → display name (the ledger names people by either, by where they acted)."""
    from api._storage import AccountRow

    found: dict[str, str] = {}
    with reading(services.sessions) as s:
        for account_id, username, display in s.execute(
            select(AccountRow.account_id, AccountRow.username, AccountRow.display_name)
        ):
            found[account_id] = found[username] = display or username
    return found


def _enum_zh(enum: type[Enum], name: str) -> str:
    try:
        return str(enum[name].value)
    except KeyError:
        return "书面认证" if name == "ATTESTATION" else name


def usage_rows(services: Services, rows: list[UsageRow]) -> list[tuple[object, ...]]:
    """The usage ledger (使用登记台账) for people: matters by name, people by display name, kinds and stages
    in Chinese; ``-`` (no approval was needed) stays as it is."""
    from policies import DocumentKind, Stage

    people = display_names(services)
    matters = _Names(services).matters
    return [
        (
            r.index,
            r.date,
            r.matter,
            matters.get(r.matter, ""),
            r.reason,
            people.get(r.approver, r.approver),
            people.get(r.user, r.user),
            r.count,
            r.cert_serial,
            r.document_number,
            _enum_zh(DocumentKind, r.document_kind),
            _enum_zh(Stage, r.stage),
        )
        for r in rows
    ]
