"""Storage of organisations, catalogs, township powers and agreements, and the service functions around them.

Everything is append-only. Each change opens a *policy revision* (``pol_revisions``: who, when, what) and
writes new rows stamped with it; nothing is updated or deleted in place. The facts "as of revision R" are,
per key, the newest row with ``revision <= R``; a :class:`~policies.Decision` records R, so
:meth:`PolicyStore.replay` rebuilds exactly the facts it read, whatever changed afterwards.

Writers serialise (``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on PostgreSQL) so revision
numbers commit in order and a reader never sees revision 7 before revision 6.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from sqlalchemy import Boolean, DateTime, Engine, Integer, String, Text, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.db import Base, reading, transaction
from core.errors import BadInput, Conflict, NotFound
from core.scope import scoped
from policies._catalog import decode_catalog, detect_and_parse, parse_no2_seals
from policies._engine import decide
from policies._model import (
    CHINA_TZ,
    Agreement,
    AgreementStatus,
    Decision,
    DecisionVersions,
    HandlingMode,
    Matter,
    OrgKind,
    PolicyFacts,
    PowerType,
    SealKindFact,
    SigningRequest,
    Stage,
    StageKindTable,
    TownshipPower,
    normalise_code,
)
from policies._tables import default_stage_kinds_json, parse_stage_kinds

_ADVISORY_KEY = 0x706F6C  # "pol"
_FACTS_CACHE_MAX = 4096
_MERGERS_CACHE_S = 30.0


class PolRevision(Base):
    __tablename__ = "pol_revisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PolOrganisation(Base):
    __tablename__ = "pol_organisations"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(256))
    county_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    service_centre: Mapped[str | None] = mapped_column(String(64), nullable=True)
    no2_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # comma-separated Stage names needing approval when approval_required; NULL: DEFAULT_APPROVAL_STAGES
    approval_stages: Mapped[str | None] = mapped_column(String(128), nullable=True, default=None)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    # township lifecycle (issue 22, leak 7; migration policies_0004): the township this one merged into, and
    # the decision a rename, merger or retirement rests on
    successor_code: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    basis: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)


class PolCatalogVersion(Base):
    __tablename__ = "pol_catalog_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    county_code: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    matter_count: Mapped[int] = mapped_column(Integer)
    replace: Mapped[bool] = mapped_column(Boolean)


class PolMatter(Base):
    __tablename__ = "pol_matters"
    county_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    catalog_version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(512))
    sub_item: Mapped[str | None] = mapped_column(String(512), nullable=True)
    power_type: Mapped[str] = mapped_column(String(32))
    power_subkind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    department_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    supervising_department: Mapped[str | None] = mapped_column(String(256), nullable=True)
    mode: Mapped[str] = mapped_column(String(32))
    requires_admin_seal: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    # migration policies_0005: the supervising departments' codes (JSON list), 办理层级, the 派出机构
    supervising_codes: Mapped[str | None] = mapped_column(Text, nullable=True)
    level: Mapped[str | None] = mapped_column(String(16), nullable=True)
    agency: Mapped[str | None] = mapped_column(String(256), nullable=True)


class PolPower(Base):
    __tablename__ = "pol_powers"
    township_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    matter_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    stages: Mapped[str] = mapped_column(String(128))  # comma-separated Stage names; "" when revoked
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class PolAgreement(Base):
    __tablename__ = "pol_agreements"
    agreement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, index=True)
    department_code: Mapped[str] = mapped_column(String(64))
    township_code: Mapped[str] = mapped_column(String(64), index=True)
    seal_number: Mapped[int] = mapped_column(Integer)
    matters: Mapped[str] = mapped_column(Text)  # JSON list of matter codes
    stages: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    basis: Mapped[str] = mapped_column(Text, default="")
    change: Mapped[str] = mapped_column(String(32))  # create | amend | suspend | resume | revoke


class PolStageTable(Base):
    __tablename__ = "pol_stage_tables"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    county_code: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    table_json: Mapped[str] = mapped_column(Text)


# ---------------------------------------------------------------------------------------------------------
# Frozen results of the service functions


@dataclass(frozen=True, slots=True)
class Organisation:
    code: str
    kind: OrgKind
    name: str
    county_code: str | None
    service_centre: str | None
    no2_number: int | None
    approval_required: bool
    revision: int
    approval_stages: frozenset[Stage] | None = None  # None: DEFAULT_APPROVAL_STAGES


@dataclass(frozen=True, slots=True)
class TownshipRecord:
    """A township's lifecycle state (issue 22, leak 7): ACTIVE, MERGED (into ``successor_code``) or
    RETIRED; its current (last) name, the names it had before, and the decision of its last change."""

    code: str
    name: str
    state: str
    successor_code: str | None
    former_names: tuple[str, ...]
    basis: str | None
    revision: int


@dataclass(frozen=True, slots=True)
class CatalogImport:
    catalog_version: int
    revision: int
    source: str
    matters: int
    retired: int
    sha256: str


@dataclass(frozen=True, slots=True)
class PowerEntry:
    power: TownshipPower
    matter: Matter


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    revision: int
    actor: str
    action: str
    note: str
    created_at: datetime


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _given(t: datetime) -> datetime:
    """A time a county gives (an agreement's term): without an offset it is Beijing time (issue 22). Kept as
    UTC (SQLite stores the wall clock without its offset and :func:`_aware` reads it back as UTC)."""
    return (t if t.tzinfo is not None else t.replace(tzinfo=CHINA_TZ)).astimezone(UTC)


def _codes(codes: Iterable[str]) -> list[str]:
    """Codes as stored: NFKC-normalised and trimmed, duplicates dropped, order kept."""
    return list(dict.fromkeys(normalise_code(c) for c in codes))


def _stages_text(stages: Iterable[Stage]) -> str:
    return ",".join(s.name for s in sorted(stages, key=lambda s: list(Stage).index(s)))


def _approval_stages_text(stages: Iterable[Stage] | None) -> str | None:
    if stages is None:
        return None
    chosen = frozenset(stages)
    if not chosen:
        raise BadInput(
            "APPROVAL_STAGES_INVALID",
            "name at least one stage (or switch approval off)",
            "须至少指定一个需审批的环节（或关闭审批）",
            details={"field": "stages"},
        )
    return _stages_text(chosen)


def _stages_from(text_: str) -> frozenset[Stage]:
    return frozenset(Stage[s] for s in text_.split(",") if s)


def _org(row: PolOrganisation) -> Organisation:
    return Organisation(
        row.code,
        OrgKind(row.kind),
        row.name,
        row.county_code,
        row.service_centre,
        row.no2_number,
        row.approval_required,
        row.revision,
        _stages_from(row.approval_stages) if row.approval_stages is not None else None,
    )


def _matter(row: PolMatter) -> Matter:
    return Matter(
        code=row.code,
        name=row.name,
        sub_item=row.sub_item,
        power_type=PowerType(row.power_type),
        power_subkind=row.power_subkind,
        department_code=row.department_code,
        supervising_department=row.supervising_department,
        supervising_codes=tuple(json.loads(row.supervising_codes)) if row.supervising_codes else (),
        mode=HandlingMode[row.mode],
        requires_admin_seal=row.requires_admin_seal,
        note=row.note,
        level=row.level,
        agency=row.agency,
    )


def _agreement(row: PolAgreement) -> Agreement:
    return Agreement(
        agreement_id=row.agreement_id,
        department_code=row.department_code,
        township_code=row.township_code,
        seal_number=row.seal_number,
        matters=frozenset(json.loads(row.matters)),
        stages=_stages_from(row.stages),
        starts_at=_aware(row.starts_at),
        ends_at=_aware(row.ends_at) if row.ends_at else None,
        status=AgreementStatus(row.status),
        basis=row.basis,
        version=row.version,
    )


def _overlaps(a_start: datetime, a_end: datetime | None, b_start: datetime, b_end: datetime | None) -> bool:
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


class PolicyStore:
    """The policies area's library API, for the CLI, the HTTP API and the signer."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self._clock = clock or (lambda: datetime.now(UTC))
        # (revision, township, seal kind, department, matter): see facts_for
        self._facts_cache: dict[tuple[int, str, SealKindFact, str | None, str], PolicyFacts] = {}
        self._matter_cache: dict[tuple[int, str, str], Matter | None] = {}
        self._org_cache: dict[tuple[int, str], Organisation | None] = {}
        self._mergers: tuple[float, dict[str, str]] | None = None  # (valid until, merged -> successor)

    # -- revisions ------------------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A write transaction holding the policy write lock from its first read, so that what it checks is
        what it changes, and revisions commit in order (SQLite: BEGIN IMMEDIATE already serialises)."""
        with transaction(self.engine) as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
            yield s

    def _begin_write(self, s: Session, actor: str, action: str, note: str = "") -> int:
        if not actor:
            raise BadInput("ACTOR_REQUIRED", "every policy change names who made it", "每次变更须注明操作人")
        rev = PolRevision(actor=actor, action=action, note=note, created_at=self._clock())
        s.add(rev)
        s.flush()
        return rev.id

    def current_revision(self, s: Session | None = None) -> int:
        if s is None:
            with transaction(self.engine) as s2:
                return self.current_revision(s2)
        # Within a read scope (one signing), one revision for the pre-check, the decision and the lookups.
        return scoped(
            ("policies.revision", id(self.engine)),
            lambda: int(s.scalar(select(func.coalesce(func.max(PolRevision.id), 0))) or 0),
        )

    def revision_at(self, at: datetime) -> int:
        """The policy revision in force at ``at`` ("was this delegated on 2026-03-01?")."""
        with transaction(self.engine) as s:
            revs = s.execute(select(PolRevision.id, PolRevision.created_at)).all()
        at = _aware(at)
        return max((r for r, t in revs if _aware(t) <= at), default=0)

    def revisions(self, limit: int = 100) -> list[RevisionInfo]:
        with transaction(self.engine) as s:
            rows = s.scalars(select(PolRevision).order_by(PolRevision.id.desc()).limit(limit)).all()
            return [RevisionInfo(r.id, r.actor, r.action, r.note, _aware(r.created_at)) for r in rows]

    # -- organisations --------------------------------------------------------------------------------------

    def _org_row(self, s: Session, code: str, revision: int | None = None) -> PolOrganisation | None:
        row = self._org_row_any(s, code, revision)
        return None if row is None or row.retired else row

    def _org_row_any(self, s: Session, code: str, revision: int | None = None) -> PolOrganisation | None:
        """The newest row of ``code`` (at ``revision``), a retired or merged one included."""
        q = select(PolOrganisation).where(PolOrganisation.code == code)
        if revision is not None:
            q = q.where(PolOrganisation.revision <= revision)
        return s.scalars(q.order_by(PolOrganisation.revision.desc()).limit(1)).first()

    def _require_org(self, s: Session, code: str, kind: OrgKind, field: str) -> PolOrganisation:
        row = self._org_row(s, code)
        if row is None:
            raise NotFound(
                "ORGANISATION_UNKNOWN",
                f"{field}: no organisation {code!r}",
                f"{field}：无此单位 {code!r}",
                details={"field": field, "code": code},
            )
        if row.kind != kind.value:
            raise BadInput(
                "ORGANISATION_KIND_INVALID",
                f"{field}: {code} is a {row.kind.lower()}, not a {kind.value.lower()}",
                f"{field}：{code} 不是所需类型的单位",
                details={"field": field, "code": code},
            )
        return row

    def _put_org(self, s: Session, rev: int, **values: object) -> PolOrganisation:
        values.setdefault("retired", False)
        row = PolOrganisation(revision=rev, **values)
        s.add(row)
        return row

    # -- township lifecycle (issue 22, leak 7) ---------------------------------------------------------------

    @staticmethod
    def _lifecycle_basis(basis: str) -> str:
        text_ = (basis or "").strip()
        if not text_:
            raise BadInput(
                "TOWNSHIP_BASIS_REQUIRED",
                "a township's rename, merger or retirement names the decision it rests on (basis)",
                "乡镇更名、合并或撤销须注明所依据的批准文件",
                details={"field": "basis"},
            )
        return text_

    def _next_org(self, s: Session, rev: int, row: PolOrganisation, **changes: object) -> PolOrganisation:
        values = {
            c: getattr(row, c)
            for c in (
                "code",
                "kind",
                "name",
                "county_code",
                "service_centre",
                "no2_number",
                "approval_required",
                "approval_stages",
                "retired",
                "successor_code",
                "basis",
            )
        }
        values.update(changes)
        return self._put_org(s, rev, **values)

    def rename_township(self, code: str, new_name: str, *, actor: str, basis: str) -> Organisation:
        """乡改镇 and other renames: the same code, a new name from this revision on. Earlier revisions keep
        the old name (``organisation(code, revision=…)``), as documents sealed under it keep theirs."""
        code = normalise_code(code)
        basis = self._lifecycle_basis(basis)
        name = (new_name or "").strip()
        with self._write() as s:
            row = self._require_org(s, code, OrgKind.TOWNSHIP, "township")
            if not name or normalise_code(name) == normalise_code(row.name):
                raise BadInput(
                    "TOWNSHIP_NAME_UNCHANGED",
                    f"{code} is already named {row.name}",
                    f"{code} 现名即为{row.name}",
                    details={"field": "name"},
                )
            latest: dict[str, PolOrganisation] = {}
            q = select(PolOrganisation).where(PolOrganisation.county_code == row.county_code)
            for r in s.scalars(q.order_by(PolOrganisation.revision)).all():
                latest[r.code] = r
            for other in latest.values():
                if other.retired or other.kind != OrgKind.TOWNSHIP.value:
                    continue
                if other.code != code and normalise_code(other.name) == normalise_code(name):
                    raise Conflict(
                        "TOWNSHIP_NAME_TAKEN",
                        f"{other.code} in the same county is already named {name}",
                        f"本县{other.code}已使用名称{name}",
                        details={"field": "name", "code": other.code},
                    )
            rev = self._begin_write(
                s, actor, "rename_township", f"{code}: {row.name} -> {name}; basis: {basis}"
            )
            out = self._next_org(s, rev, row, name=name, basis=basis)
            s.flush()
            return _org(out)

    def merge_township(self, code: str, into: str, *, actor: str, basis: str) -> Organisation:
        """撤并: ``code`` merges into ``into``. In one revision its powers pass to ``into`` (a matter both
        hold keeps the wider stages) and are revoked at ``code``, and ``code`` is closed with ``into`` as
        its successor: its seals may not be used again (rule TOWNSHIP_MERGED). Returns the successor."""
        code, into = normalise_code(code), normalise_code(into)
        basis = self._lifecycle_basis(basis)
        with self._write() as s:
            row = self._require_org(s, code, OrgKind.TOWNSHIP, "township")
            target = self._require_org(s, into, OrgKind.TOWNSHIP, "into")
            if code == into or target.county_code != row.county_code:
                raise BadInput(
                    "TOWNSHIP_MERGE_INVALID",
                    "a township merges into another township of the same county",
                    "乡镇只能并入本县的另一乡镇",
                    details={"field": "into", "code": into},
                )
            rev = self._begin_write(
                s,
                actor,
                "merge_township",
                f"{code}: {row.name} merged into {into} {target.name}; basis: {basis}",
            )
            for matter_code, prow in self._live_powers(s, code).items():
                theirs = self._power_row(s, into, matter_code)
                stages = _stages_from(prow.stages)
                if theirs is not None and not theirs.revoked:
                    stages = stages | _stages_from(theirs.stages)
                s.add(
                    PolPower(
                        township_code=into,
                        matter_code=matter_code,
                        revision=rev,
                        stages=_stages_text(stages),
                        revoked=False,
                    )
                )
                s.add(
                    PolPower(
                        township_code=code, matter_code=matter_code, revision=rev, stages="", revoked=True
                    )
                )
            self._next_org(s, rev, row, retired=True, successor_code=into, basis=basis)
            s.flush()
            self._mergers = None
            return _org(target)

    def retire_township(self, code: str, *, actor: str, basis: str) -> None:
        """撤销 without a successor: the township is closed (rule TOWNSHIP_RETIRED); its history stays."""
        code = normalise_code(code)
        basis = self._lifecycle_basis(basis)
        with self._write() as s:
            row = self._require_org(s, code, OrgKind.TOWNSHIP, "township")
            rev = self._begin_write(
                s, actor, "retire_township", f"{code}: {row.name} retired; basis: {basis}"
            )
            for matter_code in self._live_powers(s, code):
                s.add(
                    PolPower(
                        township_code=code, matter_code=matter_code, revision=rev, stages="", revoked=True
                    )
                )
            self._next_org(s, rev, row, retired=True, basis=basis)

    def township_record(self, code: str) -> TownshipRecord:
        """A township's current state, a closed one included, with its former names (oldest first)."""
        code = normalise_code(code)
        with transaction(self.engine) as s:
            rows = s.scalars(
                select(PolOrganisation).where(PolOrganisation.code == code).order_by(PolOrganisation.revision)
            ).all()
        if not rows or rows[-1].kind != OrgKind.TOWNSHIP.value:
            raise NotFound("ORGANISATION_UNKNOWN", f"no township {code!r}", f"无此乡镇 {code!r}")
        last = rows[-1]
        names = list(dict.fromkeys(r.name for r in rows))
        state = "MERGED" if last.retired and last.successor_code else "RETIRED" if last.retired else "ACTIVE"
        return TownshipRecord(
            code=code,
            name=last.name,
            state=state,
            successor_code=last.successor_code if last.retired else None,
            former_names=tuple(n for n in names if n != last.name),
            basis=last.basis,
            revision=last.revision,
        )

    def predecessors(self, code: str) -> set[str]:
        """The townships merged into ``code``, directly or through a chain of mergers (issue 22, leak 7):
        their issued decisions are the successor's to change now. Read at most every
        ``_MERGERS_CACHE_S`` seconds (it is asked on every authenticated request of a township account); a
        merger made through this store is seen at once, one made by another process within that time."""
        code = normalise_code(code)
        now = time.monotonic()
        cached = self._mergers
        if cached is None or now >= cached[0]:
            with reading(self.engine) as s:
                rows = s.execute(
                    select(PolOrganisation.code, PolOrganisation.successor_code).where(
                        PolOrganisation.successor_code.is_not(None), PolOrganisation.retired.is_(True)
                    )
                ).all()
            cached = (now + _MERGERS_CACHE_S, {r[0]: str(r[1]) for r in rows})
            self._mergers = cached
        merged = cached[1]
        found: set[str] = set()
        frontier = {code}
        while frontier:
            frontier = {m for m, into in merged.items() if into in frontier and m not in found}
            found |= frontier
        return found

    def _live_powers(self, s: Session, township_code: str) -> dict[str, PolPower]:
        latest: dict[str, PolPower] = {}
        q = select(PolPower).where(PolPower.township_code == township_code).order_by(PolPower.revision)
        for r in s.scalars(q).all():
            latest[r.matter_code] = r
        return {c: r for c, r in latest.items() if not r.revoked}

    def register_county(
        self,
        code: str,
        name: str,
        *,
        actor: str,
        township_seal_requires_approval: bool = False,
        approval_stages: Iterable[Stage] | None = None,
    ) -> Organisation:
        """A county, with the shipped stage -> document-kind table as its first table.

        ``township_seal_requires_approval``: township seal uses need the principal's approval, at
        ``approval_stages`` (default: every stage but 受理, see :meth:`set_township_seal_approval`)."""
        code = normalise_code(code)
        stages_text = _approval_stages_text(approval_stages)
        with self._write() as s:
            if self._org_row(s, code) is not None:
                raise Conflict("ORGANISATION_EXISTS", f"{code} is already registered", f"{code} 已登记")
            rev = self._begin_write(s, actor, "register_county", code)
            row = self._put_org(
                s,
                rev,
                code=code,
                kind=OrgKind.COUNTY.value,
                name=name,
                county_code=None,
                service_centre=None,
                no2_number=None,
                approval_required=township_seal_requires_approval,
                approval_stages=stages_text,
            )
            table = parse_stage_kinds(default_stage_kinds_json())
            s.add(PolStageTable(county_code=code, revision=rev, table_json=_table_json(table)))
            s.flush()
            return _org(row)

    def set_township_seal_approval(
        self,
        county_code: str,
        *,
        required: bool,
        actor: str,
        stages: Iterable[Stage] | None = None,
    ) -> Organisation:
        """Switch the principal's approval of township seal uses on or off, per stage (a new revision).

        ``stages=None`` is the default set: every stage but 受理 — 003 authorises window staff to accept
        applications and issue the 受理凭证 themselves, so a clerk's 受理通知书 needs no sign-off; a county
        that wants approval only for decisions gives ``[Stage.APPROVE]``. No. 2 seals always need it (004).
        """
        county_code = normalise_code(county_code)
        stages_text = _approval_stages_text(stages)
        with self._write() as s:
            cur = self._require_org(s, county_code, OrgKind.COUNTY, "county")
            rev = self._begin_write(
                s, actor, "set_township_seal_approval", f"{county_code}: {required} {stages_text or ''}"
            )
            row = self._put_org(
                s,
                rev,
                code=cur.code,
                kind=cur.kind,
                name=cur.name,
                county_code=cur.county_code,
                service_centre=cur.service_centre,
                no2_number=cur.no2_number,
                approval_required=required,
                approval_stages=stages_text,
            )
            s.flush()
            return _org(row)

    def check_seal_issue(
        self,
        *,
        kind: SealKindFact,
        name: str,
        township_code: str,
        township_name: str,
        department_code: str | None = None,
        number: int | None = None,
    ) -> Organisation:
        """May a seal of ``kind`` named ``name`` be made (刻制) for ``township_code``? Raises, or returns the
        township. Checked before a key is generated (issue 22, leaks 3, 4, 6):

        1. the township code is a registered township (002: the county approval bureau files for and makes
           the seals of the townships it administers; 000: 刻制须经乡镇人民政府同意);
        2. the township's name is its registered name (a 八里畈镇 seal is never made under 金兰山's code);
        3. a No. 2 seal: its department is registered in the same county and its number is the township's
           (004: one number per township);
        4. the name follows the kind's pattern (000/001 for the township seal, 004 for No. 2 seals), so a
           seal named like the township's 行政公章 or a station's business seal is refused.
        """
        from policies._seal_names import seal_name_allowed

        code = normalise_code(township_code)
        with transaction(self.engine) as s:
            township = self._org_row(s, code)
            if township is None or township.kind != OrgKind.TOWNSHIP.value:
                raise BadInput(
                    "SEAL_TOWNSHIP_UNREGISTERED",
                    f"{code} is not a registered township: a seal is made only for a township on the "
                    "county's register (002, 000)",
                    f"{code} 不是已登记的乡镇：印章只能为本县已登记的乡镇刻制"
                    "（依据002：由县行政审批服务管理局统一申请刻制；000：刻制须经乡镇人民政府同意）",
                    details={"field": "township_code", "code": code, "source": "002, 000"},
                )
            county = self._org_row(s, township.county_code or "")
            county_name = county.name if county is not None else ""
            if normalise_code(township_name) != normalise_code(township.name):
                raise BadInput(
                    "SEAL_TOWNSHIP_MISMATCH",
                    f"township code {code} is registered as {township.name}, not {township_name}",
                    f"乡镇代码 {code} 登记的乡镇为{township.name}，不是{township_name}："
                    "不得以他乡镇代码刻制印章",
                    details={"field": "township", "code": code, "registered": township.name},
                )
            dept_code: str | None = None
            if kind is SealKindFact.DEPARTMENT_NO2:
                dept_code = normalise_code(department_code or "")
                dept = self._org_row(s, dept_code) if dept_code else None
                if (
                    dept is None
                    or dept.kind != OrgKind.DEPARTMENT.value
                    or dept.county_code != township.county_code
                ):
                    raise BadInput(
                        "SEAL_DEPARTMENT_UNREGISTERED",
                        "a No. 2 seal belongs to a department registered in the township's county; "
                        f"{dept_code!r} is not",
                        f"2号章须属于本县已登记的县直部门；{dept_code or '（空）'} 未登记（依据004）",
                        details={"field": "department_code", "code": dept_code, "source": "004"},
                    )
                if township.no2_number is not None and number != township.no2_number:
                    raise BadInput(
                        "SEAL_NUMBER_MISMATCH",
                        f"{township.name}'s No. 2 seal number is {township.no2_number}, not {number}",
                        f"{township.name}的2号章编号为（{township.no2_number}），不是（{number}）（依据004）",
                        details={"field": "number", "expected": township.no2_number, "source": "004"},
                    )
            allowed, expected = seal_name_allowed(
                kind,
                name,
                county_name=county_name,
                township_name=township.name,
                department_code=dept_code,
                number=number,
            )
            if not allowed:
                source = "004" if kind is SealKindFact.DEPARTMENT_NO2 else "000, 001"
                raise BadInput(
                    "SEAL_NAME_INVALID",
                    "the seal's name does not follow its kind's pattern; expected "
                    + " or ".join(expected[:3]),
                    f"印章名称不符合该类印章的命名规范，应为：{'或'.join(expected[:3])}（依据{source}）",
                    details={"field": "name", "expected": list(expected), "source": source},
                )
            return _org(township)

    def register_township(
        self,
        code: str,
        name: str,
        *,
        county_code: str,
        service_centre: str,
        actor: str,
        no2_number: int | None = None,
    ) -> Organisation:
        with self._write() as s:
            return self._register_township(s, code, name, county_code, service_centre, actor, no2_number)

    def _register_township(
        self,
        s: Session,
        code: str,
        name: str,
        county_code: str,
        service_centre: str,
        actor: str,
        no2_number: int | None,
        rev: int | None = None,
    ) -> Organisation:
        self._require_org(s, county_code, OrgKind.COUNTY, "county")
        if self._org_row(s, code) is not None:
            raise Conflict("ORGANISATION_EXISTS", f"{code} is already registered", f"{code} 已登记")
        if not service_centre:
            raise BadInput(
                "SERVICE_CENTRE_REQUIRED",
                "a township needs its service centre code",
                "乡镇须有便民服务中心编码",
            )
        rev = rev or self._begin_write(s, actor, "register_township", code)
        row = self._put_org(
            s,
            rev,
            code=code,
            kind=OrgKind.TOWNSHIP.value,
            name=name,
            county_code=county_code,
            service_centre=service_centre,
            no2_number=no2_number,
            approval_required=False,
        )
        s.flush()
        return _org(row)

    def register_department(self, code: str, name: str, *, county_code: str, actor: str) -> Organisation:
        with self._write() as s:
            self._require_org(s, county_code, OrgKind.COUNTY, "county")
            if self._org_row(s, code) is not None:
                raise Conflict("ORGANISATION_EXISTS", f"{code} is already registered", f"{code} 已登记")
            rev = self._begin_write(s, actor, "register_department", code)
            row = self._put_org(
                s,
                rev,
                code=code,
                kind=OrgKind.DEPARTMENT.value,
                name=name,
                county_code=county_code,
                service_centre=None,
                no2_number=None,
                approval_required=False,
            )
            s.flush()
            return _org(row)

    def organisation(self, code: str, revision: int | None = None) -> Organisation:
        """``code``'s organisation at ``revision`` (default: the current one).

        At the current revision it is cached per (revision, code), as :meth:`matter_for`: rows of a visible
        revision never change, and the newest row of a code is the one at the newest revision. Inside a read
        scope (one signing) the current revision is already known, so the signing's supervisor lookup costs
        no round trip (it was a transaction of its own per sealed document)."""
        if revision is not None:
            with transaction(self.engine) as s:
                row = self._org_row(s, code, revision)
                found = None if row is None else _org(row)
        else:
            rev = self.current_revision()  # a session connects on its first statement: none in a scope
            key = (rev, code)
            if key in self._org_cache:
                found = self._org_cache[key]
            else:
                with reading(self.engine) as s:
                    row = self._org_row(s, code, rev)
                found = None if row is None else _org(row)
                if len(self._org_cache) >= _FACTS_CACHE_MAX:
                    self._org_cache.clear()
                self._org_cache[key] = found
        if found is None:
            raise NotFound("ORGANISATION_UNKNOWN", f"no organisation {code!r}", f"无此单位 {code!r}")
        return found

    def organisations(
        self, county_code: str | None = None, kind: OrgKind | None = None
    ) -> list[Organisation]:
        with transaction(self.engine) as s:
            rows = s.scalars(select(PolOrganisation).order_by(PolOrganisation.revision)).all()
        latest: dict[str, PolOrganisation] = {}
        for r in rows:
            latest[r.code] = r
        out = [_org(r) for r in latest.values() if not r.retired]
        if county_code is not None:
            out = [o for o in out if o.county_code == county_code or o.code == county_code]
        if kind is not None:
            out = [o for o in out if o.kind is kind]
        return sorted(out, key=lambda o: (o.kind.value, o.code))

    def import_no2_townships(
        self, county_code: str, data: bytes, *, actor: str, encoding: str | None = None
    ) -> list[Organisation]:
        """Register a county's townships from a No. 2 seal table (xingguo_no2_seals.csv), all or nothing.

        Township code ``<county>-<number>``, service centre ``<county>-<number>-BMFW``.
        """
        parsed = parse_no2_seals(decode_catalog(data, encoding))
        with self._write() as s:
            rev = self._begin_write(s, actor, "import_townships", county_code)
            return [
                self._register_township(
                    s,
                    f"{county_code}-{t.number}",
                    t.name,
                    county_code,
                    f"{county_code}-{t.number}-BMFW",
                    actor,
                    t.number,
                    rev,
                )
                for t in parsed
            ]

    # -- catalog --------------------------------------------------------------------------------------------

    def _matter_rows(self, s: Session, county_code: str, revision: int | None = None) -> dict[str, PolMatter]:
        q = select(PolMatter).where(PolMatter.county_code == county_code)
        if revision is not None:
            q = q.where(PolMatter.revision <= revision)
        latest: dict[str, PolMatter] = {}
        for r in s.scalars(q.order_by(PolMatter.revision)).all():
            latest[r.code] = r
        return {c: r for c, r in latest.items() if not r.retired}

    def import_catalog(
        self,
        county_code: str,
        data: bytes,
        *,
        actor: str,
        fmt: str | None = None,
        encoding: str | None = None,
        replace: bool = True,
    ) -> CatalogImport:
        """Import a catalog (shanxi | xingguo | county format), all or nothing, as a new catalog version.

        ``replace`` retires the county's matters that the new file no longer lists; otherwise the file is
        merged into the current catalog. Departments the file names are registered when new.
        """
        text_ = decode_catalog(data, encoding)
        with self._write() as s:
            county = self._require_org(s, county_code, OrgKind.COUNTY, "county")
            parsed = detect_and_parse(text_, county_name=county.name, fmt=fmt)
            if not parsed.matters:
                raise BadInput(
                    "CATALOG_ROW_INVALID",
                    "the catalog lists no matters",
                    "目录中没有事项",
                    details={"row": 2},
                )
            rev = self._begin_write(
                s, actor, "import_catalog", f"{parsed.source}: {len(parsed.matters)} matters"
            )
            for code, name in parsed.departments:
                existing = self._org_row(s, code)
                if existing is None:
                    self._put_org(
                        s,
                        rev,
                        code=code,
                        kind=OrgKind.DEPARTMENT.value,
                        name=name,
                        county_code=county_code,
                        service_centre=None,
                        no2_number=None,
                        approval_required=False,
                    )
                elif existing.kind != OrgKind.DEPARTMENT.value:
                    raise BadInput(
                        "CATALOG_ROW_INVALID",
                        f"department {code} is registered as a {existing.kind.lower()}",
                        f"部门 {code} 已登记为其他类型单位",
                        details={"field": "department", "code": code},
                    )
            registering = {code for code, _ in parsed.departments}
            for row_no, field, code, name in parsed.references:
                known = self._org_row(s, code)
                if code in registering or (
                    known is not None
                    and known.kind == OrgKind.DEPARTMENT.value
                    and known.county_code == county_code
                ):
                    continue
                # 审管联动 routes by department code (000 四（六）, 003): a name that is no department of
                # the county would route the push to no one (issue 22, leak 16)
                raise BadInput(
                    "CATALOG_DEPARTMENT_UNKNOWN",
                    f"row {row_no}, field {field}: {name} is not a registered department of this county; "
                    "register it first (yizhang org add-department) or correct the name",
                    f"第 {row_no} 行，字段 {field}：{name} 不是本县已登记的部门；"
                    "请先登记（yizhang org add-department）或更正名称",
                    details={
                        "row": row_no,
                        "field": field,
                        "code": code,
                        "name": name,
                        "source": "000 四（六）",
                    },
                )
            digest = hashlib.sha256(data).hexdigest()
            current = self._matter_rows(s, county_code)
            version = PolCatalogVersion(
                county_code=county_code,
                revision=rev,
                source=parsed.source,
                sha256=digest,
                matter_count=len(parsed.matters),
                replace=replace,
            )
            s.add(version)
            s.flush()
            for m in parsed.matters:
                s.add(_matter_row(county_code, m, rev, version.id))
            retired = 0
            if replace:
                listed = {m.code for m in parsed.matters}
                for code, row in current.items():
                    if code not in listed:
                        retired += 1
                        dead = _matter_row(county_code, _matter(row), rev, version.id)
                        dead.retired = True
                        s.add(dead)
            s.flush()
            return CatalogImport(version.id, rev, parsed.source, len(parsed.matters), retired, digest)

    def matters(self, county_code: str, revision: int | None = None) -> list[Matter]:
        with transaction(self.engine) as s:
            return [
                _matter(r)
                for r in sorted(self._matter_rows(s, county_code, revision).values(), key=lambda r: r.code)
            ]

    def matter_for(self, township_code: str, matter_code: str) -> Matter | None:
        """The current catalog entry of ``matter_code`` in the county of ``township_code`` (``None`` if the
        township or the matter is unknown or retired). Cached per revision like :meth:`facts_for`: one
        query per call (the current revision), where :meth:`matters` loads the whole catalog."""
        township_code, matter_code = normalise_code(township_code), normalise_code(matter_code)
        with reading(self.engine) as s:
            rev = self.current_revision(s)
            key = (rev, township_code, matter_code)
            if key in self._matter_cache:
                return self._matter_cache[key]
            township = self._org_row(s, township_code, rev)
            found: Matter | None = None
            if township is not None and township.county_code:
                row = s.scalars(
                    select(PolMatter)
                    .where(
                        PolMatter.county_code == township.county_code,
                        PolMatter.code == matter_code,
                        PolMatter.revision <= rev,
                    )
                    .order_by(PolMatter.revision.desc())
                    .limit(1)
                ).first()
                found = None if row is None or row.retired else _matter(row)
            if len(self._matter_cache) >= _FACTS_CACHE_MAX:
                self._matter_cache.clear()
            self._matter_cache[key] = found
            return found

    def set_stage_kinds(self, county_code: str, table: Mapping[str, object], *, actor: str) -> int:
        """A county's own stage -> document-kind table (JSON as in policies/stage_kinds.default.json)."""
        from policies._tables import StageTableError

        try:
            parsed = parse_stage_kinds(table)
        except StageTableError as exc:
            raise BadInput(
                "STAGE_TABLE_INVALID",
                str(exc),
                f"环节文书表格式错误：{exc.field}",
                details={"field": exc.field},
            ) from exc
        with self._write() as s:
            self._require_org(s, county_code, OrgKind.COUNTY, "county")
            rev = self._begin_write(s, actor, "set_stage_kinds", county_code)
            row = PolStageTable(county_code=county_code, revision=rev, table_json=_table_json(parsed))
            s.add(row)
            s.flush()
            return row.id

    def stage_kinds(self, county_code: str, revision: int | None = None) -> tuple[int | None, StageKindTable]:
        """The county's stage -> document-kind table (its version id and content) at a revision."""
        with transaction(self.engine) as s:
            rev = self.current_revision(s) if revision is None else revision
            return self._stage_table(s, county_code, rev)

    def _stage_table(self, s: Session, county_code: str, revision: int) -> tuple[int | None, StageKindTable]:
        row = s.scalars(
            select(PolStageTable)
            .where(PolStageTable.county_code == county_code, PolStageTable.revision <= revision)
            .order_by(PolStageTable.revision.desc())
            .limit(1)
        ).first()
        if row is None:
            return None, MappingProxyType({})
        return row.id, parse_stage_kinds(json.loads(row.table_json))

    def _catalog_version(self, s: Session, county_code: str, revision: int) -> int | None:
        return s.scalar(
            select(func.max(PolCatalogVersion.id)).where(
                PolCatalogVersion.county_code == county_code, PolCatalogVersion.revision <= revision
            )
        )

    # -- township powers ------------------------------------------------------------------------------------

    def _power_row(
        self, s: Session, township: str, matter: str, revision: int | None = None
    ) -> PolPower | None:
        q = select(PolPower).where(PolPower.township_code == township, PolPower.matter_code == matter)
        if revision is not None:
            q = q.where(PolPower.revision <= revision)
        return s.scalars(q.order_by(PolPower.revision.desc()).limit(1)).first()

    def grant_powers(
        self,
        township_code: str,
        matter_codes: Sequence[str] | None,
        *,
        actor: str,
        stages: Iterable[Stage] | None = None,
    ) -> list[TownshipPower]:
        """Put matters on a township's list of powers. Stages default to those its handling scope allows;
        explicit ``stages`` must lie within them. ``matter_codes=None`` grants every matter whose mode lets a
        township stamp with its own seal."""
        wanted = frozenset(stages) if stages is not None else None
        township_code = normalise_code(township_code)
        with self._write() as s:
            township = self._require_org(s, township_code, OrgKind.TOWNSHIP, "township")
            county = township.county_code or ""
            catalog = self._matter_rows(s, county)
            if matter_codes is None:
                codes = sorted(
                    c
                    for c, r in catalog.items()
                    if HandlingMode[r.mode]
                    not in {HandlingMode.NO2_SEAL, HandlingMode.ASSIST_PROXY, HandlingMode.SYSTEM_EXTENSION}
                )
            else:
                codes = _codes(matter_codes)
            if not codes:
                raise BadInput(
                    "MATTER_UNKNOWN", "no matters to grant", "没有可授予的事项", details={"field": "matters"}
                )
            rows: list[tuple[str, frozenset[Stage]]] = []
            for code in codes:
                row = catalog.get(code)
                if row is None:
                    raise NotFound(
                        "MATTER_UNKNOWN",
                        f"matter {code} is not in the county's catalog",
                        f"事项 {code} 不在本县目录中",
                        details={"field": "matters", "code": code},
                    )
                mode = HandlingMode[row.mode]
                if mode in {HandlingMode.NO2_SEAL, HandlingMode.ASSIST_PROXY, HandlingMode.SYSTEM_EXTENSION}:
                    raise BadInput(
                        "POWER_MODE_INVALID",
                        f"matter {code} is handled by {mode.value}; the township's seal is never used for it",
                        f"事项 {code} 的办理方式为{mode.value}，不使用乡镇审批专用章",
                        details={"field": "matters", "code": code},
                    )
                granted = mode.stages if wanted is None else wanted
                if not granted or not granted <= mode.stages:
                    raise BadInput(
                        "STAGE_NOT_IN_SCOPE",
                        f"matter {code}: stages outside its handling scope {mode.value}",
                        f"事项 {code}：环节超出办理范围 {mode.value}",
                        details={"field": "stages", "code": code},
                    )
                rows.append((code, granted))
            rev = self._begin_write(s, actor, "grant_powers", f"{township_code}: {len(rows)}")
            for code, granted in rows:
                s.add(
                    PolPower(
                        township_code=township_code,
                        matter_code=code,
                        revision=rev,
                        stages=_stages_text(granted),
                        revoked=False,
                    )
                )
            s.flush()
            return [TownshipPower(township_code, c, g, rev) for c, g in rows]

    def revoke_powers(self, township_code: str, matter_codes: Sequence[str], *, actor: str) -> int:
        township_code = normalise_code(township_code)
        with self._write() as s:
            self._require_org(s, township_code, OrgKind.TOWNSHIP, "township")
            held = []
            for code in _codes(matter_codes):
                row = self._power_row(s, township_code, code)
                if row is None or row.revoked:
                    raise NotFound(
                        "MATTER_NOT_HELD",
                        f"{township_code} does not hold {code}",
                        f"{township_code} 未持有事项 {code}",
                        details={"field": "matters", "code": code},
                    )
                held.append(code)
            rev = self._begin_write(s, actor, "revoke_powers", f"{township_code}: {len(held)}")
            for code in held:
                s.add(
                    PolPower(
                        township_code=township_code, matter_code=code, revision=rev, stages="", revoked=True
                    )
                )
            return len(held)

    def powers(self, township_code: str, revision: int | None = None) -> list[PowerEntry]:
        township_code = normalise_code(township_code)
        with transaction(self.engine) as s:
            township = self._require_org(s, township_code, OrgKind.TOWNSHIP, "township")
            q = select(PolPower).where(PolPower.township_code == township_code)
            if revision is not None:
                q = q.where(PolPower.revision <= revision)
            latest: dict[str, PolPower] = {}
            for r in s.scalars(q.order_by(PolPower.revision)).all():
                latest[r.matter_code] = r
            catalog = self._matter_rows(s, township.county_code or "", revision)
            out = []
            for code, r in sorted(latest.items()):
                if r.revoked or code not in catalog:
                    continue
                out.append(
                    PowerEntry(
                        TownshipPower(township_code, code, _stages_from(r.stages), r.revision),
                        _matter(catalog[code]),
                    )
                )
            return out

    # -- agreements -----------------------------------------------------------------------------------------

    def _agreement_latest(
        self, s: Session, agreement_id: str, revision: int | None = None
    ) -> PolAgreement | None:
        q = select(PolAgreement).where(PolAgreement.agreement_id == agreement_id)
        if revision is not None:
            q = q.where(PolAgreement.revision <= revision)
        return s.scalars(q.order_by(PolAgreement.version.desc()).limit(1)).first()

    def _agreements_for(
        self, s: Session, township: str, department: str | None = None, revision: int | None = None
    ) -> list[PolAgreement]:
        q = select(PolAgreement).where(PolAgreement.township_code == township)
        if department is not None:
            q = q.where(PolAgreement.department_code == department)
        if revision is not None:
            q = q.where(PolAgreement.revision <= revision)
        latest: dict[str, PolAgreement] = {}
        for r in s.scalars(q.order_by(PolAgreement.version)).all():
            latest[r.agreement_id] = r
        return sorted(latest.values(), key=lambda r: r.agreement_id)

    def _check_agreement_matters(
        self, s: Session, county: str, department: str, matter_codes: Sequence[str]
    ) -> list[str]:
        if not matter_codes:
            raise BadInput(
                "MATTER_UNKNOWN",
                "an agreement must name at least one matter",
                "委托协议须列明事项",
                details={"field": "matters"},
            )
        matter_codes = _codes(matter_codes)
        catalog = self._matter_rows(s, county)
        for code in matter_codes:
            row = catalog.get(code)
            if row is None:
                raise NotFound(
                    "MATTER_UNKNOWN",
                    f"matter {code} is not in the county's catalog",
                    f"事项 {code} 不在本县目录中",
                    details={"field": "matters", "code": code},
                )
            if HandlingMode[row.mode] is not HandlingMode.NO2_SEAL:
                raise BadInput(
                    "AGREEMENT_MODE_INVALID",
                    f"matter {code} is handled by {HandlingMode[row.mode].value}, not “2号章”委托办",
                    f"事项 {code} 的办理方式不是“2号章”委托办",
                    details={"field": "matters", "code": code},
                )
            if row.department_code != department:
                raise BadInput(
                    "AGREEMENT_MODE_INVALID",
                    f"matter {code} belongs to {row.department_code}, not {department}",
                    f"事项 {code} 不属于委托部门 {department}",
                    details={"field": "matters", "code": code},
                )
        return sorted(set(matter_codes))

    def _check_overlap(
        self,
        s: Session,
        agreement_id: str | None,
        department: str,
        township: str,
        seal_number: int,
        starts_at: datetime,
        ends_at: datetime | None,
    ) -> None:
        for other in self._agreements_for(s, township):
            if other.agreement_id == agreement_id or other.status == AgreementStatus.REVOKED.value:
                continue
            # One department's numbered seal has one agreement with a township at a time.
            if other.department_code == department and _overlaps(
                starts_at, ends_at, _aware(other.starts_at), _aware(other.ends_at) if other.ends_at else None
            ):
                raise Conflict(
                    "AGREEMENT_OVERLAP",
                    f"agreement {other.agreement_id} already entrusts {department}'s seal to {township} then",
                    f"协议 {other.agreement_id} 已在该期限内将 {department} 的印章委托给 {township}",
                    details={"field": "term", "agreement_id": other.agreement_id},
                )

    def create_agreement(
        self,
        *,
        department_code: str,
        township_code: str,
        seal_number: int,
        matter_codes: Sequence[str],
        starts_at: datetime,
        ends_at: datetime | None,
        actor: str,
        stages: Iterable[Stage] | None = None,
        basis: str = "",
        agreement_id: str | None = None,
    ) -> Agreement:
        """A No. 2 seal agreement: a department entrusts its numbered seal to one township.

        004 (专用章使用要求 二.1): the written agreement states 用章依据 and 期限 among its contents, so an
        agreement without an end of term or without its basis is refused. Times without an offset are
        Beijing time; ``ends_at`` is exclusive (the first instant the seal may no longer be used).
        """
        if ends_at is None:
            raise BadInput(
                "AGREEMENT_TERM_REQUIRED",
                "an agreement states its term: give its end (004: 协议应当包括…期限)",
                "委托协议须写明期限（终止日期）（依据004：协议应当包括用章依据……期限等内容）",
                details={"field": "ends_at", "source": "004 二.1"},
            )
        basis = (basis or "").strip()
        if not basis:
            raise BadInput(
                "AGREEMENT_BASIS_REQUIRED",
                "an agreement states its basis for using the seal (004: 协议应当包括用章依据…)",
                "委托协议须写明用章依据（依据004：协议应当包括用章依据……等内容）",
                details={"field": "basis", "source": "004 二.1"},
            )
        department_code = normalise_code(department_code)
        township_code = normalise_code(township_code)
        starts_at = _given(starts_at)
        ends_at = _given(ends_at)
        if ends_at <= starts_at:
            raise BadInput(
                "AGREEMENT_TERM_INVALID",
                "the term ends before it starts",
                "协议期限终止早于起始",
                details={"field": "ends_at"},
            )
        granted = frozenset(stages) if stages is not None else HandlingMode.NO2_SEAL.stages
        if not granted:
            raise BadInput(
                "AGREEMENT_TERM_INVALID",
                "an agreement must grant at least one stage",
                "协议须授权至少一个环节",
                details={"field": "stages"},
            )
        with self._write() as s:
            grantor = self._org_row(s, department_code)
            if grantor is not None and grantor.kind == OrgKind.TOWNSHIP.value:
                # 004: the township may never entrust the seal onward to anyone else.
                raise BadInput(
                    "AGREEMENT_REDELEGATION",
                    f"{department_code} is a township: an entrusted seal cannot be re-delegated",
                    f"{department_code} 为乡镇：受托印章不得再行委托",
                    details={"field": "department"},
                )
            dept = self._require_org(s, department_code, OrgKind.DEPARTMENT, "department")
            township = self._require_org(s, township_code, OrgKind.TOWNSHIP, "township")
            if dept.county_code != township.county_code:
                raise BadInput(
                    "ORGANISATION_KIND_INVALID",
                    "department and township are in different counties",
                    "委托部门与乡镇不属同一县",
                    details={"field": "township"},
                )
            if township.no2_number is not None and township.no2_number != seal_number:
                raise BadInput(
                    "AGREEMENT_SEAL_NUMBER_INVALID",
                    f"{township.name}'s No. 2 seal number is {township.no2_number}, not {seal_number}",
                    f"{township.name} 的2号章编号为 {township.no2_number}，不是 {seal_number}",
                    details={"field": "seal_number"},
                )
            codes = self._check_agreement_matters(
                s, township.county_code or "", department_code, matter_codes
            )
            agreement_id = agreement_id or f"AGR-{uuid.uuid4().hex[:12]}"
            if self._agreement_latest(s, agreement_id) is not None:
                raise Conflict(
                    "AGREEMENT_EXISTS", f"agreement {agreement_id} exists", f"协议 {agreement_id} 已存在"
                )
            self._check_overlap(s, None, department_code, township_code, seal_number, starts_at, ends_at)
            rev = self._begin_write(s, actor, "create_agreement", agreement_id)
            row = PolAgreement(
                agreement_id=agreement_id,
                version=1,
                revision=rev,
                department_code=department_code,
                township_code=township_code,
                seal_number=seal_number,
                matters=json.dumps(codes, ensure_ascii=False),
                stages=_stages_text(granted),
                starts_at=starts_at,
                ends_at=ends_at,
                status=AgreementStatus.ACTIVE.value,
                basis=basis,
                change="create",
            )
            s.add(row)
            s.flush()
            return _agreement(row)

    def _next_version(
        self, s: Session, agreement_id: str, change: str, actor: str, note: str = "", **changes: object
    ) -> Agreement:
        cur = self._agreement_latest(s, agreement_id)
        if cur is None:
            raise NotFound("AGREEMENT_UNKNOWN", f"no agreement {agreement_id}", f"无协议 {agreement_id}")
        if cur.status == AgreementStatus.REVOKED.value:
            raise Conflict(
                "AGREEMENT_REVOKED",
                f"agreement {agreement_id} is revoked; it cannot change",
                f"协议 {agreement_id} 已撤销，不可变更",
            )
        values = {c.key: getattr(cur, c.key) for c in PolAgreement.__table__.columns}
        values.update(changes)
        rev = self._begin_write(s, actor, f"{change}_agreement", f"{agreement_id}: {note}".rstrip(": "))
        values.update(version=cur.version + 1, revision=rev, change=change)
        row = PolAgreement(**values)
        s.add(row)
        s.flush()
        return _agreement(row)

    def amend_agreement(
        self,
        agreement_id: str,
        *,
        actor: str,
        matter_codes: Sequence[str] | None = None,
        stages: Iterable[Stage] | None = None,
        ends_at: datetime | None = None,
        basis: str | None = None,
        note: str = "",
    ) -> Agreement:
        """A new version with matters adjusted (动态调整), stages, term end or basis changed."""
        with self._write() as s:
            cur = self._agreement_latest(s, agreement_id)
            if cur is None:
                raise NotFound("AGREEMENT_UNKNOWN", f"no agreement {agreement_id}", f"无协议 {agreement_id}")
            changes: dict[str, object] = {}
            if matter_codes is not None:
                township = self._require_org(s, cur.township_code, OrgKind.TOWNSHIP, "township")
                codes = self._check_agreement_matters(
                    s, township.county_code or "", cur.department_code, matter_codes
                )
                changes["matters"] = json.dumps(codes, ensure_ascii=False)
            if stages is not None:
                st = frozenset(stages)
                if not st:
                    raise BadInput(
                        "AGREEMENT_TERM_INVALID",
                        "an agreement must grant at least one stage",
                        "协议须授权至少一个环节",
                        details={"field": "stages"},
                    )
                changes["stages"] = _stages_text(st)
            if ends_at is not None:
                end = _given(ends_at)
                if end <= _aware(cur.starts_at):
                    raise BadInput(
                        "AGREEMENT_TERM_INVALID",
                        "the term ends before it starts",
                        "协议期限终止早于起始",
                        details={"field": "ends_at"},
                    )
                self._check_overlap(
                    s,
                    agreement_id,
                    cur.department_code,
                    cur.township_code,
                    cur.seal_number,
                    _aware(cur.starts_at),
                    end,
                )
                changes["ends_at"] = end
            if basis is not None:
                if not basis.strip():
                    raise BadInput(
                        "AGREEMENT_BASIS_REQUIRED",
                        "an agreement states its basis for using the seal (004)",
                        "委托协议须写明用章依据（依据004）",
                        details={"field": "basis", "source": "004 二.1"},
                    )
                changes["basis"] = basis.strip()
            if not changes:
                raise BadInput("AGREEMENT_AMENDMENT_EMPTY", "nothing to amend", "没有变更内容")
            return self._next_version(s, agreement_id, "amend", actor, note, **changes)

    def suspend_agreement(self, agreement_id: str, *, actor: str, reason: str = "") -> Agreement:
        with self._write() as s:
            return self._next_version(
                s, agreement_id, "suspend", actor, reason, status=AgreementStatus.SUSPENDED.value
            )

    def resume_agreement(self, agreement_id: str, *, actor: str, reason: str = "") -> Agreement:
        with self._write() as s:
            return self._next_version(
                s, agreement_id, "resume", actor, reason, status=AgreementStatus.ACTIVE.value
            )

    def revoke_agreement(self, agreement_id: str, *, actor: str, reason: str = "") -> Agreement:
        with self._write() as s:
            return self._next_version(
                s, agreement_id, "revoke", actor, reason, status=AgreementStatus.REVOKED.value
            )

    def agreement(self, agreement_id: str, revision: int | None = None) -> Agreement:
        with transaction(self.engine) as s:
            row = self._agreement_latest(s, agreement_id, revision)
            if row is None:
                raise NotFound("AGREEMENT_UNKNOWN", f"no agreement {agreement_id}", f"无协议 {agreement_id}")
            return _agreement(row)

    def agreement_history(self, agreement_id: str) -> list[tuple[Agreement, RevisionInfo]]:
        with transaction(self.engine) as s:
            rows = s.execute(
                select(PolAgreement, PolRevision)
                .join(PolRevision, PolRevision.id == PolAgreement.revision)
                .where(PolAgreement.agreement_id == agreement_id)
                .order_by(PolAgreement.version)
            ).all()
            if not rows:
                raise NotFound("AGREEMENT_UNKNOWN", f"no agreement {agreement_id}", f"无协议 {agreement_id}")
            return [
                (_agreement(a), RevisionInfo(r.id, r.actor, r.action, r.note, _aware(r.created_at)))
                for a, r in rows
            ]

    def agreements(self, township_code: str, revision: int | None = None) -> list[Agreement]:
        with transaction(self.engine) as s:
            return [_agreement(r) for r in self._agreements_for(s, township_code, revision=revision)]

    # -- the decision ---------------------------------------------------------------------------------------

    def facts_for(
        self, request: SigningRequest, *, revision: int | None = None, at: datetime | None = None
    ) -> PolicyFacts:
        """The facts :func:`policies.decide` needs for ``request`` at a policy revision (default: current).

        Facts at the current revision are cached per store by (revision, township, seal kind, department,
        matter): a revision is immutable once visible (every change is a new revision, written under the
        policy write lock, so revisions commit in id order and no row is ever added to or changed in an
        earlier one), and a change makes a new current revision, hence a new key. One query (the current
        revision) remains per decision. The cached value is shared: its mappings are read-only.
        """
        if revision is None and at is not None:
            revision = self.revision_at(at)
        # Rows of a revision never change once it is visible: reads by revision number need no snapshot.
        with reading(self.engine) as s:
            if revision is not None:
                return self._facts_in(s, request, revision)
            rev = self.current_revision(s)
            seal = request.seal
            key = (rev, seal.township_code, seal.kind, seal.department_code, request.matter_code)
            facts = self._facts_cache.get(key)
            if facts is None:
                facts = self._facts_in(s, request, rev)
                if len(self._facts_cache) >= _FACTS_CACHE_MAX:
                    self._facts_cache.clear()
                self._facts_cache[key] = facts
            return facts

    def _facts_in(self, s: Session, request: SigningRequest, rev: int) -> PolicyFacts:
        seal = request.seal
        township = self._org_row_any(s, seal.township_code, rev)
        if township is None or township.kind != OrgKind.TOWNSHIP.value:
            return PolicyFacts(
                matters={}, powers={}, agreements=(), stage_kinds={}, service_centres={}, revision=rev
            )
        closed: str | None = None
        if township.retired:  # merged or abolished: the facts it had, and the rule that refuses (leak 7)
            closed = "MERGED" if township.successor_code else "RETIRED"
        county_code = township.county_code or ""
        county = self._org_row(s, county_code, rev)
        q = select(PolMatter).where(
            PolMatter.county_code == county_code,
            PolMatter.code == request.matter_code,
            PolMatter.revision <= rev,
        )
        mrow = s.scalars(q.order_by(PolMatter.revision.desc()).limit(1)).first()
        matters = {} if mrow is None or mrow.retired else {mrow.code: _matter(mrow)}
        powers: dict[tuple[str, str], TownshipPower] = {}
        prow = self._power_row(s, seal.township_code, request.matter_code, rev)
        if prow is not None and not prow.revoked:
            powers[(seal.township_code, request.matter_code)] = TownshipPower(
                seal.township_code, request.matter_code, _stages_from(prow.stages), prow.revision
            )
        agreements: tuple[Agreement, ...] = ()
        if seal.kind is SealKindFact.DEPARTMENT_NO2 and seal.department_code:
            agreements = tuple(
                _agreement(r) for r in self._agreements_for(s, seal.township_code, seal.department_code, rev)
            )
        table_id, table = self._stage_table(s, county_code, rev)
        return PolicyFacts(
            matters=matters,
            powers=powers,
            agreements=agreements,
            stage_kinds=table,
            service_centres={township.code: township.service_centre} if township.service_centre else {},
            revision=rev,
            catalog_version=self._catalog_version(s, county_code, rev),
            stage_table_version=table_id,
            township_seal_requires_approval=bool(county and county.approval_required),
            approval_stages=_stages_from(county.approval_stages)
            if county is not None and county.approval_stages is not None
            else None,
            township_closed=closed,
            township_successor=township.successor_code if closed else None,
        )

    def decide_now(self, request: SigningRequest, now: datetime | None = None) -> Decision:
        """Decide against the current revision; the Decision records it for replay."""
        moment = now or self._clock()
        return decide(request, self.facts_for(request), moment)

    def replay(
        self, versions: Decision | DecisionVersions, request: SigningRequest, now: datetime | None = None
    ) -> Decision:
        """Decide again against exactly the revision a past decision read (at its own time by default)."""
        if isinstance(versions, Decision):
            now = now or versions.decided_at
            versions = versions.versions
        if versions.revision is None or now is None:
            raise BadInput(
                "REPLAY_VERSIONS_MISSING",
                "the decision records no policy revision or time",
                "该决定未记录策略版本或时间",
            )
        return decide(request, self.facts_for(request, revision=versions.revision), now)


def _matter_row(county_code: str, m: Matter, rev: int, catalog_version: int) -> PolMatter:
    return PolMatter(
        county_code=county_code,
        code=m.code,
        revision=rev,
        catalog_version=catalog_version,
        name=m.name,
        sub_item=m.sub_item,
        power_type=m.power_type.value,
        power_subkind=m.power_subkind,
        department_code=m.department_code,
        supervising_department=m.supervising_department,
        supervising_codes=json.dumps(list(m.supervising_codes), ensure_ascii=False)
        if m.supervising_codes
        else None,
        mode=m.mode.name,
        requires_admin_seal=m.requires_admin_seal,
        note=m.note,
        level=m.level,
        agency=m.agency,
        retired=False,
    )


def _table_json(table: StageKindTable) -> str:
    from policies._tables import stage_kinds_to_json

    return json.dumps(stage_kinds_to_json(table), ensure_ascii=False, sort_keys=True)
