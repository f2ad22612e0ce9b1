"""Long-term validation of stored sealed documents (issue 19, item 4): TSA rotation and archive timestamps.

A sealed document outlives the certificates in it: seal and TSA certificates last 3 years. What keeps it
verifiable is PAdES-LTA: before the TSA certificate of a document's latest timestamp expires, its
validation data (the chain and CRLs current *now*) goes into the DSS and a new document timestamp by a
*current* TSA covers everything. A verifier then validates each archive timestamp at the time proven by the
next one (``verifier._ltv``), down to the seal's signature timestamp.

One round (:meth:`LtvRenewer.run_round`; ``yizhang serve`` runs one at start and then every
``LTV_INTERVAL_S``, ``yizhang ltv renew`` runs one on demand):

1. Rotate the county TSA when its certificate has fewer than ``ltv_tsa_rotate_days`` left: a new key
   ``tsa:<name>-<yyyymmdd>`` in the token, a new certificate from the issuing CA, the ``sig_tsa_certs`` row
   pointed at it (under a file lock in the home, re-checked under it: one rotation however many workers).
   The old key stays in the token (nothing signs with it any more; its tokens stay verifiable).
2. Learn ``archive_until`` (the notAfter of the TSA certificate of the latest timestamp) of stored
   documents that do not have it yet, at most ``ltv_batch`` per round.
3. Renew at most ``ltv_batch`` documents whose ``archive_until`` falls within ``ltv_renew_days``, oldest
   first, if the current TSA outlives it (else nothing would be gained: ``LTV_NO_SUCCESSOR_TSA``). The
   extended copy replaces the stored bytes (compare-and-set on ``archive_until``, so two workers never both
   write), keeps its number, idempotency key and the ``sha256`` of the document as sealed (the ledger's
   digest, a revision prefix of every extended copy). The holder downloads it where they got the original.

Problems (:func:`ltv_health`, from the database alone) are what ``/readyz``, ``/metrics`` and the serve log
report, a year before anything expires with the defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import cms as a_cms
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, func, select, update

from core.db import transaction
from core.errors import SealServiceError, SigningError

from ._storage import SealedDocumentRow, TsaCertRow
from ._tsa import CountyTimeStamper, CountyTsa, TsaIdentity, ensure_county_tsa

log = logging.getLogger("yizhang.ltv")

#: A document with no timestamp at all has nothing to renew: it gets this ``archive_until``.
NEVER = datetime(9999, 12, 31, tzinfo=UTC)
#: How often each serve worker runs a round (the first at start).
LTV_INTERVAL_S = 600.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LtvPolicy:
    rotate_before: timedelta = timedelta(days=365)
    renew_before: timedelta = timedelta(days=300)
    batch: int = 200

    @classmethod
    def from_settings(cls, settings: Any) -> LtvPolicy:
        return cls(
            rotate_before=timedelta(days=settings.ltv_tsa_rotate_days),
            renew_before=timedelta(days=settings.ltv_renew_days),
            batch=settings.ltv_batch,
        )


@dataclass(frozen=True)
class LtvProblem:
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LtvHealth:
    """What the database says about long-term validation now (no token needed)."""

    checked_at: datetime
    tsa_not_after: datetime | None
    documents_due: int
    documents_unknown: int
    earliest_archive_until: datetime | None
    problems: tuple[LtvProblem, ...]
    evidence: dict[str, Any] = field(default_factory=dict)  # the ledger's evidence chains (item 4b)

    @property
    def code(self) -> str:
        return self.problems[0].code if self.problems else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.code,
            "tsa_not_after": self.tsa_not_after.isoformat() if self.tsa_not_after else None,
            "documents_due": self.documents_due,
            "documents_unknown": self.documents_unknown,
            "earliest_archive_until": (
                self.earliest_archive_until.isoformat() if self.earliest_archive_until else None
            ),
            "problems": [{"code": p.code, "message": p.message, **p.details} for p in self.problems],
            "evidence": dict(self.evidence),
        }


@dataclass
class LtvRound:
    started_at: datetime
    rotated_to: str | None = None
    learned: int = 0
    renewed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped_no_successor: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "rotated_to": self.rotated_to,
            "learned": self.learned,
            "renewed": list(self.renewed),
            "failed": [{"document": k, "code": c} for k, c in self.failed],
            "skipped_no_successor": self.skipped_no_successor,
        }


# ---------------------------------------------------------------------------------------------------------
# reading documents


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _tst_signer_cert(token: a_cms.ContentInfo) -> a_x509.Certificate | None:
    sd = token["content"]
    sid = sd["signer_infos"][0]["sid"]
    if sid.name != "issuer_and_serial_number":
        return None
    serial = sid.chosen["serial_number"].native
    for c in sd["certificates"] or []:
        if c.name == "certificate" and c.chosen.serial_number == serial:
            return c.chosen
    return None


def archive_until(pdf: bytes) -> datetime:
    """notAfter of the TSA certificate of the document's latest timestamp: its last document timestamp, or
    else the signature timestamp of its last signature. :data:`NEVER` when it carries no timestamp."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    latest: a_x509.Certificate | None = None
    for emb in reader.embedded_signatures:  # in revision order
        token: a_cms.ContentInfo | None = None
        if emb.sig_object_type == "/DocTimeStamp":
            token = a_cms.ContentInfo({"content_type": "signed_data", "content": emb.signed_data})
        else:
            for attr in emb.signer_info["unsigned_attrs"] or []:
                if attr["type"].native == "signature_time_stamp_token":
                    token = attr["values"][0]
        if token is not None:
            latest = _tst_signer_cert(token) or latest
    if latest is None:
        return NEVER
    return _aware(latest.not_valid_after)


