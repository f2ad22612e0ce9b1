"""``apply_seal``: policy decision → document number → stamp → sign in the token → timestamp → LTV →
ledger entry, all or nothing.

Plan of one call (nothing nests a database transaction: SQLite writers serialise at ``BEGIN``):
  1. outside any write transaction: a replay check by idempotency key; the seal (keystore); the policy
     decision (policies); the TSA identity and the county CRLs (they may write in their own areas);
  2. a denied decision: one transaction with a ``SIGNING_REFUSED`` ledger entry, then ``PolicyDenied``;
  3. a short transaction: reserve the document number (the (sequence, year) counter row is locked only
     for it; a retry with the same idempotency key takes over its own open reservation) and re-check the
     idempotency key under that lock;
  4. no transaction open: render (template) or open the caller's PDF; stamp, sign in the token, timestamp,
     add LTV data;
  5. one transaction: ``RESERVED → USED``, ``SEAL_SIGNED`` in the ledger, the sealed bytes stored; commit.
     The sealed bytes leave only after the commit.
  A failure in 4 or 5 voids the number (``DOCUMENT_NUMBER_VOIDED``) in a transaction of its own, except
  when the database is gone: then the reservation stays open for the retry (or, if none comes, for the
  sweeper, :meth:`Sealer.sweep_reservations`). Bad input found before 3 leaves no trace.

Signings of one township run side by side: only the number reservation and the final ledger append are
serialised (milliseconds each), not the stamping, token signature and timestamp (tens of milliseconds).
Numbers stay gap-free and unique; two signings may reach the ledger in the other order than their numbers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from core.db import BoundStatement, database_unavailable, reading, transaction
from core.errors import BadInput, Conflict, PolicyDenied, SealServiceError, Unavailable
from core.settings import Settings

from . import _numbers
from ._loops import refuse_on_event_loop as _refuse_on_event_loop
from ._loops import run_off_loop as _run_off_loop
from ._pdfin import (
    OpenedPdf,
    has_signatures,
    open_untrusted_pdf,
    refuse_failing_signatures,
    refuse_unsealable,
)
from ._qr import verification_url
from ._seal import (
    Placement,
    RevocationMaterial,
    SealingKey,
    SealJob,
    SignatureLevel,
    async_seal_pdf,
    resolve_placement,
)
from ._stamp import SealFace
from ._storage import SealedDocumentRow
from ._templates import check_template_data, check_template_request, render_template
from ._tsa import CountyTimeStamper, CountyTsa, HttpTimeStamper, TimeStamper, ensure_county_tsa

if TYPE_CHECKING:
    from keystore import CountyPKI, Keystore, Seal, SealRegistry
    from ledger import Ledger, LedgerEntry
    from policies import Actor, Decision, DocumentKind, PolicyStore, Reason, SigningRequest, Stage

CRL_REUSE_S = 300
_sealed_t = cast(Table, SealedDocumentRow.__table__)  # a Core INSERT when settling: no ORM bulk layer
# Built once (bind parameters by column name): SQLAlchemy computes a statement's cache key once per object.
_STORE_SEALED = insert(_sealed_t).values(
    {
        c: bindparam(c)
        for c in (
            "idempotency_key",
            "seal_id",
            "document_number",
            "sha256",
            "request_sha256",
            "level",
            "ledger_index",
            "sealed",
            "created_at",
        )
    }
)
_INDEX_STORED = (
    update(_sealed_t)
    .where(_sealed_t.c.idempotency_key == bindparam("key"))
    .values(ledger_index=bindparam("index"))
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SealRequest:
    """One sealing: which seal, for what (matter, stage, document kind), by whom, on which document.

    ``operator`` and ``approver`` are ``policies.Actor``. Bring either ``unverified_pdf`` or a
    ``template`` with ``template_data`` (the number and date are filled in by the signer).
    """

    seal_id: str
    matter_code: str
    stage: str
    document_kind: str
    idempotency_key: str
    operator: Actor
    approver: Actor | None = None
    reason: str = ""
    unverified_pdf: bytes | None = None
    template: str | None = None
    template_data: dict[str, Any] | None = None
    placement: Placement = field(default_factory=Placement)
    level: str | None = None
    count: int = 1
    personal: dict[str, str] = field(default_factory=dict)  # applicant name/ID: salted in the ledger
    # print a QR code + "扫码验证" line leading to the public verification page; ``"if_blank"``: on a
    # template always, on an upload only when it is unsigned and blank where the code goes (signer.qr_fits),
    # decided on the signing's one parse of the PDF
    verify_qr: bool | Literal["if_blank"] = False
    # The caller made ``idempotency_key`` just now and has never used it (the API's first attempt of a new
    # request): the replay lookup is skipped. Only that: a concurrent retry of the same request (it sees the
    # committed request row) may reserve first, so the number lookup under the counter lock stays — it is
    # what makes twins share one reservation (a "fresh" reservation without it sealed twice, caught by
    # test_concurrent_retries_seal_once).
    fresh_key: bool = False


@dataclass(frozen=True)
class AttestRequest:
    """County attestation (书面认证): a county department's seal added to a township-sealed document so it is
    recognised outside the county. ``operator`` is a ``policies.Actor`` of that department."""

    seal_id: str
    sealed_pdf: bytes
    idempotency_key: str
    operator: Actor
    reason: str = "书面认证：本文书经县级部门认证，供县外使用"
    placement: Placement = field(default_factory=lambda: Placement(page=-1, box=(110.0, 110.0, 229.0, 229.0)))
    level: str | None = None


@dataclass(frozen=True)
class SealedDocument:
    idempotency_key: str
    seal_id: str
    document_number: str | None
    sha256: str
    level: str
    ledger_index: int | None
    pdf: bytes
    replayed: bool = False


def _parse_codes(request: SealRequest) -> tuple[Stage, DocumentKind]:
    """The request's stage and document kind (Chinese label or member name), or ``400``."""
    from policies import DocumentKind, Stage

    try:
        stage = Stage.parse(request.stage)
    except (ValueError, KeyError):
        raise BadInput("STAGE_UNKNOWN", f"unknown stage {request.stage!r}", "未知的办理环节") from None
    try:
        kind = DocumentKind.parse(request.document_kind)
    except (ValueError, KeyError):
        try:
            kind = DocumentKind[request.document_kind]
        except KeyError:
            raise BadInput(
                "DOCUMENT_KIND_UNKNOWN",
                f"unknown document kind {request.document_kind!r}",
                "未知的文书种类",
            ) from None
    return stage, kind


