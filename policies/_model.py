"""The policy vocabulary: enums and the frozen dataclasses that travel between packages.

Standard library only (an import-linter contract enforces it). Nothing here reads a clock or a database:
storage builds :class:`PolicyFacts`, the signer builds :class:`SealFacts` from a keystore ``Seal``, and the
caller passes the time to :func:`policies.decide`.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType

#: Every date a rule, a month or a report reads is China Standard Time (Asia/Shanghai: UTC+8, no DST since
#: 1991). A date or a time without an offset given by a county is read in it (issue 22, leak 9).
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


def normalise_code(text: str) -> str:
    """A code as the county means it: NFKC (full-width ``ＹＹ－００１`` -> ``YY-001``), trimmed.

    Codes are compared only in this form, wherever they are read (catalog import, powers, agreements,
    requests), so a full-width look-alike is the same matter, never a second one (issue 22, leak 1).
    """
    return unicodedata.normalize("NFKC", text).strip()


class PowerType(StrEnum):
    """Power type (权力类型) of a matter. Sub-kinds (其他行政权力－年检) keep their suffix on the matter."""

    LICENSING = "行政许可"
    BENEFIT = "行政给付"
    CONFIRMATION = "行政确认"
    PUBLIC_SERVICE = "公共服务"
    OTHER = "其他行政权力"

    @classmethod
    def parse(cls, text: str) -> tuple[PowerType, str | None]:
        """``"其他行政权力－年检"`` -> ``(OTHER, "年检")``; raises ``ValueError`` on an unknown type."""
        raw = text.strip()
        for sep in ("－", "—", "-", "–"):
            if sep in raw:
                head, _, sub = raw.partition(sep)
                return cls(head.strip()), (sub.strip() or None)
        return cls(raw), None


class Stage(StrEnum):
    """Stages of handling a matter at which a seal may be applied."""

    ACCEPT = "受理"
    REVIEW = "审核"
    FIRST_REVIEW = "初审"
    RECHECK = "复核"
    APPROVE = "审批"

    @classmethod
    def parse(cls, text: str) -> Stage:
        """Accept the Chinese label, the English member name, or 决定 (decision) for 审批."""
        raw = text.strip()
        if raw in {"决定", "审批/决定", "办结"}:
            return cls.APPROVE
        try:
            return cls(raw)
        except ValueError:
            return cls[raw.upper()]


ALL_STAGES: frozenset[Stage] = frozenset(Stage)
#: The order a matter passes its stages in (受理 → 初审 → 审核 → 复核 → 审批), for listing them.
STAGE_ORDER: tuple[Stage, ...] = (
    Stage.ACCEPT,
    Stage.FIRST_REVIEW,
    Stage.REVIEW,
    Stage.RECHECK,
    Stage.APPROVE,
)
#: Township approval switched on, no per-stage list: every stage but 受理 needs the principal (003 authorises
#: window staff to accept applications and issue the 受理凭证 without a sign-off).
DEFAULT_APPROVAL_STAGES: frozenset[Stage] = ALL_STAGES - {Stage.ACCEPT}


class DocumentKind(StrEnum):
    """Documents the approval seal is applied to (source 000; refusal decision from 003)."""

    ACCEPTANCE_NOTICE = "受理通知书"
    NON_ACCEPTANCE_NOTICE = "不予受理通知书"
    SUPPLEMENT_NOTICE = "补正材料告知书"
    OPINION = "意见"
    REPLY = "批复"
    PERMIT = "许可证及其附件"
    APPROVAL_FORM = "审批表单"
    APPROVAL_DECISION = "准予决定书"
    REFUSAL_DECISION = "不予批准决定书"

    @classmethod
    def parse(cls, text: str) -> DocumentKind:
        raw = text.strip()
        try:
            return cls(raw)
        except ValueError:
            return cls[raw.upper()]


class NumberFamily(StrEnum):
    """The series a sealed document's number is drawn from (issue 22, leak 15).

    003: approval *results* (审批结果: decisions, permits, replies, forms) carry the 行政审批专用文号;
    the window's acceptance papers are 受理凭证, issued by window staff, and opinions at review stages are
    not results. So each has a series of its own: an acceptance notice or an opinion never consumes an
    approval number.
    """

    APPROVAL = "审批"
    ACCEPTANCE = "受理"
    OPINION = "意见"


#: Document kind -> its number family (003 “审批结果应当使用统一的行政审批专用章和行政审批专用文号”;
#: “窗口人员接收申请材料并出具受理凭证”).
NUMBER_FAMILIES: Mapping[DocumentKind, NumberFamily] = MappingProxyType(
    {
        DocumentKind.ACCEPTANCE_NOTICE: NumberFamily.ACCEPTANCE,
        DocumentKind.NON_ACCEPTANCE_NOTICE: NumberFamily.ACCEPTANCE,
        DocumentKind.SUPPLEMENT_NOTICE: NumberFamily.ACCEPTANCE,
        DocumentKind.OPINION: NumberFamily.OPINION,
        DocumentKind.REPLY: NumberFamily.APPROVAL,
        DocumentKind.PERMIT: NumberFamily.APPROVAL,
        DocumentKind.APPROVAL_FORM: NumberFamily.APPROVAL,
        DocumentKind.APPROVAL_DECISION: NumberFamily.APPROVAL,
        DocumentKind.REFUSAL_DECISION: NumberFamily.APPROVAL,
    }
)


def number_family(kind: DocumentKind) -> NumberFamily:
    """The number series family of a document kind (every kind has one: an unmapped kind is a bug)."""
    return NUMBER_FAMILIES[kind]


class HandlingMode(StrEnum):
    """How a township handles a matter.

    Xingguo (004) has three modes; only ``NO2_SEAL`` lets the township stamp (the department's numbered
    seal). The Shanxi catalog (002) gives a township *scope* per matter; each scope is a mode here whose
    stages are derived in :data:`MODE_STAGES`.
    """

    NO2_SEAL = "“2号章”委托办"
    ASSIST_PROXY = "乡镇帮办代办"
    SYSTEM_EXTENSION = "业务系统延伸办"
    SCOPE_ACCEPT = "乡级负责受理"
    SCOPE_ACCEPT_REVIEW = "乡级负责受理、审核"
    SCOPE_ACCEPT_FIRST_REVIEW = "乡级负责受理、初审"
    SCOPE_REVIEW = "乡级负责审核"
    SCOPE_FIRST_REVIEW = "乡级负责初审"
    SCOPE_RECHECK = "乡级负责复核"
    SCOPE_COMPLETE = "乡级办结"

    @property
    def stages(self) -> frozenset[Stage]:
        return MODE_STAGES[self]

    @property
    def allows_seal(self) -> bool:
        return bool(MODE_STAGES[self])


# Derivation (documented in docs/catalog-format.md): a Shanxi scope "乡级负责X、Y" names exactly the stages
# the township may stamp; a blank scope means the township completes the matter itself, so every stage up to
# and including 审批. A 2号章 matter is finalised by the township in the department's name (all stages, but
# only within an agreement). 帮办代办 and 系统延伸办 never let the township stamp.
MODE_STAGES: Mapping[HandlingMode, frozenset[Stage]] = MappingProxyType(
    {
        HandlingMode.NO2_SEAL: ALL_STAGES,
        HandlingMode.ASSIST_PROXY: frozenset(),
        HandlingMode.SYSTEM_EXTENSION: frozenset(),
        HandlingMode.SCOPE_ACCEPT: frozenset({Stage.ACCEPT}),
        HandlingMode.SCOPE_ACCEPT_REVIEW: frozenset({Stage.ACCEPT, Stage.REVIEW}),
        HandlingMode.SCOPE_ACCEPT_FIRST_REVIEW: frozenset({Stage.ACCEPT, Stage.FIRST_REVIEW}),
        HandlingMode.SCOPE_REVIEW: frozenset({Stage.REVIEW}),
        HandlingMode.SCOPE_FIRST_REVIEW: frozenset({Stage.FIRST_REVIEW}),
        HandlingMode.SCOPE_RECHECK: frozenset({Stage.RECHECK}),
        HandlingMode.SCOPE_COMPLETE: ALL_STAGES,
    }
)

NO_SEAL_MODES: frozenset[HandlingMode] = frozenset({HandlingMode.ASSIST_PROXY, HandlingMode.SYSTEM_EXTENSION})


def mode_from_scope(scope: str) -> HandlingMode:
    """A Shanxi ``township_scope`` cell -> mode. Blank -> the township completes the matter."""
    raw = scope.strip().replace(",", "、").replace("，", "、")
    if not raw:
        return HandlingMode.SCOPE_COMPLETE
    return HandlingMode(raw)


class SealKindFact(StrEnum):
    """Kind of the seal being applied (mirrors keystore ``SealKind`` by member name)."""

    TOWNSHIP_APPROVAL = "TOWNSHIP_APPROVAL"
    DEPARTMENT_NO2 = "DEPARTMENT_NO2"


class SealStatusFact(StrEnum):
    """Lifecycle status of the seal (mirrors keystore ``SealStatus`` by member name)."""

    ISSUED = "ISSUED"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CANCELLED = "CANCELLED"
    RETIRED = "RETIRED"


class Role(StrEnum):
    """A person's role: one vocabulary for accounts (stored, API, ledger, console) and the policy engine.

    The values are what the accounts table, the ledger's ``ACCOUNT_CHANGED`` entries and the API carry; the
    policy engine reads the same members (``SEAL_USER_ROLES``, the principal)."""

    COUNTY_ADMIN = "COUNTY_ADMIN"  # 县行政审批局: seal and catalog administration, accounts
    DEPARTMENT_OFFICER = (
        "DEPARTMENT_OFFICER"  # 县直部门: entrusts and supervises; monthly reports, attestation
    )
    TOWNSHIP_CLERK = "TOWNSHIP_CLERK"  # 窗口人员: the seal user
    TOWNSHIP_PRINCIPAL = "TOWNSHIP_PRINCIPAL"  # 乡镇主要负责人 / 首席代表: the approver
    SEAL_CUSTODIAN = "SEAL_CUSTODIAN"  # 印章保管人
    AUDITOR = "AUDITOR"  # 审计 / 纪检监察: reads the ledger

    @classmethod
    def parse(cls, text: str) -> Role:
        """A role as typed on the command line, any case: its name (``TOWNSHIP_CLERK``) or the short name
        ``yizhang policy check`` and ``yizhang sign`` have always taken (``clerk``, ``principal`` …).
        ValueError if it is neither."""
        key = text.strip().upper()
        return cls(_ROLE_SHORT_NAMES.get(key, key))


_ROLE_SHORT_NAMES = {
    "CLERK": Role.TOWNSHIP_CLERK.value,
    "CUSTODIAN": Role.SEAL_CUSTODIAN.value,
    "PRINCIPAL": Role.TOWNSHIP_PRINCIPAL.value,
    "BUREAU_ADMIN": Role.COUNTY_ADMIN.value,
    "DEPARTMENT": Role.DEPARTMENT_OFFICER.value,
}

SEAL_USER_ROLES: frozenset[Role] = frozenset({Role.TOWNSHIP_CLERK, Role.SEAL_CUSTODIAN})


class AgreementStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"


class OrgKind(StrEnum):
    """An organisation's kind, as the policy register stores it (``pol_organisations.kind``)."""

    COUNTY = "COUNTY"
    TOWNSHIP = "TOWNSHIP"
    DEPARTMENT = "DEPARTMENT"