# ---------------------------------------------------------------------------------------------------------
# 1. TSA rotation


def tsa_identity_row(engine: Engine, name: str = "county") -> tuple[str, bytes] | None:
    with transaction(engine) as session:
        row = session.get(TsaCertRow, name)
        return (row.key_label, bytes(row.cert_der)) if row is not None else None


def _not_after(cert_der: bytes) -> datetime:
    return x509.load_der_x509_certificate(cert_der).not_valid_after_utc


@contextlib.contextmanager
def _home_lock(home: Path | None, name: str) -> Iterator[None]:
    if home is None:
        yield
        return
    path = home / "pki" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def rotate_county_tsa(
    engine: Engine,
    keystore: Any,
    pki: Any,
    now: datetime,
    rotate_before: timedelta,
    *,
    home: Path | None = None,
    name: str = "county",
) -> str | None:
    """A new TSA key and certificate when the current certificate has less than ``rotate_before`` left.
    Returns the new key label, or ``None`` when no rotation was due."""
    with _home_lock(home, ".tsa-rotate.lock"):
        current = tsa_identity_row(engine, name)
        if current is None:
            ensure_county_tsa(engine, keystore, pki, name)  # first use: nothing to rotate
            return None
        if _not_after(current[1]) - now > rotate_before:
            return None
        label = f"{name}-{now:%Y%m%d%H%M%S}"
        cert = pki.issue_tsa_cert(label, now=now)
        if _not_after(cert.public_bytes(serialization.Encoding.DER)) - now <= rotate_before:
            # the issuing CA ends too soon to give the TSA more time: rotating again every round would
            # only pile up keys; this is the CA's renewal, not ours (reported by ltv_health)
            log.error("LTV_TSA_CA_ENDING: the issuing CA ends within the rotation window; no rotation")
            keystore.destroy_key(f"tsa:{label}")
            return None
        with transaction(engine) as session:
            row = session.get(TsaCertRow, name)
            assert row is not None
            row.key_label = f"tsa:{label}"
            row.cert_der = cert.public_bytes(serialization.Encoding.DER)
            row.created_at = now
        log.warning(
            "county TSA rotated: key tsa:%s, certificate until %s (the old one ended %s)",
            label,
            cert.not_valid_after_utc.isoformat(),
            _not_after(current[1]).isoformat(),
        )
        return f"tsa:{label}"


def adopt_current_tsa(sealer: Any) -> bool:
    """Make a running :class:`~signer.Sealer` use the TSA the database names now (after a rotation by this
    or another worker). Returns whether it changed."""
    row = tsa_identity_row(sealer.engine)
    if row is None:
        return False
    with sealer._lock:  # noqa: SLF001 - the sealer's own lock around its TSA cache
        tsa = sealer._tsa  # noqa: SLF001
        if tsa is None or tsa.identity.cert_der == row[1]:
            return False
        sealer._tsa = None  # noqa: SLF001 - rebuilt from the row on next use
        if isinstance(sealer._timestamper, CountyTimeStamper):  # noqa: SLF001
            sealer._timestamper = None  # noqa: SLF001
        return True


# ---------------------------------------------------------------------------------------------------------
# 3. renewal of one document