def _policy_request(request: SealRequest, seal: Seal, stage: Stage, kind: DocumentKind) -> SigningRequest:
    """What the policy decides on: the one place a ``policies.SigningRequest`` is built."""
    from policies import SealFacts, SealKindFact, SealStatusFact, SigningRequest

    facts = SealFacts(
        seal_id=seal.seal_id,
        kind=SealKindFact(seal.kind.name),
        status=SealStatusFact(seal.status.name),
        township_code=seal.township_code,
        not_before=seal.not_before,
        not_after=seal.not_after,
        number=seal.number,
        department_code=seal.department_code,
    )
    return SigningRequest(
        seal=facts,
        operator=request.operator,
        matter_code=request.matter_code,
        stage=stage,
        document_kind=kind,
        approver=request.approver,
    )


@dataclass(frozen=True)
class Precheck:
    """The policy's answer to a :class:`SealRequest` before anything is drawn or written
    (:func:`precheck`). Given back to :meth:`Sealer.seal` with the same request, it is the signing's one
    decision; sealing then skips the seal lookup and the policy."""

    seal: Seal
    stage: Stage
    kind: DocumentKind
    decision: Decision
    # what was decided on: the request's seal, matter, stage, kind, operator and approver
    asked: tuple[str, str, str, str, Actor, Actor | None]

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return self.decision.reasons

    @property
    def requires_approval(self) -> bool:
        return self.decision.requires_approval

    def answers(self, request: SealRequest) -> bool:
        return self.asked == _asked(request)


def _asked(request: SealRequest) -> tuple[str, str, str, str, Actor, Actor | None]:
    return (
        request.seal_id,
        request.matter_code,
        request.stage,
        request.document_kind,
        request.operator,
        request.approver,
    )


def precheck(
    request: SealRequest, *, seals: SealRegistry, policies: PolicyStore, now: datetime | None = None
) -> Precheck:
    """The door's first half: may this seal be used for this request now? The seal's record, the stage
    and kind, one policy decision (at ``now``, default the policy store's clock). Reads only; the PDF is
    not opened (that is sealing's one parse). :meth:`Sealer.precheck` is this over the sealer's own seal
    registry and policy store; the API calls it directly, since it pre-checks (and queues for approval)
    while the token, and so the sealer, may not be wired."""
    seal = seals.get(request.seal_id)
    stage, kind = _parse_codes(request)
    decision = policies.decide_now(_policy_request(request, seal, stage, kind), now)
    return Precheck(seal, stage, kind, decision, _asked(request))


@dataclass(frozen=True)
class _Prepared:
    """A sealing's inputs, checked before any number is drawn: parsed once, placed once."""

    stage: Stage
    kind: DocumentKind
    level: SignatureLevel
    seal: Seal
    series: _numbers.Series
    opened: OpenedPdf | None  # the upload, parsed (None for a template)
    at: tuple[int, tuple[float, float, float, float]] | None  # the stamp's page and box on ``opened``
    verify_qr: bool


@dataclass(frozen=True)
class _Needs:
    """What sealing needs from outside the write transactions: the TSA, the CRLs (B-LT/B-LTA), the key."""

    timestamper: TimeStamper
    revocation: RevocationMaterial | None
    key: SealingKey


SWEEPER = "yizhang:number-sweeper"  # the actor named in the ledger when a stale reservation is voided


def _database_gone() -> Unavailable:
    return Unavailable(
        "DATABASE_UNAVAILABLE",
        "the database connection was lost during sealing; nothing was sealed, retry with the same idempotency"
        " key (it takes over the number reserved for it)",
        "盖章过程中数据库连接中断：未盖章，请以同一幂等键重试（沿用为其预留的文号）",
    )


def _pages_unreadable(exc: ValueError) -> BadInput:
    return BadInput("PDF_MALFORMED", f"the PDF's pages cannot be read: {exc}", "PDF 页面无法读取")