#: The kind of organisation an account of each role belongs to.
ROLE_ORG_KIND: dict[Role, OrgKind] = {
    Role.COUNTY_ADMIN: OrgKind.COUNTY,
    Role.AUDITOR: OrgKind.COUNTY,
    Role.DEPARTMENT_OFFICER: OrgKind.DEPARTMENT,
    Role.TOWNSHIP_CLERK: OrgKind.TOWNSHIP,
    Role.TOWNSHIP_PRINCIPAL: OrgKind.TOWNSHIP,
    Role.SEAL_CUSTODIAN: OrgKind.TOWNSHIP,
}


@dataclass(frozen=True, slots=True)
class Matter:
    """A government-service matter (政务服务事项) in a county's catalog."""

    code: str
    name: str
    power_type: PowerType
    mode: HandlingMode
    sub_item: str | None = None
    power_subkind: str | None = None
    department_code: str | None = None  # owning / entrusting department
    supervising_department: str | None = None  # the catalog's text, as the county wrote it (shown)
    requires_admin_seal: bool = False  # a law names the township's 行政公章, or it is reported upward
    note: str | None = None
    # The supervising departments' registry codes (审管联动 routes by these, never by the text above); one
    # per department a multi-department cell names. Empty: the catalog names none (see api._signing).
    supervising_codes: tuple[str, ...] = ()
    level: str | None = None  # 办理层级 as the catalog gives it (Shanxi: 乡级)
    # A 派出机构 (市场监督管理所, 派出所 …) implements the matter in its own name at the centre
    # (001 四（三）): its own seal applies, never the township's approval seal nor its 行政公章.
    agency: str | None = None

    @property
    def title(self) -> str:
        return f"{self.name}（{self.sub_item}）" if self.sub_item else self.name

    @property
    def power_label(self) -> str:
        return (
            f"{self.power_type.value}－{self.power_subkind}" if self.power_subkind else self.power_type.value
        )