def renew_document(
    pdf: bytes,
    timestamper: Any,
    *,
    roots_der: tuple[bytes, ...],
    certs_der: tuple[bytes, ...],
    crls_der: tuple[bytes, ...],
    now: datetime,
) -> bytes:
    """PAdES-LTA extension: the DSS gets the chain and the given (current) CRLs for the latest document
    timestamp, then a new document timestamp from ``timestamper`` covers the whole file. Raises
    :class:`SealServiceError` (``LTV_RENEWAL_FAILED``) when the latest timestamp does not validate now."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
    from pyhanko_certvalidator import ValidationContext

    vc = ValidationContext(
        trust_roots=[a_x509.Certificate.load(d) for d in roots_der],
        other_certs=[a_x509.Certificate.load(d) for d in certs_der],
        crls=list(crls_der),
        allow_fetching=False,
        revocation_mode="hard-fail",
        moment=now,
    )
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    out = io.BytesIO()
    try:
        asyncio.run(
            PdfTimeStamper(timestamper).async_update_archival_timestamp_chain(
                reader, vc, in_place=False, output=out
            )
        )
    except SealServiceError:
        raise
    except Exception as exc:
        raise SigningError(
            "LTV_RENEWAL_FAILED",
            f"archive timestamp not renewed: {type(exc).__name__}: {exc}"[:500],
            "归档时间戳续期失败",
        ) from exc
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------
# the round


class LtvRenewer:
    """Rotation and renewal for one deployment (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        keystore: Any,
        pki: Any,
        policy: LtvPolicy,
        *,
        home: Path | None = None,
        clock: Callable[[], datetime] = _utcnow,
        sealer: Any | None = None,
    ) -> None:
        self.engine = engine
        self.keystore = keystore
        self.pki = pki
        self.policy = policy
        self.home = home
        self.clock = clock
        self.sealer = sealer

    def run_round(self, *, due_within: timedelta | None = None, limit: int | None = None) -> LtvRound:
        now = self.clock()
        result = LtvRound(started_at=now)
        result.rotated_to = rotate_county_tsa(
            self.engine, self.keystore, self.pki, now, self.policy.rotate_before, home=self.home
        )
        if self.sealer is not None:
            adopt_current_tsa(self.sealer)
        batch = limit or self.policy.batch
        result.learned = self._learn(batch)
        self._renew_due(now, due_within or self.policy.renew_before, batch, result)
        return result

    def _learn(self, batch: int) -> int:
        docs = SealedDocumentRow
        with transaction(self.engine) as session:
            keys = session.scalars(
                select(docs.idempotency_key).where(docs.archive_until.is_(None)).limit(batch)
            ).all()
        for key in keys:  # one stored document in memory at a time (each up to max_pdf_bytes)
            with transaction(self.engine) as session:
                sealed = session.scalar(select(docs.sealed).where(docs.idempotency_key == key))
            try:
                until = archive_until(bytes(sealed)) if sealed is not None else NEVER
            except Exception as exc:  # noqa: BLE001 - a stored file we cannot read: never renewable
                log.error("LTV_UNREADABLE: stored document %s: %s", key, type(exc).__name__)
                until = NEVER
            with transaction(self.engine) as session:
                session.execute(
                    update(docs)
                    .where(docs.idempotency_key == key, docs.archive_until.is_(None))
                    .values(archive_until=until)
                )
        return len(keys)

    def _renew_due(self, now: datetime, within: timedelta, batch: int, result: LtvRound) -> None:
        docs = SealedDocumentRow
        with transaction(self.engine) as session:
            due = session.execute(
                select(docs.idempotency_key, docs.document_number, docs.archive_until)
                .where(docs.archive_until < now + within)
                .order_by(docs.archive_until)
                .limit(batch)
            ).all()
        if not due:
            return
        identity = ensure_county_tsa(self.engine, self.keystore, self.pki)
        tsa_until = _not_after(identity.cert_der)
        tsa = CountyTsa(self.keystore, identity, clock=self.clock)
        stamper = CountyTimeStamper(tsa)
        der = serialization.Encoding.DER
        roots = (self.pki.root_certificate.public_bytes(der),)
        certs = (self.pki.issuing_certificate.public_bytes(der), identity.cert_der)
        crls: tuple[bytes, ...] | None = None
        for key, number, until in due:
            if until is None:  # not selected by the query above; for the type checker
                continue
            if tsa_until <= _aware(until):
                result.skipped_no_successor += 1
                continue
            if crls is None:  # signed once per round, only when something is renewed
                crls = (self.pki.crl_der("issuing", now=now), self.pki.crl_der("root", now=now))
            label = number or key
            try:
                self._renew_one(key, _aware(until), stamper, roots, certs, crls, now, identity)
            except SealServiceError as exc:
                log.error("%s: document %s not renewed: %s", exc.code, label, exc)
                result.failed.append((label, exc.code))
                continue
            result.renewed.append(label)
        if result.skipped_no_successor:
            log.error(
                "LTV_NO_SUCCESSOR_TSA: %d document(s) due for renewal, but the county TSA's certificate "
                "(until %s) does not outlive theirs",
                result.skipped_no_successor,
                tsa_until.isoformat(),
            )

    def _renew_one(
        self,
        key: str,
        until: datetime,
        stamper: Any,
        roots: tuple[bytes, ...],
        certs: tuple[bytes, ...],
        crls: tuple[bytes, ...],
        now: datetime,
        identity: TsaIdentity,
    ) -> None:
        docs = SealedDocumentRow
        with transaction(self.engine) as session:
            sealed = session.scalar(select(docs.sealed).where(docs.idempotency_key == key))
        if sealed is None:
            return
        extended = renew_document(
            bytes(sealed), stamper, roots_der=roots, certs_der=certs, crls_der=crls, now=now
        )
        new_until = _not_after(identity.cert_der)
        with transaction(self.engine) as session:
            done = session.execute(
                update(docs)
                .where(docs.idempotency_key == key, docs.archive_until == until)
                .values(sealed=extended, archive_until=new_until)
            )
        if getattr(done, "rowcount", 1) == 0:
            log.info("document %s was renewed by another worker meanwhile", key)
        else:
            log.info("archive timestamp renewed: %s, now until %s", key, new_until.isoformat())


