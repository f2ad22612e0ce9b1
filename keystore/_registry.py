"""The seal registry: issue, activate, suspend/resume, change, cancel and retire (封存) seals.

Every transition is checked against the lifecycle below, writes an append-only event row in the same
transaction as the state change, and returns a :class:`SealEvent` for the ledger::

    ISSUED --activate--> ACTIVE <--suspend/resume--> SUSPENDED  (cert on hold: certificateHold / hold lifted)
    ISSUED | ACTIVE | SUSPENDED --cancel--> CANCELLED  (cert revoked: cessationOfOperation; key destroyed)
    ACTIVE | SUSPENDED | CANCELLED --retire--> RETIRED  (private key destroyed, certificate not revoked)
    ISSUED | ACTIVE | SUSPENDED --change--> same status  (new key + certificate, old one superseded)

A change of what the CRL says (suspend, resume, cancel, change) publishes fresh CRLs at once, after the
transaction (``CountyPKI.publish_after_change``); docs/keystore.md gives the CRL semantics.
"""

from __future__ import annotations

import builtins
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partialmethod
from typing import Any, cast

from cryptography import x509
from sqlalchemy import Engine, Row, Table, bindparam, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import reading_connection, transaction
from core.errors import BadInput, Conflict, KeystoreError, NotFound
from core.scope import scoped
from core.settings import Settings
from keystore._model import (
    KeyAlgorithm,
    RevocationReason,
    Seal,
    SealEvent,
    SealEventKind,
    SealKind,
    SealStatus,
)
from keystore._pki import DEFAULT_SEAL_VALIDITY_DAYS, CountyPKI, SealInfo, utc
from keystore._storage import CertificateRow, SealEventRow, SealRow
from keystore._token import Keystore

#: Township codes as they go into seal ids and certificates (serialNumber is a PrintableString).
_ORG_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,47}")

log = logging.getLogger(__name__)

LIVE = frozenset({SealStatus.ISSUED, SealStatus.ACTIVE, SealStatus.SUSPENDED})
NO2_NUMBERS = range(11, 36)
_ONE_SEAL_LOCK = 0x6B7331  # "ks1": advisory lock namespace of the one-seal rule

# event -> (states it may start from, state it leads to; None = unchanged)
TRANSITIONS: dict[SealEventKind, tuple[frozenset[SealStatus], SealStatus | None]] = {
    SealEventKind.ACTIVATED: (frozenset({SealStatus.ISSUED}), SealStatus.ACTIVE),
    SealEventKind.SUSPENDED: (frozenset({SealStatus.ACTIVE}), SealStatus.SUSPENDED),
    SealEventKind.RESUMED: (frozenset({SealStatus.SUSPENDED}), SealStatus.ACTIVE),
    SealEventKind.CHANGED: (LIVE, None),
    SealEventKind.CANCELLED: (LIVE, SealStatus.CANCELLED),
    SealEventKind.RETIRED: (
        frozenset({SealStatus.ACTIVE, SealStatus.SUSPENDED, SealStatus.CANCELLED}),
        SealStatus.RETIRED,
    ),
}
# The documents require the township government's consent for making, activating, changing, cancelling.
_NEEDS_APPROVER = frozenset(
    {SealEventKind.ISSUED, SealEventKind.ACTIVATED, SealEventKind.CHANGED, SealEventKind.CANCELLED}
)


@dataclass(frozen=True, slots=True)
class LifecycleStep:
    """A lifecycle step that changes the seal's status and nothing else of it (``change`` and ``issue``
    make keys and certificates, and have their own methods). The registry, the API route and the CLI
    command of each step are made from this table."""

    event: SealEventKind
    reason_required: bool
    takes_requested_by: bool = False
    revoke: RevocationReason | None = None  # put on the CRL (certificateHold is lifted again by resume)
    release_hold: bool = False
    destroy_key: bool = False  # the private key is destroyed in the token

    @property
    def approver_required(self) -> bool:
        return self.event in _NEEDS_APPROVER