@dataclass(frozen=True, slots=True)
class TownshipPower:
    """An entry of a township's list of powers (职权清单): the stages it may stamp for one matter."""

    township_code: str
    matter_code: str
    stages: frozenset[Stage]
    version: int = 0


@dataclass(frozen=True, slots=True)
class Agreement:
    """A No. 2 seal agreement (委托协议), one version of it."""

    agreement_id: str
    department_code: str
    township_code: str
    seal_number: int
    matters: frozenset[str]
    stages: frozenset[Stage]
    starts_at: datetime
    ends_at: datetime | None
    status: AgreementStatus = AgreementStatus.ACTIVE
    basis: str = ""
    version: int = 1

    def terms(self) -> dict[str, object]:
        """The agreement's terms as plain JSON values, in a canonical form (sorted sets, ISO times)."""
        return {
            "agreement_id": self.agreement_id,
            "department_code": self.department_code,
            "township_code": self.township_code,
            "seal_number": self.seal_number,
            "matters": sorted(self.matters),
            "stages": sorted(s.name for s in self.stages),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat() if self.ends_at is not None else None,
            "status": self.status.value,
            "basis": self.basis,
            "version": self.version,
        }

    def terms_sha256(self) -> str:
        """SHA-256 (hex) of :meth:`terms` as UTF-8 JSON with sorted keys and no spaces. The ledger's
        ``AGREEMENT_CHANGED`` entry commits to it, so an auditor can recompute it from the stored version."""
        canonical = json.dumps(self.terms(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SealFacts:
    """What the policy needs to know of a seal; built by the signer from a keystore ``Seal``."""

    seal_id: str
    kind: SealKindFact
    status: SealStatusFact
    township_code: str
    not_before: datetime
    not_after: datetime
    number: int | None = None
    department_code: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    role: Role
    org_code: str
    service_centre: str | None = None  # where the actor is working now
    # The natural person behind the account: one person's clerk and principal accounts share it, and the
    # approval rule compares people (issue 21). None: only the account is known (compared by user_id).
    person_id: str | None = None
    # The account is enabled now: a clerk whose account was disabled (left the window, moved away) may no
    # longer apply the seal, not even to a request made before (issue 22, leak 13). Read at decision time.
    active: bool = True


@dataclass(frozen=True, slots=True)
class SigningRequest:
    seal: SealFacts
    operator: Actor
    matter_code: str
    stage: Stage
    document_kind: DocumentKind
    approver: Actor | None = None

    def __post_init__(self) -> None:
        # the matter code as the catalog stores it (NFKC, trimmed): a full-width code is the same matter
        object.__setattr__(self, "matter_code", normalise_code(self.matter_code))


StageKindTable = Mapping[Stage, frozenset[DocumentKind]]


@dataclass(frozen=True)
class PolicyFacts:
    """Everything the decision reads, resolved by storage for one request at one policy revision."""

    matters: Mapping[str, Matter]
    powers: Mapping[tuple[str, str], TownshipPower]  # (township_code, matter_code) -> power
    agreements: tuple[Agreement, ...]
    stage_kinds: StageKindTable
    service_centres: Mapping[str, str]  # township_code -> its service centre code
    revision: int | None = None
    catalog_version: int | None = None
    stage_table_version: int | None = None
    township_seal_requires_approval: bool = False
    # The stages at which a township seal's use needs the principal's approval when the county switched it
    # on; None: the default, every stage but 受理 (003: window staff issue the 受理凭证 themselves).
    approval_stages: frozenset[Stage] | None = None
    # The seal's township no longer exists as such (issue 22, leak 7): "MERGED" into ``township_successor``
    # (its powers went there), or "RETIRED". None: it is a live township.
    township_closed: str | None = None
    township_successor: str | None = None

    @classmethod
    def empty(cls) -> PolicyFacts:
        return cls(matters={}, powers={}, agreements=(), stage_kinds={}, service_centres={})


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message_en: str
    message_zh: str

    @property
    def message(self) -> str:
        return f"{self.message_zh} / {self.message_en}"


@dataclass(frozen=True, slots=True)
class DecisionVersions:
    """The versions a decision read; :meth:`policies.PolicyStore.replay` rebuilds exactly these facts."""

    revision: int | None
    catalog_version: int | None
    stage_table_version: int | None
    power: tuple[str, str, int] | None = None  # (township, matter, version)
    agreements: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reasons: tuple[Reason, ...]
    versions: DecisionVersions
    requires_approval: bool
    decided_at: datetime | None = None
    grant: str | None = field(
        default=None
    )  # what granted it: "power:<township>/<matter>" or "agreement:<id>"

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)
