"""Evidence records for the untouched original (issue 19 item 4b; docs/ledger-format.md, "Evidence records").

The holder keeps the file as it was sealed; its own timestamps stop proving anything when their TSA
certificate expires. The ledger proves the file's SHA-256 (its ``SEAL_SIGNED`` entry) is in a checkpoint;
this module gives the checkpoints *time*, in the manner of RFC 4998's ArchiveTimeStampChain:

1. **Stamp** (:meth:`LedgerAnchor.stamp_due`): the first round after each Asia/Shanghai midnight signs the
   tree head if it grew (``Ledger.checkpoint``) and asks the county TSA for an RFC 3161 token over
   SHA-256(signed note of that checkpoint), unless that checkpoint is stamped already. The token, its
   genTime, its TSA certificate's notAfter and the validation data current then (TSA certificate, CA
   certificates, the published CRLs) go into ``ledger_checkpoint_stamps`` as the first link of a chain.
2. **Renew** (:meth:`LedgerAnchor.renew_due`): a chain whose newest link's TSA certificate ends within
   ``ltv_renew_days`` (the window of document renewal) gets a renewal link: a token from the *current* TSA
   (rotated by the long-term validation round before) over SHA-256(previous token DER ‖ signed note of the
   latest checkpoint), with the CRLs current now -- those that let a verifier judge the previous token at
   this link's genTime. Skipped when the current TSA does not outlive the link (``LTV_NO_SUCCESSOR_TSA``).
3. **Serve** (:func:`evidence_record`): the record for one entry: its tlog-proof against the first stamped
   checkpoint that contains it, and that chain with its certificates and CRLs, as one JSON file
   (``yizhang-evidence-record/1``). Built from the database alone (no token).

Health (:func:`evidence_health`) joins the ``LTV_*`` problems of ``/readyz``, ``/metrics`` and the log.
One round per serve worker: the home's file lock keeps two workers from stamping at once, and the
ledger's unique indexes refuse a second stamp of a checkpoint or a second renewal of a link.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from asn1crypto import tsp
from cryptography import x509
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.errors import Conflict, NotFound, SealServiceError
from ledger import RENEWAL, STAMP, CheckpointStamp, Ledger, renewal_imprint, stamp_imprint

from ._tsa import CountyTsa, _load_response, ensure_county_tsa

log = logging.getLogger("yizhang.ltv")

EVIDENCE_FORMAT = "yizhang-evidence-record/1"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def shanghai_midnight(now: datetime) -> datetime:
    """The last 00:00 Asia/Shanghai at or before ``now`` (UTC)."""
    local = now.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


@dataclass(frozen=True)
class TokenFacts:
    tst_der: bytes  # the TimeStampToken (CMS ContentInfo), DER
    gen_time: datetime
    tsa_not_after: datetime


def request_token(tsa: CountyTsa, imprint: bytes) -> TokenFacts:
    """An RFC 3161 token from the county TSA over the SHA-256 ``imprint`` (certificates included)."""
    req = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": imprint},
            "nonce": secrets.randbits(63),
            "cert_req": True,
        }
    )
    token = _load_response(tsa.respond(req.dump()))["time_stamp_token"]
    info = token["content"]["encap_content_info"]["content"].parsed
    gen_time = info["gen_time"].native
    if info["message_imprint"]["hashed_message"].native != imprint:
        raise SealServiceError("LTV_EVIDENCE_TOKEN_INVALID", "the TSA stamped something else")
    not_after = x509.load_der_x509_certificate(tsa.identity.cert_der).not_valid_after_utc
    return TokenFacts(token.dump(), gen_time, not_after)


@dataclass(frozen=True)
class AnchorPolicy:
    renew_before: timedelta = timedelta(days=300)

    @classmethod
    def from_settings(cls, settings: Any) -> AnchorPolicy:
        return cls(renew_before=timedelta(days=settings.ltv_renew_days))


@dataclass
class AnchorRound:
    stamped: int | None = None  # the checkpoint size stamped this round
    renewed: list[int] = field(default_factory=list)  # ids of the links renewed
    skipped_no_successor: int = 0
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stamped": self.stamped,
            "renewed": list(self.renewed),
            "skipped_no_successor": self.skipped_no_successor,
            "failed": list(self.failed),
        }


class LedgerAnchor:
    """Stamps checkpoints and renews evidence chains for one deployment (see the module docstring)."""

    def __init__(
        self,
        ledger: Ledger,
        keystore: Any,
        pki: Any,
        policy: AnchorPolicy,
        *,
        home: Path | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.ledger = ledger
        self.keystore = keystore
        self.pki = pki
        self.policy = policy
        self.home = home
        self.clock = clock

    def _tsa(self) -> CountyTsa:
        identity = ensure_county_tsa(self.ledger.engine, self.keystore, self.pki)
        return CountyTsa(self.keystore, identity, clock=self.clock)

    def validation_data(self, tsa: CountyTsa, now: datetime) -> bytes:
        """What a verifier needs to judge tokens of ``tsa`` as of ``now``: its certificate, the CA
        certificates and the CRLs published now (made first if due)."""
        certs = [tsa.identity.cert_der, *tsa.identity.chain_der]
        crls: list[bytes] = []
        try:
            self.pki.ensure_current_crls(now)
            published = self.pki.published()
            if published is not None:
                crls = [published.issuing_crl.read_bytes(), published.root_crl.read_bytes()]
        except (SealServiceError, OSError) as exc:
            log.warning("LTV_EVIDENCE_CRLS: published CRLs not read (%s); signing fresh ones", exc)
        if not crls:
            crls = [self.pki.crl_der("issuing", now=now), self.pki.crl_der("root", now=now)]
        return json.dumps(
            {"certs": [_b64(c) for c in certs], "crls": [_b64(c) for c in crls]}, sort_keys=True
        ).encode()

    def run_round(self) -> AnchorRound:
        from signer._ltv import _home_lock

        result = AnchorRound()
        with _home_lock(self.home, ".ledger-anchor.lock"):
            now = self.clock()
            try:
                result.stamped = self.stamp_due(now)
            except SealServiceError as exc:
                log.error("%s: checkpoint not stamped: %s", exc.code, exc)
                result.failed.append(exc.code)
            self.renew_due(now, result)
        return result

    def stamp_due(self, now: datetime) -> int | None:
        """Step 1: the first round after 00:00 Asia/Shanghai stamps the latest checkpoint (signed first if
        the tree grew). Returns the size stamped, or None."""
        stamps = self.ledger.stamps()
        firsts = [s for s in stamps if s.kind == STAMP]
        if firsts and max(s.gen_time for s in firsts) >= shanghai_midnight(now):
            return None
        if self.ledger.size() == 0:
            return None
        cp = self.ledger.checkpoint() if self.ledger.signer is not None else self.ledger.latest_checkpoint()
        if cp is None or any(s.size == cp.size for s in firsts):
            return None
        tsa = self._tsa()
        facts = request_token(tsa, stamp_imprint(cp.note))
        try:
            self.ledger.add_stamp(
                cp.size,
                facts.tst_der,
                stamp_imprint(cp.note),
                gen_time=facts.gen_time,
                tsa_not_after=facts.tsa_not_after,
                validation=self.validation_data(tsa, now),
            )
        except Conflict:
            return None  # another worker stamped it
        log.info(
            "checkpoint %d stamped (evidence record), TSA certificate until %s", cp.size, facts.tsa_not_after
        )
        return cp.size

    def renew_due(self, now: datetime, result: AnchorRound) -> None:
        """Step 2: a renewal link for each chain whose newest token's TSA certificate ends within the
        renewal window, by the current TSA if it outlives that certificate."""
        due = [e for e in self.ledger.chain_ends() if e.tsa_not_after < now + self.policy.renew_before]
        if not due:
            return
        cp = self.ledger.latest_checkpoint()
        if cp is None:
            return
        tsa = self._tsa()
        tsa_until = x509.load_der_x509_certificate(tsa.identity.cert_der).not_valid_after_utc
        validation: bytes | None = None
        for end in due:
            if tsa_until <= end.tsa_not_after:
                result.skipped_no_successor += 1
                continue
            if validation is None:
                validation = self.validation_data(tsa, now)
            imprint = renewal_imprint(end.tst_der, cp.note)
            try:
                facts = request_token(tsa, imprint)
                link = self.ledger.add_stamp(
                    cp.size,
                    facts.tst_der,
                    imprint,
                    gen_time=facts.gen_time,
                    tsa_not_after=facts.tsa_not_after,
                    validation=validation,
                    prev=end,
                )
            except Conflict:
                continue  # renewed by another worker meanwhile
            except SealServiceError as exc:
                log.error("%s: evidence chain link %d not renewed: %s", exc.code, end.id, exc)
                result.failed.append(exc.code)
                continue
            result.renewed.append(link.id)
        if result.skipped_no_successor:
            log.error(
                "LTV_NO_SUCCESSOR_TSA: %d evidence chain(s) due for renewal, but the county TSA's "
                "certificate (until %s) does not outlive theirs",
                result.skipped_no_successor,
                tsa_until.isoformat(),
            )


# ---------------------------------------------------------------------------------------------------------
# the evidence record of one entry


def _link_json(link: CheckpointStamp, note: str) -> dict[str, Any]:
    try:
        validation = json.loads(link.validation.decode("utf-8")) if link.validation else {}
    except ValueError:
        validation = {}
    return {
        "kind": link.kind,
        "checkpoint": note,
        "token": _b64(link.tst_der),
        "certs": list(validation.get("certs") or []),
        "crls": list(validation.get("crls") or []),
    }


def evidence_record(ledger: Ledger, index: int) -> dict[str, Any]:
    """The evidence record of entry ``index`` (format ``yizhang-evidence-record/1``,
    docs/ledger-format.md): its tlog-proof against the first stamped checkpoint containing it, and the
    chain of links from that stamp to the newest renewal. ``NotFound`` (``LEDGER_EVIDENCE_PENDING``) when
    no stamped checkpoint contains the entry yet."""
    from ledger import Receipt

    size = ledger.size()
    if not 0 <= index < size:
        raise NotFound(
            "LEDGER_INDEX_OUT_OF_RANGE", f"no ledger entry {index} (size {size})", "台账中没有该条目"
        )
    first = ledger.stamp_covering(index)
    if first is None:
        raise NotFound(
            "LEDGER_EVIDENCE_PENDING",
            f"no timestamped checkpoint contains entry {index} yet (stamped daily by the service)",
            "尚无带时间戳的检查点包含该条目",
        )
    with ledger.read_engine.connect() as c:
        chain = ledger.evidence_chain(first, c)
        notes = {}
        for link in chain:
            cp = ledger.checkpoint_of_size(link.size, c)
            if cp is None:
                raise NotFound("LEDGER_CHECKPOINT_MISSING", f"no checkpoint of size {link.size}")
            notes[link.size] = cp.note
        entry = ledger.get(index, c)
        proof = ledger.inclusion_proof(index, first.size, c)
        stamped = ledger.checkpoint_of_size(first.size, c)
    assert stamped is not None
    receipt = Receipt(index, entry.encoded, entry.entry_hash, tuple(proof), stamped)
    return {
        "format": EVIDENCE_FORMAT,
        "index": index,
        "proof": receipt.to_text(),
        "chain": [_link_json(link, notes[link.size]) for link in chain],
    }


def evidence_record_text(ledger: Ledger, index: int) -> str:
    return json.dumps(evidence_record(ledger, index), ensure_ascii=False, indent=1) + "\n"


# ---------------------------------------------------------------------------------------------------------
# health


@dataclass(frozen=True)
class EvidenceHealth:
    latest_stamp: datetime | None
    chains_due: int
    earliest_expiry: datetime | None
    problems: tuple[Any, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "latest_stamp": self.latest_stamp.isoformat() if self.latest_stamp else None,
            "chains_due": self.chains_due,
            "earliest_expiry": self.earliest_expiry.isoformat() if self.earliest_expiry else None,
        }


#: A checkpoint signed this long ago and larger than every stamped one: stamping is not happening.
UNSTAMPED_AFTER = timedelta(days=2)


def evidence_health(
    engine: Engine, now: datetime, renew_before: timedelta, tsa_until: datetime | None
) -> EvidenceHealth:
    """From the database alone:

    - ``LTV_EVIDENCE_UNSTAMPED``: a checkpoint signed more than two days ago is larger than every stamped
      one (the daily stamping is not running, or the TSA refuses);
    - ``LTV_EVIDENCE_RENEWAL_OVERDUE``: a chain's newest token ends within half the renewal window and was
      not renewed; ``LTV_NO_SUCCESSOR_TSA`` at once when the current TSA does not outlive it.
    """
    from ledger import stamp_facts
    from signer._ltv import LtvProblem, _aware

    problems: list[Any] = []
    try:
        facts = stamp_facts(engine, now - UNSTAMPED_AFTER)
    except SQLAlchemyError:
        return EvidenceHealth(None, 0, None, ())
    latest_stamp, stamped, ends = facts.latest_stamp, facts.stamped_size, facts.chain_end_expiries
    latest_stamp = _aware(latest_stamp) if latest_stamp is not None else None
    old = facts.old_checkpoint
    if old is not None and (stamped is None or old[0] > stamped):
        problems.append(
            LtvProblem(
                "LTV_EVIDENCE_UNSTAMPED",
                "checkpoints are not being timestamped (the untouched originals lose their proof)",
                {"checkpoint_size": old[0], "signed_at": _aware(old[1]).isoformat()},
            )
        )
    expiries = sorted(_aware(t) for t in ends)
    due = [t for t in expiries if t < now + renew_before]
    earliest = expiries[0] if expiries else None
    if due:
        no_successor = tsa_until is not None and tsa_until <= due[0]
        late = due[0] - now < renew_before / 2
        if no_successor or late:
            problems.append(
                LtvProblem(
                    "LTV_NO_SUCCESSOR_TSA" if no_successor else "LTV_EVIDENCE_RENEWAL_OVERDUE",
                    "evidence chains of the ledger need a renewal timestamp before their TSA certificate "
                    "expires",
                    {"chains": len(due), "earliest_expiry": due[0].isoformat()},
                )
            )
    return EvidenceHealth(latest_stamp, len(due), earliest, tuple(problems))


__all__ = [
    "EVIDENCE_FORMAT",
    "RENEWAL",
    "STAMP",
    "AnchorPolicy",
    "AnchorRound",
    "EvidenceHealth",
    "LedgerAnchor",
    "evidence_health",
    "evidence_record",
    "evidence_record_text",
    "request_token",
    "shanghai_midnight",
]