def rendered_template(
    template: str, template_data: dict[str, Any] | None, seal: Seal, number: str, now: datetime
) -> bytes:
    """A template filled for ``seal`` on ``now`` (Beijing date) with ``number``: what is sealed."""
    local = now.astimezone(_numbers.CHINA_TZ)
    data = {
        "issuer": SealFace.from_name(seal.name).arc or seal.township,
        "date": f"{local.year}年{local.month}月{local.day}日",
        **(template_data or {}),
        "document_number": number,
    }
    return render_template(template, data)


class Sealer:
    """The sealing service over the real keystore, seal registry, policy store and ledger."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        keystore: Keystore,
        registry: SealRegistry,
        pki: CountyPKI,
        policy_store: PolicyStore,
        ledger: Ledger,
        timestamper: TimeStamper | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.keystore = keystore
        self.registry = registry
        self.pki = pki
        self.policy_store = policy_store
        self.ledger = ledger
        self.clock = clock
        self.number_format = _numbers.check_format(settings.document_number_format)
        self.default_level = SignatureLevel.parse(settings.signature_level)
        self._timestamper = timestamper
        self._tsa: CountyTsa | None = None
        self._crl_cache: tuple[datetime, RevocationMaterial] | None = None
        self._lock = threading.RLock()

    # -- collaborators ------------------------------------------------------------------------------
    def _check_token(self) -> None:
        """While the keystore knows its token is down, ask the token first (``ping`` re-opens it when its
        backoff allows): a sealing that cannot sign answers ``TOKEN_UNAVAILABLE`` (503, retry) before it
        reserves -- and would have to void -- a document number. A replay is answered before this."""
        if self.keystore.unavailable is not None:
            self.keystore.ping()

    @property
    def timestamper(self) -> TimeStamper:
        with self._lock:
            return self._timestamper_locked()

    def _timestamper_locked(self) -> TimeStamper:
        if self._timestamper is None:
            if self.settings.tsa_url:
                self._timestamper = HttpTimeStamper(self.settings.tsa_url, self.settings.token_timeout_s)
            else:
                self._timestamper = CountyTimeStamper(self.county_tsa())
        return self._timestamper

    def county_tsa(self) -> CountyTsa:
        with self._lock:  # first use issues the TSA certificate: once, not once per thread
            if self._tsa is None:
                self._tsa = CountyTsa(self.keystore, ensure_county_tsa(self.engine, self.keystore, self.pki))
            return self._tsa

    def revocation_material(self) -> RevocationMaterial:
        """The county chain and fresh CRLs for B-LT/B-LTA.

        A CRL is signed in the token and numbered in the database; making two per sealing would cost a
        token signature and a write each time, so they are reused for ``CRL_REUSE_S`` seconds (never past
        their nextUpdate). A seal revoked meanwhile cannot sign anyway: the policy reads its status.
        """
        now = self.clock()
        cached = self._crl_cache
        if cached is not None and now < cached[0]:
            return cached[1]
        der = serialization.Encoding.DER
        crls = (self.pki.crl_der("issuing"), self.pki.crl_der("root"))
        next_updates = [x509.load_der_x509_crl(c).next_update_utc for c in crls]
        reuse_until = min(
            [now + timedelta(seconds=CRL_REUSE_S)] + [n - timedelta(minutes=1) for n in next_updates if n]
        )
        material = RevocationMaterial(
            root_der=self.pki.root_certificate.public_bytes(der),
            intermediates_der=(self.pki.issuing_certificate.public_bytes(der),),
            crls_der=crls,
        )
        self._crl_cache = (reuse_until, material)
        return material

    # -- the door: precheck, then seal -----------------------------------------------------------------
    def precheck(self, request: SealRequest) -> Precheck:
        """:func:`precheck` over this sealer's seal registry and policy store, at its clock's now."""
        return precheck(request, seals=self.registry, policies=self.policy_store, now=self.clock())

    async def async_apply_seal(self, request: SealRequest) -> SealedDocument:
        """For async servers: the whole step runs in a worker thread (token and database calls block)."""
        return await asyncio.to_thread(self.seal, request)

    def apply_seal(
        self,
        request: SealRequest,
        *,
        on_settled: Callable[[SealedDocument], Sequence[BoundStatement]] | None = None,
    ) -> SealedDocument:
        """The former name of :meth:`seal` (without a pre-check), kept for its callers."""
        return self.seal(request, on_settled=on_settled)

    def seal(
        self,
        request: SealRequest,
        *,
        checked: Precheck | None = None,
        on_settled: Callable[[SealedDocument], Sequence[BoundStatement]] | None = None,
    ) -> SealedDocument:
        """The door's second half: decide, number, stamp, sign and log one document (see the module
        docstring).

        ``checked`` is this request's :func:`precheck`, made in the same unit of work (the API's
        submission or approval, within one ``core.scope.read_scope``): it is the signing's decision, not
        made again. Without it (or for another request) the policy decides here.

        ``on_settled(document)`` gives the caller's own record of the outcome (the API marks its request
        SEALED and queues the supervision event) as write statements built once, with their values
        (``core.db.BoundStatement``): they run in the settle transaction, pipelined with the ledger entry
        and the COMMIT on PostgreSQL, and commit with the number's USED, the entry and the stored document
        or not at all. They must only write (no RETURNING: nothing is read back).
        It is called at most once, only by the signing that settles the number, never for a replay of an
        earlier signing with this idempotency key.
        """
        _refuse_on_event_loop()  # before anything is drawn or logged
        now = self.clock()
        req_hash = self._request_hash(request)
        done = None if request.fresh_key else self._stored(request.idempotency_key, req_hash)
        if done is not None:
            return done
        self._check_token()
        if checked is not None and not checked.answers(request):
            checked = None
        prepared = self._prepare(request, checked, now)
        # 1. the decision
        decision = checked.decision if checked is not None else self._decide(request, prepared, now)
        if not decision.allowed:
            self._refuse(request, prepared.seal, decision, now)
        if request.template is not None:
            # its data fill it: refused here, not after a number was drawn (issue 22, leak 14)
            check_template_data(request.template, request.template_data)
        # 2. what sealing needs, fetched before the write transaction
        needs = self._needs(prepared)
        # 3. the number, reserved in a short transaction of its own
        drawn = self._reserve(request, prepared, req_hash, now)
        if isinstance(drawn, SealedDocument):
            return drawn  # a concurrent retry sealed it while we waited for the lock
        # 4. render, stamp, sign, timestamp: no transaction open, nothing written
        sealed = self._stamp_and_sign(request, prepared, needs, decision, drawn, now)
        # 5. settle: USED + SEAL_SIGNED + the stored bytes, in one transaction
        return self._settle(request, prepared, drawn, sealed, req_hash, now, on_settled)

    # -- the steps of a sealing --------------------------------------------------------------------------
    def _prepare(self, request: SealRequest, checked: Precheck | None, now: datetime) -> _Prepared:
        """Every check of the input before any number is drawn (bad input leaves no trace): the PDF is
        parsed once, opened with PDFium once (:meth:`_read_pages`) and the stamp placed once, here; the seal
        is read (or taken from ``checked``)."""
        if (request.unverified_pdf is None) == (request.template is None):
            raise BadInput(
                "SEAL_INPUT_INVALID",
                "bring either a PDF or a template with its data",
                "须提供 PDF 或模板之一",
            )
        if request.count < 1:
            raise BadInput("SEAL_INPUT_INVALID", "count must be at least 1", "用印数须至少为1")
        stage, kind = (checked.stage, checked.kind) if checked is not None else _parse_codes(request)
        level = SignatureLevel.parse(request.level) if request.level else self.default_level
        opened: OpenedPdf | None = None
        at: tuple[int, tuple[float, float, float, float]] | None = None
        verify_qr = request.verify_qr is not False
        if request.template is not None:
            # the declared kind is one the template can be (issue 22)
            check_template_request(request.template, kind.name)
        else:
            assert request.unverified_pdf is not None
            opened = open_untrusted_pdf(request.unverified_pdf, max_bytes=self.settings.max_pdf_bytes)
            refuse_unsealable(opened, request.unverified_pdf)
            refuse_failing_signatures(opened, request.unverified_pdf, now)
            at = resolve_placement(opened, request.placement)
            # "if_blank" never refuses: its answer is read with the pages' text, below (one PDFium open)
            if request.verify_qr != "if_blank" and request.verify_qr and has_signatures(opened):
                raise BadInput(
                    "QR_ON_SIGNED_PDF",
                    "a verification QR code would change a page under existing signatures",
                    "文件已有签名，添加验证二维码会使原签名失效",
                )
        seal = checked.seal if checked is not None else self.registry.get(request.seal_id)
        from policies import number_family

        # The series this document draws from: its issuing authority (the township, or the No. 2 seal's
        # department) and its family (approval result, acceptance paper, opinion) (issue 22, leak 15).
        series = _numbers.series_for(seal, number_family(kind))
        if request.unverified_pdf is not None:
            assert opened is not None and at is not None
            verify_qr = self._read_pages(request, opened, at[0], seal)
        return _Prepared(stage, kind, level, seal, series, opened, at, verify_qr)

    def _decide(self, request: SealRequest, prepared: _Prepared, now: datetime) -> Decision:
        """The policy's decision, when no pre-check of this request came with it."""
        policy_request = _policy_request(request, prepared.seal, prepared.stage, prepared.kind)
        return self.policy_store.decide_now(policy_request, now)

    def _refuse(self, request: SealRequest, seal: Seal, decision: Decision, now: datetime) -> None:
        """A refused decision: a ``SIGNING_REFUSED`` ledger entry, then ``403 SIGNING_REFUSED``."""
        self._log_refusal(request, seal, decision, now)
        raise PolicyDenied(
            "SIGNING_REFUSED",
            "the policy refused this use of the seal: " + ", ".join(decision.codes),
            "用印申请未通过策略审查：" + "、".join(r.message_zh for r in decision.reasons),
            details={
                "reasons": [
                    {"code": r.code, "message_en": r.message_en, "message_zh": r.message_zh}
                    for r in decision.reasons
                ]
            },
        )

    def _needs(self, prepared: _Prepared) -> _Needs:
        seal = prepared.seal
        timestamper = self.timestamper
        revocation = self.revocation_material() if prepared.level is not SignatureLevel.B_T else None
        key = SealingKey(
            key_label=seal.key_label,
            algorithm=seal.key_algorithm.value,
            chain_der=tuple(self.registry.chain_der(seal)),
            seal_name=seal.name,
            seal_number=seal.number,
        )
        return _Needs(timestamper, revocation, key)

    def _reserve(
        self, request: SealRequest, prepared: _Prepared, req_hash: str, now: datetime
    ) -> _numbers.DrawnNumber | SealedDocument:
        """The number, reserved in a short transaction of its own (the counter lock is held for
        milliseconds: signings of one township run side by side, not one at a time); or the document of a
        concurrent retry that sealed it while this one waited for the lock."""
        seal, series = prepared.seal, prepared.series
        with transaction(self.engine) as session:
            try:
                return _numbers.reserve_number(
                    session,
                    sequence=series.sequence,
                    year=_numbers.year_of(now),
                    fmt=self.number_format,
                    township=seal.township,
                    county=seal.county,
                    idempotency_key=request.idempotency_key,
                    now=now,
                    commit=True,
                    fields=series.fields,
                )
            except _numbers.AlreadySettled:
                done = self._stored_in(session, request.idempotency_key, req_hash)
                session.rollback()
                if done is None:
                    raise Conflict(
                        "DOCUMENT_NUMBER_STATE",
                        "this idempotency key's number is used but its document is missing",
                        "该幂等键的文号已使用但找不到已盖章文件",
                    ) from None
                return done

    def _stamp_and_sign(
        self,
        request: SealRequest,
        prepared: _Prepared,
        needs: _Needs,
        decision: Decision,
        drawn: _numbers.DrawnNumber,
        now: datetime,
    ) -> bytes:
        """Render (template) or take the upload, bind it, stamp, sign in the token, timestamp; nothing
        written. A failure voids the number (:meth:`_give_up`)."""
        seal, kind = prepared.seal, prepared.kind
        try:
            pdf = self._input_pdf(request, seal, drawn.number, now)
            source_sha256 = hashlib.sha256(pdf).hexdigest()
            binding = {
                "matter": request.matter_code,
                "stage": prepared.stage.name,
                "document_kind": kind.name,
                "document_number": drawn.number,
                "idempotency_key": request.idempotency_key,
                "seal_id": seal.seal_id,
                "policy_revision": decision.versions.revision,
                "source_sha256": source_sha256,
                # from our own template: the page shows the bound number (checked at verification)
                "template": request.template,
                # an uploaded PDF's kind is what the clerk declared (the stage allows it): said so
                "document_kind_source": "template" if request.template is not None else "declared",
            }
            job = SealJob(
                key=needs.key,
                binding=binding,
                level=prepared.level,
                placement=request.placement,
                reason=f"{kind.value}：{request.reason}" if request.reason else kind.value,
                location=seal.township,
                revocation=needs.revocation,
                verify_url=verification_url(self.pki.identity.base_url, drawn.number, source_sha256)
                if prepared.verify_qr
                else None,
                at=prepared.at,
            )
            return _run_off_loop(
                async_seal_pdf(
                    pdf,
                    job,
                    self.keystore,
                    needs.timestamper,
                    max_bytes=self.settings.max_pdf_bytes,
                    opened=prepared.opened,
                )
            )
        except Exception as exc:
            self._give_up(request, drawn, exc, now)
            raise

    def _settle(
        self,
        request: SealRequest,
        prepared: _Prepared,
        drawn: _numbers.DrawnNumber,
        sealed: bytes,
        req_hash: str,
        now: datetime,
        on_settled: Callable[[SealedDocument], Sequence[BoundStatement]] | None,
    ) -> SealedDocument:
        """``RESERVED → USED``, ``SEAL_SIGNED`` and the stored bytes (and the caller's ``on_settled``
        writes) in one transaction. The sealed bytes leave only after its commit."""
        seal, level = prepared.seal, prepared.level
        digest = hashlib.sha256(sealed).hexdigest()
        document: SealedDocument | None = None

        def written_with_the_entry(entries: list[LedgerEntry]) -> list[BoundStatement]:
            # Made once the entry's index is known, sent with the ledger's statement and the COMMIT in one
            # round trip (PostgreSQL): after the head row is locked nothing else waits on a round trip.
            nonlocal document
            document = SealedDocument(
                idempotency_key=request.idempotency_key,
                seal_id=seal.seal_id,
                document_number=drawn.number,
                sha256=digest,
                level=level.value,
                ledger_index=entries[0].index,
                pdf=sealed,
            )
            stored = (_INDEX_STORED, {"key": request.idempotency_key, "index": entries[0].index})
            return [stored, *(on_settled(document) if on_settled is not None else ())]

        try:
            with transaction(self.engine) as session:
                if _numbers.settle_number(session, drawn):
                    # The stored bytes go in before the ledger's head row is locked, their index after:
                    # every signing in the county queues on that lock, and writing ~40 kB (TOAST, indexes,
                    # WAL) inside it was most of its holder's time. Nothing is visible before the commit.
                    session.execute(
                        _STORE_SEALED,
                        {
                            "idempotency_key": request.idempotency_key,
                            "seal_id": seal.seal_id,
                            "document_number": drawn.number,
                            "sha256": digest,
                            "request_sha256": req_hash,
                            "level": level.value,
                            "ledger_index": None,
                            "sealed": sealed,
                            "created_at": now,
                        },
                    )
                    self._log_signed(
                        session,
                        request,
                        seal,
                        prepared.stage,
                        prepared.kind,
                        drawn,
                        digest,
                        level,
                        now,
                        then=written_with_the_entry,
                    )
                    if document is None:  # the ledger had the entry already: write nothing (rolled back)
                        raise Conflict(
                            "LEDGER_IDEMPOTENCY_CONFLICT",
                            f"{request.idempotency_key!r} is logged while its number was still open",
                        )
        except Exception as exc:
            if database_unavailable(exc):
                # Nothing of this transaction was written: the number stays reserved for this request,
                # and a retry with the same idempotency key takes it over (no gap, no void).
                raise _database_gone() from exc
            self._give_up(request, drawn, exc, now)
            raise
        if document is None:
            # A twin request with this idempotency key settled the number first (then its document is
            # the answer), or the reservation outlived its time and was voided.
            done = self._stored(request.idempotency_key, req_hash)
            if done is not None:
                return done
            raise Unavailable(
                "DOCUMENT_NUMBER_EXPIRED",
                f"the reservation of {drawn.number} expired before the signing ended; it was voided, retry",
                f"文号 {drawn.number} 预留已过期并作废，请重试",
            )
        return document

    async def async_attest(self, request: AttestRequest) -> SealedDocument:
        return await asyncio.to_thread(self.attest, request)

    def attest(self, request: AttestRequest) -> SealedDocument:
        """Add a county department's seal as a second incremental signature; the first stays valid.

        The document must already carry a Yizhang seal (its binding names the matter and document number,
        which the attestation's ledger entry repeats). The attesting seal must be active and belong to a
        department (``Seal.department`` set). No document number is drawn: the document keeps its own.
        """
        from ._seal import read_binding

        _refuse_on_event_loop()
        now = self.clock()
        req_hash = hashlib.sha256(
            json.dumps([request.seal_id, getattr(request.operator, "user_id", None)]).encode()
            + hashlib.sha256(request.sealed_pdf).digest()
        ).hexdigest()
        done = self._stored(request.idempotency_key, req_hash)
        if done is not None:
            return done
        self._check_token()
        opened = open_untrusted_pdf(request.sealed_pdf, max_bytes=self.settings.max_pdf_bytes)
        refuse_unsealable(opened, request.sealed_pdf)
        resolve_placement(opened, request.placement)
        try:
            bindings = read_binding(request.sealed_pdf)
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(
                "ATTEST_NOT_SEALED", "the document carries no readable seal", "文书无可读印章"
            ) from exc
        if not bindings:
            raise BadInput(
                "ATTEST_NOT_SEALED", "only a sealed document can be attested", "仅已盖章的文书可认证"
            )
        first = bindings[0]
        seal = self.registry.require_signable(request.seal_id, now)
        if not seal.department:
            raise PolicyDenied(
                "ATTEST_SEAL_NOT_DEPARTMENT",
                "attestation is by a county department's seal",
                "书面认证须使用县级部门印章",
            )
        level = SignatureLevel.parse(request.level) if request.level else self.default_level
        timestamper = self.timestamper
        revocation = self.revocation_material() if level is not SignatureLevel.B_T else None
        key = SealingKey(
            key_label=seal.key_label,
            algorithm=seal.key_algorithm.value,
            chain_der=tuple(self.registry.chain_der(seal)),
            seal_name=seal.name,
            seal_number=seal.number,
        )
        binding = {
            "attestation": "COUNTY_ATTESTATION",
            "attests_document_number": first.get("document_number"),
            "matter": first.get("matter"),
            "idempotency_key": request.idempotency_key,
            "seal_id": seal.seal_id,
        }
        job = SealJob(
            key=key,
            binding=binding,
            level=level,
            placement=request.placement,
            reason=request.reason,
            location=seal.department,
            revocation=revocation,
        )
        sealed = _run_off_loop(
            async_seal_pdf(
                request.sealed_pdf,
                job,
                self.keystore,
                timestamper,
                max_bytes=self.settings.max_pdf_bytes,
                opened=opened,
            )
        )
        digest = hashlib.sha256(sealed).hexdigest()
        from ledger import EntryFields, EntryKind

        body = {
            "seal_id": seal.seal_id,
            "matter": str(first.get("matter") or "-"),
            "stage": "ATTESTATION",
            "document_kind": str(first.get("document_kind") or "-"),
            "document_number": str(first.get("document_number") or "-"),
            "document_sha256": digest,
            "operator": request.operator.user_id,
            "approver": "-",
            "reason": request.reason,
            "count": 1,
            "cert_serial": seal.cert_serial,
            "idempotency_key": request.idempotency_key,
            "level": level.value,
        }
        with transaction(self.engine) as session:
            entry = self.ledger.append(
                session,
                EntryFields(kind=EntryKind.SEAL_SIGNED, at=now, body=body),
                f"attest:{request.idempotency_key}",
            )
            session.add(
                SealedDocumentRow(
                    idempotency_key=request.idempotency_key,
                    seal_id=seal.seal_id,
                    document_number=first.get("document_number"),
                    sha256=digest,
                    request_sha256=req_hash,
                    level=level.value,
                    ledger_index=entry.index,
                    sealed=sealed,
                    created_at=now,
                )
            )
        return SealedDocument(
            idempotency_key=request.idempotency_key,
            seal_id=seal.seal_id,
            document_number=first.get("document_number"),
            sha256=digest,
            level=level.value,
            ledger_index=entry.index,
            pdf=sealed,
        )

    # -- pieces ----------------------------------------------------------------------------------------
    @staticmethod
    def _request_hash(request: SealRequest) -> str:
        h = hashlib.sha256()
        head = {
            "seal": request.seal_id,
            "matter": request.matter_code,
            "stage": request.stage,
            "kind": request.document_kind,
            "template": request.template,
            "data": request.template_data,
            "operator": getattr(request.operator, "user_id", None),
        }
        h.update(json.dumps(head, sort_keys=True, ensure_ascii=True, default=str).encode())
        h.update(hashlib.sha256(request.unverified_pdf or b"").digest())
        return h.hexdigest()

    def sealed_pdf(self, idempotency_key: str) -> bytes | None:
        """The sealed bytes stored for this idempotency key, if its signing settled."""
        with reading(self.engine) as session:
            data = session.scalar(
                select(SealedDocumentRow.sealed).where(SealedDocumentRow.idempotency_key == idempotency_key)
            )
        return bytes(data) if data is not None else None

    def _stored(self, key: str, req_hash: str) -> SealedDocument | None:
        with reading(self.engine) as session:
            return self._stored_in(session, key, req_hash)

    @staticmethod
    def _stored_in(session: Session, key: str, req_hash: str) -> SealedDocument | None:
        row = session.execute(
            select(SealedDocumentRow).where(SealedDocumentRow.idempotency_key == key)
        ).scalar_one_or_none()
        if row is None:
            return None
        if row.request_sha256 != req_hash:
            raise Conflict(
                "IDEMPOTENCY_KEY_REUSED",
                "this idempotency key was used for a different sealing request",
                "该幂等键已用于另一用印申请",
            )
        return SealedDocument(
            idempotency_key=row.idempotency_key,
            seal_id=row.seal_id,
            document_number=row.document_number,
            sha256=row.sha256,
            level=row.level,
            ledger_index=row.ledger_index,
            pdf=bytes(row.sealed),
            replayed=True,
        )

    def _read_pages(self, request: SealRequest, opened: OpenedPdf, page: int, seal: Seal) -> bool:
        """The upload's pages as PDFium shows them, from one PDFium document for both checks that need it
        (issue 24): no page may show a number of this issuer's series (:meth:`_refuse_own_numbers`), and
        with ``verify_qr="if_blank"`` the code is printed only where ``page`` is blank
        (``_preview.qr_fits_opened``). Returns whether the code is printed. Checked before a number is drawn.

        What a client sees is what the two separate opens gave: the QR check never refuses (a file PDFium
        cannot open has no blank area), so it runs here, after the seal is read, and a file PDFium cannot
        open is ``PDF_MALFORMED`` (when the pages are read at all: a number format without 〔year〕 reads
        none)."""
        from contextlib import ExitStack

        from verifier import page_texts, pdfium_document

        from ._preview import qr_fits_opened

        unverified_pdf = request.unverified_pdf
        assert unverified_pdf is not None
        heads = self._own_series_heads(seal)
        qr_asked = request.verify_qr == "if_blank"
        verify_qr = request.verify_qr is not False
        if heads is None:  # no text to read: the QR check opens the file itself, if asked
            return qr_fits_opened(unverified_pdf, opened, page) if qr_asked else verify_qr
        with ExitStack() as held:  # PDFIUM_LOCK held, the document closed on leaving (also on an error)
            try:
                doc = held.enter_context(pdfium_document(unverified_pdf))
            except ValueError as exc:
                raise _pages_unreadable(exc) from exc
            if qr_asked:
                verify_qr = qr_fits_opened(doc, opened, page)
            try:
                texts = page_texts(doc)
            except ValueError as exc:
                raise _pages_unreadable(exc) from exc
        self._refuse_own_numbers(texts, heads)
        return verify_qr

    def _own_series_heads(self, seal: Seal) -> list[str] | None:
        """The series prefixes of this issuer's numbers, one per family; None for a number format without
        〔year〕 (nothing to recognise on a page)."""
        from policies import NumberFamily

        heads = [
            _numbers.series_prefix(
                self.number_format, seal.township, seal.county, _numbers.series_for(seal, family).fields
            )
            for family in NumberFamily
        ]
        return None if None in heads else [head for head in heads if head]

    def _refuse_own_numbers(self, texts: list[str], heads: list[str]) -> None:
        """A PDF brought to be sealed may not already print a number of this issuer's series (``heads``),
        of any family (nor a bare 〔2026〕2号): the number is assigned here, after this check, and a page
        showing another one would carry a seal bound to a number it does not show (issue 18). Numbers of
        other organs' series (citations such as 兴国县林业局〔2025〕12号) are fine. ``texts``: its pages'."""
        from verifier import conflicting_numbers

        shown = [found for head in heads for found in conflicting_numbers(texts, head)]
        if shown:
            page, number = shown[0]
            raise BadInput(
                "PDF_SHOWS_DOCUMENT_NUMBER",
                f"page {page} already shows the document number {number}; numbers of this series are "
                "assigned when the document is sealed (use a template, or leave the number out)",
                f"第{page}页已印有文号“{number}”；本中心的文号由盖章时分配（请使用模板或去掉文号）",
                details={"page": page, "number": number},
            )

    def _input_pdf(self, request: SealRequest, seal: Seal, number: str, now: datetime) -> bytes:
        if request.unverified_pdf is not None:
            return request.unverified_pdf
        assert request.template is not None
        return rendered_template(request.template, request.template_data, seal, number, now)

    def _log_signed(
        self,
        session: Session,
        request: SealRequest,
        seal: Seal,
        stage: Stage,
        kind: DocumentKind,
        drawn: _numbers.DrawnNumber,
        digest: str,
        level: SignatureLevel,
        now: datetime,
        *,
        then: Callable[[list[LedgerEntry]], Sequence[BoundStatement]],
    ) -> LedgerEntry:
        from ledger import EntryFields, EntryKind

        body = {
            "seal_id": seal.seal_id,
            "matter": request.matter_code,
            "stage": stage.name,
            "document_kind": kind.name,
            "document_number": drawn.number,
            "document_sha256": digest,
            "operator": request.operator.user_id,
            "approver": request.approver.user_id if request.approver is not None else "",
            "reason": request.reason or kind.value,
            "count": request.count,
            "cert_serial": seal.cert_serial,
            "township_code": seal.township_code,
            "idempotency_key": request.idempotency_key,
            "level": level.value,
        }
        if not body["approver"]:
            body["approver"] = "-"  # the ledger requires the field; "-" = no approval was required
        fields = EntryFields(kind=EntryKind.SEAL_SIGNED, at=now, body=body, personal=dict(request.personal))
        # fresh: this transaction alone moved the request's number from RESERVED to USED, so no entry has
        # this key (a twin that settled first made this one's settle fail); the ledger skips its lookup.
        return self.ledger.append(
            session, fields, f"seal:{request.idempotency_key}", fresh=True, then=then, last=True
        )

    def _log_refusal(self, request: SealRequest, seal: Seal, decision: Decision, now: datetime) -> None:
        from ledger import EntryFields, EntryKind

        body = {
            "seal_id": seal.seal_id,
            "matter": request.matter_code,
            "stage": request.stage,
            "document_kind": request.document_kind,
            "operator": request.operator.user_id,
            "approver": request.approver.user_id if request.approver is not None else "-",
            # Whose record the refusal is (issue 21): the operator's organisation, and the seal's township.
            "operator_org": request.operator.org_code,
            "township": seal.township_code,
            "reason_codes": list(decision.codes),
            "idempotency_key": request.idempotency_key,
        }
        with transaction(self.engine) as session:
            self.ledger.append(
                session,
                EntryFields(kind=EntryKind.SIGNING_REFUSED, at=now, body=body),
                f"refused:{request.idempotency_key}",
            )

    def _give_up(
        self,
        request: SealRequest,
        drawn: _numbers.DrawnNumber,
        exc: BaseException,
        now: datetime,
    ) -> None:
        """The signing failed after its number was reserved: void the number, in a transaction of its own.

        Not voided (the reservation stays open for a retry, or for the sweeper) when the database is gone.
        """
        code = exc.code if isinstance(exc, SealServiceError) else type(exc).__name__
        try:
            with transaction(self.engine) as session:
                operator, key = request.operator.user_id, request.idempotency_key
                self._void(session, drawn, code, str(exc), operator, key, now)
        except Exception as void_exc:
            if database_unavailable(void_exc):
                raise _database_gone() from exc
            raise

    def _void(
        self,
        session: Session,
        drawn: _numbers.DrawnNumber,
        code: str,
        detail: str,
        operator: str,
        idempotency_key: str,
        now: datetime,
    ) -> bool:
        from ledger import EntryFields, EntryKind

        if not _numbers.void_number(session, drawn, f"{code}: {detail}"):
            return False  # settled by a twin request, or voided already: nothing to log
        self.ledger.append(
            session,
            EntryFields(
                kind=EntryKind.DOCUMENT_NUMBER_VOIDED,
                at=now,
                body={
                    "document_number": drawn.number,
                    "operator": operator,
                    "reason": code,
                    "idempotency_key": idempotency_key,
                },
            ),
            f"void:{drawn.sequence}:{drawn.year}:{drawn.seq}",
        )
        return True

    def sweep_reservations(self, older_than: timedelta | None = None) -> list[str]:
        """Void the numbers whose signing never ended (its process died) and that no retry took over.

        A reservation older than ``older_than`` (default ``number_reservation_ttl_s``) is past any signing's
        time bound: it is voided with a ``DOCUMENT_NUMBER_VOIDED`` entry (reason
        ``RESERVATION_EXPIRED``). A late signing that still holds it fails to settle and answers
        ``DOCUMENT_NUMBER_EXPIRED`` (its bytes never leave). Returns the voided numbers.
        """
        default = timedelta(seconds=self.settings.number_reservation_ttl_s)
        ttl = older_than if older_than is not None else default
        now = self.clock()
        voided: list[str] = []
        while True:
            with transaction(self.engine) as session:
                batch = _numbers.expired_reservations(session, now - ttl)
                for drawn, key in batch:
                    if self._void(
                        session, drawn, "RESERVATION_EXPIRED", "its signing never ended", SWEEPER, key, now
                    ):
                        voided.append(drawn.number)
            if len(batch) < 100:
                return voided


def apply_seal(
    sealer: Sealer,
    request: SealRequest,
    *,
    on_settled: Callable[[SealedDocument], Sequence[BoundStatement]] | None = None,
) -> SealedDocument:
    """Module-level form of :meth:`Sealer.apply_seal`."""
    return sealer.apply_seal(request, on_settled=on_settled)