# ---------------------------------------------------------------------------------------------------------
# health


def ltv_health(engine: Engine, now: datetime, policy: LtvPolicy, *, token_ok: bool = True) -> LtvHealth:
    """Long-term validation as the database tells it: problems long before anything expires.

    - ``LTV_TSA_EXPIRING``: the county TSA's certificate is inside the rotation window and was not
      rotated (token missing, rotation failing, or the issuing CA ends too soon).
    - ``LTV_RENEWAL_OVERDUE``: stored documents whose archive timestamp ends within half the renewal window
      and were not renewed yet; ``LTV_NO_SUCCESSOR_TSA`` (at once) when the current TSA does not outlive
      a document due for renewal.
    - ``LTV_EVIDENCE_UNSTAMPED``, ``LTV_EVIDENCE_RENEWAL_OVERDUE`` (and ``LTV_NO_SUCCESSOR_TSA``): the
      ledger's evidence chains for untouched originals (``signer._ledger_anchor.evidence_health``);
    - ``LTV_TOKEN_UNAVAILABLE``: any of the above with no token to act on it.
    """
    docs = SealedDocumentRow
    row = None
    with transaction(engine) as session:
        trow = session.get(TsaCertRow, "county")
        if trow is not None:
            row = bytes(trow.cert_der)
        due, earliest = session.execute(
            select(func.count(), func.min(docs.archive_until)).where(
                docs.archive_until < now + policy.renew_before
            )
        ).one()
        unknown = session.scalar(select(func.count()).where(docs.archive_until.is_(None))) or 0
        if earliest is None:
            earliest = session.scalar(select(func.min(docs.archive_until)))
    tsa_until = _not_after(row) if row is not None else None
    problems: list[LtvProblem] = []
    if tsa_until is not None and tsa_until - now <= policy.rotate_before:
        problems.append(
            LtvProblem(
                "LTV_TSA_EXPIRING",
                "the county TSA certificate is due for rotation and was not rotated",
                {"tsa_not_after": tsa_until.isoformat(), "days_left": (tsa_until - now).days},
            )
        )
    # Documents inside the renewal window are renewed a batch per round; only when half the window has
    # passed (or no TSA could help) is that a problem.
    late = earliest is not None and _aware(earliest) - now < policy.renew_before / 2
    no_successor = (
        bool(due) and tsa_until is not None and earliest is not None and tsa_until <= _aware(earliest)
    )
    if due and (late or no_successor):
        problems.append(
            LtvProblem(
                "LTV_NO_SUCCESSOR_TSA" if no_successor else "LTV_RENEWAL_OVERDUE",
                "stored documents need a new archive timestamp before their TSA certificate expires",
                {
                    "documents": int(due),
                    "earliest_expiry": _aware(earliest).isoformat() if earliest is not None else None,
                },
            )
        )
    from signer._ledger_anchor import evidence_health

    evidence = evidence_health(engine, now, policy.renew_before, tsa_until)
    problems.extend(evidence.problems)
    if problems and not token_ok:
        problems.insert(
            0, LtvProblem("LTV_TOKEN_UNAVAILABLE", "renewal is due and the signing token is not available")
        )
    return LtvHealth(
        checked_at=now,
        tsa_not_after=tsa_until,
        documents_due=int(due or 0),
        documents_unknown=int(unknown),
        earliest_archive_until=_aware(earliest) if earliest is not None else None,
        problems=tuple(problems),
        evidence=evidence.to_dict(),
    )