#: 启用, 暂停/恢复, 注销, 封存 by name. Suspending puts the certificate on hold (CRL reason certificateHold,
#: dated now) so that a verifier anywhere refuses what is signed while it lasts; documents sealed before stay
#: valid. Cancelling revokes it (cessationOfOperation); cancelling and retiring destroy the private key,
#: while certificate and history stay for verification.
LIFECYCLE: dict[str, LifecycleStep] = {
    "activate": LifecycleStep(SealEventKind.ACTIVATED, reason_required=False, takes_requested_by=True),
    "suspend": LifecycleStep(
        SealEventKind.SUSPENDED, reason_required=True, revoke=RevocationReason.CERTIFICATE_HOLD
    ),
    "resume": LifecycleStep(SealEventKind.RESUMED, reason_required=False, release_hold=True),
    "cancel": LifecycleStep(
        SealEventKind.CANCELLED,
        reason_required=True,
        takes_requested_by=True,
        revoke=RevocationReason.CESSATION_OF_OPERATION,
        destroy_key=True,
    ),
    "retire": LifecycleStep(SealEventKind.RETIRED, reason_required=True, destroy_key=True),
}


def _now(now: datetime | None) -> datetime:
    return utc(now) if now is not None else datetime.now(UTC)


def check_township_code(township_code: str) -> str:
    """The code as it can go into a seal id and certificate, or ``ORG_CODE_INVALID`` (callers check it
    before anything else, e.g. before the policy register is asked about it)."""
    if not _ORG_CODE.fullmatch(township_code):
        # The seal id (township code + random) is the certificate's serialNumber, a PrintableString.
        raise BadInput(
            "ORG_CODE_INVALID",
            "a township code is 1-48 letters, digits, '-' or '.'",
            "乡镇代码须为 1–48 位字母、数字、“-”或“.”",
        )
    return township_code


def _required(value: str | None, field: str) -> str:
    if value is None or not value.strip():
        raise BadInput(
            "FIELD_REQUIRED", f"{field} is required", f"缺少必填项：{field}", details={"field": field}
        )
    return value.strip()


_seals_t = cast(Table, SealRow.__table__)
_certificates_t = cast(Table, CertificateRow.__table__)
#: A seal and its current certificate by the seal's id, built once (its cache key is memoized): what
#: :meth:`SealRegistry.get` reads on every signing. Core rows: the ORM's identity map cost more CPU than
#: the round trip.
_SEAL_BY_ID = (
    select(
        *(
            _seals_t.c[name]
            for name in (
                "seal_id",
                "name",
                "kind",
                "number",
                "county",
                "township",
                "township_code",
                "department",
                "status",
                "key_label",
                "key_algorithm",
                "cert_serial",
                "custodian",
                "department_code",
            )
        ),
        _certificates_t.c.cert_der,
        _certificates_t.c.not_before,
        _certificates_t.c.not_after,
    )
    .join_from(_seals_t, _certificates_t, _certificates_t.c.serial == _seals_t.c.cert_serial)
    .where(_seals_t.c.seal_id == bindparam("seal_id"))
)


def _seal_from_row(
    row: SealRow | Row[*tuple[Any, ...]], cert: CertificateRow | Row[*tuple[Any, ...]]
) -> Seal:
    """A seal from its row and its certificate's, ORM rows or one Core row of :data:`_SEAL_BY_ID`."""
    return Seal(
        seal_id=row.seal_id,
        name=row.name,
        kind=SealKind(row.kind),
        number=row.number,
        county=row.county,
        township=row.township,
        township_code=row.township_code,
        department=row.department,
        status=SealStatus(row.status),
        key_label=row.key_label,
        key_algorithm=KeyAlgorithm(row.key_algorithm),
        cert_serial=int(row.cert_serial),
        cert_der=cert.cert_der,
        not_before=utc(cert.not_before),
        not_after=utc(cert.not_after),
        custodian=row.custodian,
        department_code=row.department_code,
    )


def _seal_not_found(seal_id: str) -> NotFound:
    return NotFound(
        "SEAL_NOT_FOUND", f"no seal {seal_id}", f"印章不存在：{seal_id}", details={"seal_id": seal_id}
    )


def _event_from_row(row: SealEventRow) -> SealEvent:
    return SealEvent(
        seal_id=row.seal_id,
        event=SealEventKind(row.event),
        actor=row.actor,
        approver=row.approver,
        reason=row.reason,
        at=utc(row.at),
        cert_serial=int(row.cert_serial),
        requested_by=row.requested_by,
        previous_cert_serial=int(row.previous_cert_serial) if row.previous_cert_serial else None,
        status=SealStatus(row.to_status),
        event_id=row.id,
    )


class SealRegistry:
    """Seals of one county, their keys in the token and their certificates from the county PKI."""

    def __init__(
        self, engine: Engine, keystore: Keystore, settings: Settings, pki: CountyPKI | None = None
    ) -> None:
        self._engine = engine
        self._ks = keystore
        self._settings = settings
        self.pki = pki or CountyPKI(engine, keystore, settings)

    # -- reading -----------------------------------------------------------------------------------
    def get(self, seal_id: str) -> Seal:
        """The seal's record (within a ``core.scope.read_scope`` read once per unit of work)."""
        return scoped(("keystore.seal", id(self._engine), seal_id), lambda: self._get(seal_id))

    def _get(self, seal_id: str) -> Seal:
        with reading_connection(self._engine) as conn:  # one row by key: no snapshot needed
            row = conn.execute(_SEAL_BY_ID, {"seal_id": seal_id}).first()
        if row is None:
            raise _seal_not_found(seal_id)
        return _seal_from_row(row, row)

    def list(
        self,
        *,
        township_code: str | None = None,
        status: SealStatus | None = None,
        kind: SealKind | None = None,
    ) -> builtins.list[Seal]:
        query = select(SealRow, CertificateRow).join(
            CertificateRow, CertificateRow.serial == SealRow.cert_serial
        )
        if township_code is not None:
            query = query.where(SealRow.township_code == township_code)
        if status is not None:
            query = query.where(SealRow.status == status.value)
        if kind is not None:
            query = query.where(SealRow.kind == kind.value)
        with transaction(self._engine) as session:
            rows = session.execute(query.order_by(SealRow.township_code, SealRow.created_at)).all()
            return [_seal_from_row(seal, cert) for seal, cert in rows]

    def lifecycle_events(self, seal_id: str | None = None, after_id: int = 0) -> builtins.list[SealEvent]:
        query = select(SealEventRow).where(SealEventRow.id > after_id).order_by(SealEventRow.id)
        if seal_id is not None:
            query = query.where(SealEventRow.seal_id == seal_id)
        with transaction(self._engine) as session:
            return [_event_from_row(r) for r in session.scalars(query)]

    def certificates(self, seal_id: str) -> builtins.list[x509.Certificate]:
        """Every certificate the seal ever had, oldest first (they stay for verifying old documents)."""
        with transaction(self._engine) as session:
            rows = session.scalars(
                select(CertificateRow)
                .where(CertificateRow.seal_id == seal_id)
                .order_by(CertificateRow.created_at)
            ).all()
            return [x509.load_der_x509_certificate(r.cert_der) for r in rows]

    def chain_der(self, seal: Seal) -> builtins.list[bytes]:
        return self.pki.chain_der(seal.cert_der)

    def require_signable(self, seal_id: str, now: datetime | None = None) -> Seal:
        """The seal, if it may sign at ``now``: ACTIVE and inside its certificate's validity."""
        now = _now(now)
        seal = self.get(seal_id)
        if seal.status is not SealStatus.ACTIVE:
            raise Conflict(
                "SEAL_NOT_ACTIVE",
                f"seal {seal_id} is {seal.status.value}, not ACTIVE",
                f"印章状态为 {seal.status.value}，不可用印",
                details={"status": seal.status.value},
            )
        if not seal.not_before <= now <= seal.not_after:
            raise Conflict(
                "SEAL_CERT_EXPIRED",
                "the seal's certificate is not valid now",
                "印章证书不在有效期内",
                details={"not_before": seal.not_before.isoformat(), "not_after": seal.not_after.isoformat()},
            )
        return seal

    # -- issuing -----------------------------------------------------------------------------------
    def issue_seal(
        self,
        *,
        name: str,
        kind: SealKind,
        township: str,
        township_code: str,
        custodian: str,
        requested_by: str,
        approved_by: str,
        actor: str,
        number: int | None = None,
        department: str | None = None,
        department_code: str | None = None,
        algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        reason: str | None = None,
        validity_days: int = DEFAULT_SEAL_VALIDITY_DAYS,
        now: datetime | None = None,
    ) -> SealEvent:
        """Make a seal (刻制): key in the token, certificate from the issuing CA, rows, one event.

        All or nothing: if anything fails after the key was generated, the key is destroyed and no row stays.
        """
        now = _now(now)
        name = _required(name, "name")
        township = _required(township, "township")
        township_code = check_township_code(_required(township_code, "township_code"))
        custodian = _required(custodian, "custodian")
        requested_by = _required(requested_by, "requested_by")
        approved_by = _required(approved_by, "approved_by")
        actor = _required(actor, "actor")
        if algorithm is KeyAlgorithm.ED25519:
            raise BadInput(
                "KEY_ALGORITHM_INVALID",
                "seal keys are EC P-256 or RSA-3072",
                "印章密钥须为 P-256 或 RSA-3072",
            )
        if kind is SealKind.DEPARTMENT_NO2:
            if number is None or number not in NO2_NUMBERS:
                raise BadInput(
                    "SEAL_NUMBER_INVALID",
                    "a No. 2 seal has a number 11..35",
                    "2号章编号须在11至35之间",
                    details={"number": number},
                )
            department = _required(department, "department")
        else:
            if number is not None or department is not None:
                raise BadInput(
                    "SEAL_FIELDS_INVALID",
                    "a township approval seal has no number or department",
                    "乡镇审批专用章无编号和部门",
                )
        county = self.pki.county_name
        self._check_name_free(township_code, name)
        with transaction(self._engine) as session:
            self._check_one_seal(session, kind, township_code, department, department_code)
        seal_id = f"{township_code}-{secrets.token_hex(5)}"
        key_label = f"seal:{seal_id}:1"
        info = SealInfo(
            kind=kind,
            number=number,
            county=county,
            township=township,
            township_code=township_code,
            department=department,
            seal_id=seal_id,
        )
        ref = self._ks.generate_key(key_label, algorithm)
        try:
            cert = self.pki.build_seal_certificate(
                info=info,
                name=name,
                public_key=self._ks.public_key(key_label),
                now=now,
                validity_days=validity_days,
            )
            with transaction(self._engine) as session:
                # again under a per-township lock: two concurrent issues cannot both pass the rule
                self._check_one_seal(session, kind, township_code, department, department_code, lock=True)
                self.pki.record_certificate(
                    session, cert, subject_kind="seal", seal_id=seal_id, key_label=key_label, now=now
                )
                session.add(
                    SealRow(
                        seal_id=seal_id,
                        name=name,
                        live_name=name,
                        kind=kind.value,
                        number=number,
                        county=county,
                        township=township,
                        township_code=township_code,
                        department=department,
                        department_code=department_code,
                        status=SealStatus.ISSUED.value,
                        key_label=key_label,
                        key_algorithm=ref.algorithm.value,
                        key_generation=1,
                        cert_serial=str(cert.serial_number),
                        custodian=custodian,
                        created_at=now,
                        updated_at=now,
                    )
                )
                session.flush()
                event = self._record(
                    session,
                    seal_id,
                    SealEventKind.ISSUED,
                    None,
                    SealStatus.ISSUED,
                    actor=actor,
                    requested_by=requested_by,
                    approver=approved_by,
                    reason=reason,
                    cert_serial=cert.serial_number,
                    previous=None,
                    now=now,
                )
        except IntegrityError as exc:
            self._ks.destroy_key(key_label)
            raise self._duplicate(township_code, name) from exc
        except BaseException:
            self._ks.destroy_key(key_label)
            raise
        log.info("issued seal %s (%s) in %s", seal_id, kind.value, township_code)
        return event

    @staticmethod
    def _check_one_seal(
        session: Session,
        kind: SealKind,
        township_code: str,
        department: str | None,
        department_code: str | None,
        *,
        lock: bool = False,
    ) -> None:
        """One seal per township and kind (一枚印章管审批, 000/001/002).

        A township has one live approval seal, and one live No. 2 seal per entrusting department (004). A
        replacement is a 变更 (``change``), or the old seal is cancelled or retired (封存) first."""
        if lock and session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(:a, hashtext(:t))"),
                {"a": _ONE_SEAL_LOCK, "t": township_code},
            )
        query = select(SealRow.seal_id, SealRow.name).where(
            SealRow.township_code == township_code,
            SealRow.kind == kind.value,
            SealRow.status.in_([st.value for st in LIVE]),
        )
        if kind is SealKind.DEPARTMENT_NO2:
            query = (
                query.where(SealRow.department_code == department_code)
                if department_code
                else query.where(SealRow.department == department)
            )
        clash = session.execute(query.limit(1)).first()
        if clash is None:
            return
        if kind is SealKind.TOWNSHIP_APPROVAL:
            en = f"township {township_code} already has a live approval seal ({clash.name}): one per township"
            zh = (
                f"该乡镇已有在用的行政审批服务专用章（{clash.name}）：一个乡镇只有一枚审批专用章"
                "（依据000/001/002“一枚印章管审批”）；更换请办理变更，或先注销、封存原印章"
            )
        else:
            en = f"township {township_code} already holds this department's live No. 2 seal ({clash.name})"
            zh = f"该乡镇已有该部门在用的2号章（{clash.name}）（依据004：每个乡镇一个编号）；更换请办理变更"
        raise Conflict(
            "SEAL_ONE_PER_TOWNSHIP",
            en + " (cancel or retire it first, or change it)",
            zh,
            details={"township_code": township_code, "existing_seal_id": clash.seal_id, "kind": kind.value},
        )

    def _check_name_free(self, township_code: str, name: str, except_seal: str | None = None) -> None:
        with transaction(self._engine) as session:
            clash = session.scalars(
                select(SealRow.seal_id).where(
                    SealRow.township_code == township_code, SealRow.live_name == name
                )
            ).first()
        if clash is not None and clash != except_seal:
            raise self._duplicate(township_code, name)

    @staticmethod
    def _duplicate(township_code: str, name: str) -> Conflict:
        return Conflict(
            "SEAL_NAME_DUPLICATE",
            f"township {township_code} already has a live seal named {name}",
            f"该乡镇已有同名印章：{name}",
            details={"township_code": township_code, "name": name},
        )

    @staticmethod
    def _record(
        session: Session,
        seal_id: str,
        event: SealEventKind,
        from_status: SealStatus | None,
        to_status: SealStatus,
        *,
        actor: str,
        requested_by: str | None,
        approver: str | None,
        reason: str | None,
        cert_serial: int,
        previous: int | None,
        now: datetime,
    ) -> SealEvent:
        row = SealEventRow(
            seal_id=seal_id,
            event=event.value,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value,
            actor=actor,
            requested_by=requested_by,
            approver=approver,
            reason=reason,
            cert_serial=str(cert_serial),
            previous_cert_serial=str(previous) if previous is not None else None,
            at=now,
        )
        session.add(row)
        session.flush()
        return _event_from_row(row)

    # -- transitions -------------------------------------------------------------------------------
    def _transition(
        self,
        seal_id: str,
        event: SealEventKind,
        *,
        actor: str,
        approver: str | None,
        reason: str | None,
        requested_by: str | None,
        now: datetime | None,
        revoke: RevocationReason | None = None,
        release_hold: bool = False,
    ) -> SealEvent:
        now = _now(now)
        actor = _required(actor, "actor")
        if event in _NEEDS_APPROVER:
            approver = _required(approver, "approved_by")
        allowed_from, target = TRANSITIONS[event]
        with transaction(self._engine) as session:
            row = session.get(SealRow, seal_id, with_for_update=True)
            if row is None:
                raise _seal_not_found(seal_id)
            current = SealStatus(row.status)
            new = target or current
            if current not in allowed_from:
                raise Conflict(
                    "SEAL_TRANSITION_INVALID",
                    f"a {current.value} seal cannot be {event.value.lower()}",
                    f"印章当前状态 {current.value} 不允许此操作",
                    details={
                        "seal_id": seal_id,
                        "from": current.value,
                        "to": new.value,
                        "event": event.value,
                    },
                )
            if revoke is not None:
                self.pki.revoke(session, int(row.cert_serial), revoke, now)
            if release_hold:
                self.pki.release_hold(session, int(row.cert_serial))
            row.status = new.value
            if new not in LIVE:
                row.live_name = None
            row.updated_at = now
            return self._record(
                session,
                seal_id,
                event,
                current,
                new,
                actor=actor,
                requested_by=requested_by,
                approver=approver,
                reason=reason,
                cert_serial=int(row.cert_serial),
                previous=None,
                now=now,
            )

    def step(
        self,
        name: str,
        seal_id: str,
        *,
        actor: str,
        approved_by: str | None = None,
        reason: str | None = None,
        requested_by: str | None = None,
        now: datetime | None = None,
    ) -> SealEvent:
        """One lifecycle step by its name in :data:`LIFECYCLE` (``activate`` … ``retire``): what the API and
        the CLI call. ``requested_by`` is recorded only where the step takes it (activate, cancel)."""
        step = LIFECYCLE[name]
        event = self._transition(
            seal_id,
            step.event,
            actor=actor,
            approver=approved_by,
            reason=_required(reason, "reason") if step.reason_required else reason,
            requested_by=requested_by if step.takes_requested_by else None,
            now=now,
            revoke=step.revoke,
            release_hold=step.release_hold,
        )
        if step.revoke is not None or step.release_hold:
            self.pki.publish_after_change(event.at)  # the CRL says something new
        if step.destroy_key:  # the seal never signs again: its private key goes (the public key stays)
            self._destroy_private(self.get(seal_id).key_label)
        return event

    # -- the steps by name (``registry.suspend(seal_id, actor=…, reason=…)`` is ``step("suspend", …)``) --
    activate = partialmethod(step, "activate")  # 启用: may sign from now on (approved_by)
    suspend = partialmethod(step, "suspend")  # stop signing for a while: certificate on hold (reason)
    resume = partialmethod(step, "resume")  # SUSPENDED -> ACTIVE: the hold is lifted
    cancel = partialmethod(step, "cancel")  # 注销: certificate revoked, key destroyed (approved_by, reason)
    retire = partialmethod(step, "retire")  # 封存: key destroyed; certificate and history stay (reason)

    def change(
        self,
        seal_id: str,
        *,
        actor: str,
        approved_by: str,
        requested_by: str,
        reason: str,
        new_name: str | None = None,
        algorithm: KeyAlgorithm | None = None,
        validity_days: int = DEFAULT_SEAL_VALIDITY_DAYS,
        now: datetime | None = None,
        new_township: str | None = None,
    ) -> SealEvent:
        """变更: re-key (and optionally rename); new certificate, the old one revoked as superseded.

        ``new_township``: the township was renamed (乡改镇, issue 22 leak 7): the new certificate names it;
        documents sealed before keep the old certificate, and with it the name they were sealed under."""
        now = _now(now)
        actor = _required(actor, "actor")
        approved_by = _required(approved_by, "approved_by")
        requested_by = _required(requested_by, "requested_by")
        reason = _required(reason, "reason")
        seal = self.get(seal_id)
        allowed_from, _ = TRANSITIONS[SealEventKind.CHANGED]
        if seal.status not in allowed_from:
            raise Conflict(
                "SEAL_TRANSITION_INVALID",
                f"a {seal.status.value} seal cannot be changed",
                f"印章当前状态 {seal.status.value} 不允许变更",
                details={
                    "seal_id": seal_id,
                    "from": seal.status.value,
                    "to": seal.status.value,
                    "event": SealEventKind.CHANGED.value,
                },
            )
        name = new_name.strip() if new_name and new_name.strip() else seal.name
        if name != seal.name:
            self._check_name_free(seal.township_code, name, except_seal=seal_id)
        algorithm = algorithm or seal.key_algorithm
        if algorithm is KeyAlgorithm.ED25519:
            raise BadInput("KEY_ALGORITHM_INVALID", "seal keys are EC P-256 or RSA-3072")
        with transaction(self._engine) as session:
            row = session.get(SealRow, seal_id)
            assert row is not None
            generation = row.key_generation + 1
        key_label = f"seal:{seal_id}:{generation}"
        township = new_township.strip() if new_township and new_township.strip() else seal.township
        info = SealInfo(
            kind=seal.kind,
            number=seal.number,
            county=seal.county,
            township=township,
            township_code=seal.township_code,
            department=seal.department,
            seal_id=seal_id,
        )
        self._ks.generate_key(key_label, algorithm)
        try:
            cert = self.pki.build_seal_certificate(
                info=info,
                name=name,
                public_key=self._ks.public_key(key_label),
                now=now,
                validity_days=validity_days,
            )
            with transaction(self._engine) as session:
                row = session.get(SealRow, seal_id, with_for_update=True)
                assert row is not None
                current = SealStatus(row.status)
                if current not in allowed_from or row.key_generation != generation - 1:
                    raise Conflict(
                        "SEAL_TRANSITION_INVALID",
                        "the seal changed meanwhile",
                        "印章状态已变化",
                        details={
                            "seal_id": seal_id,
                            "from": current.value,
                            "to": current.value,
                            "event": SealEventKind.CHANGED.value,
                        },
                    )
                previous = int(row.cert_serial)
                self.pki.record_certificate(
                    session, cert, subject_kind="seal", seal_id=seal_id, key_label=key_label, now=now
                )
                self.pki.revoke(session, previous, RevocationReason.SUPERSEDED, now)
                if current is SealStatus.SUSPENDED:
                    # the suspension goes on with the new key: its certificate starts on hold
                    self.pki.revoke(session, cert.serial_number, RevocationReason.CERTIFICATE_HOLD, now)
                row.name = name
                row.live_name = name
                row.township = township
                row.key_label = key_label
                row.key_algorithm = algorithm.value
                row.key_generation = generation
                row.cert_serial = str(cert.serial_number)
                row.updated_at = now
                session.flush()
                event = self._record(
                    session,
                    seal_id,
                    SealEventKind.CHANGED,
                    current,
                    current,
                    actor=actor,
                    requested_by=requested_by,
                    approver=approved_by,
                    reason=reason,
                    cert_serial=cert.serial_number,
                    previous=previous,
                    now=now,
                )
        except IntegrityError as exc:
            self._ks.destroy_key(key_label)
            raise self._duplicate(seal.township_code, name) from exc
        except BaseException:
            self._ks.destroy_key(key_label)
            raise
        self.pki.publish_after_change(event.at)
        # The superseded key can never sign again; its public half stays with the old certificate.
        self._destroy_private(seal.key_label)
        return event

    def _destroy_private(self, key_label: str) -> None:
        try:
            self._ks.destroy_key(key_label, private_only=True)
        except KeystoreError:
            # The database already forbids signing with it; an operator can remove the key later.
            log.exception("could not destroy the private key %s", key_label)
            raise
