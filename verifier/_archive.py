"""The untouched original over time: the ledger's evidence record as proof of existence (issue 19 item 4b).

A holder keeps the file as it was sealed. Once its TSA certificates expire, nothing inside it proves the
signature was made while they were valid (``TIMESTAMP_EXPIRED_NO_POE``). The county's ledger can: the file's
SHA-256 is its ``SEAL_SIGNED`` entry's digest, the entry is in a checkpoint, the checkpoint was timestamped
by the county TSA, and that timestamp was renewed before its own certificate expired -- an RFC 4998-like
ArchiveTimeStampChain (docs/ledger-format.md, "Evidence records"; record format
``yizhang-evidence-record/1``). Implemented here from that text, independently of the code that builds the
record (``signer._ledger_anchor``): a verifier should not trust the code of the thing it verifies.

:func:`verify_record` (plan):

1. the receipt (tlog-proof): the checkpoint is signed by the county's log key, the entry is included;
2. link 0 (``STAMP``): its token's imprint is SHA-256(the receipt's signed checkpoint note)
   (``EVIDENCE_CHECKPOINT_MISMATCH``);
3. link i > 0 (``RENEWAL``): imprint = SHA-256(token of link i-1 ‖ the link's signed checkpoint note), its
   genTime not before the previous one's (``EVIDENCE_CHAIN_BROKEN``);
4. each token is judged at the genTime of the next link (the last one *now*): a valid RFC 3161 token
   (``EVIDENCE_TOKEN_INVALID``), its TSA certificate inside its validity then (``EVIDENCE_LINK_EXPIRED``),
   chained to a trusted root (``EVIDENCE_TSA_UNTRUSTED``) and not revoked then according to the CRLs of the
   next link, its own and the trust list's (``EVIDENCE_TSA_REVOKED``);
5. all good: the proof of existence is link 0's genTime.

:func:`prove_by_ledger` then applies it to a document (``verify_document`` step 7b): only when the file's
own SHA-256 is the entry's digest (the untouched original; an extended copy proves itself with its archive
timestamps), the document's signatures and timestamps are judged again as of that time
(``EVIDENCE_RECORD_POE``): the seal at its signature timestamp, the timestamps' certificates and
revocation at the proof of existence, exactly as a later archive timestamp inside the PDF would make them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from verifier._evidence import (
    Evidence,
    LedgerAnswer,
    LedgerQuery,
    LedgerReceipt,
    entry_payload,
    leaf_hash,
    root_from_inclusion_proof,
    verify_checkpoint,
)
from verifier._model import Reason, Severity, VerificationReport
from verifier._reasons import reason
from verifier._trust import TrustList

EVIDENCE_RECORD_FORMAT = "yizhang-evidence-record/1"
#: Links a record may carry (one renewal every ~2 years: a century is 50).
MAX_LINKS = 64
#: Reasons of a first pass that a proof of existence can resolve.
TIME_BOUND = frozenset({"TIMESTAMP_EXPIRED_NO_POE", "TIMESTAMP_UNTRUSTED", "CERT_OUT_OF_VALIDITY"})


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ArchiveLink:
    kind: str  # STAMP | RENEWAL
    checkpoint: bytes  # the signed checkpoint note this link covers
    token: bytes  # RFC 3161 TimeStampToken (ContentInfo), DER
    certs: tuple[bytes, ...]
    crls: tuple[bytes, ...]


@dataclass(frozen=True)
class EvidenceRecord:
    """An entry's tlog-proof against a timestamped checkpoint, and the chain of timestamps after it."""

    receipt: LedgerReceipt
    links: tuple[ArchiveLink, ...]

    @staticmethod
    def looks_like(data: bytes) -> bool:
        return data.lstrip()[:1] == b"{" and EVIDENCE_RECORD_FORMAT.encode() in data[:4096]

    @classmethod
    def parse(cls, data: bytes) -> EvidenceRecord:
        """Raises ValueError on anything but a well-formed ``yizhang-evidence-record/1``."""
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(obj, dict) or obj.get("format") != EVIDENCE_RECORD_FORMAT:
            raise ValueError(f"not a {EVIDENCE_RECORD_FORMAT} record")
        proof, chain = obj.get("proof"), obj.get("chain")
        if not isinstance(proof, str) or not isinstance(chain, list) or not 1 <= len(chain) <= MAX_LINKS:
            raise ValueError("a record needs its proof and 1..64 links")

        def blobs(value: Any, what: str) -> tuple[bytes, ...]:
            if not isinstance(value, list) or len(value) > 16:
                raise ValueError(f"{what} must be a list of at most 16")
            try:
                return tuple(base64.b64decode(str(v), validate=True) for v in value)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"{what}: not base64") from exc

        links = []
        for i, link in enumerate(chain):
            if not isinstance(link, dict):
                raise ValueError(f"link {i} is not an object")
            kind = link.get("kind")
            if kind != ("STAMP" if i == 0 else "RENEWAL"):
                raise ValueError(f"link {i} must be a {'STAMP' if i == 0 else 'RENEWAL'}")
            note = link.get("checkpoint")
            if not isinstance(note, str):
                raise ValueError(f"link {i} names no checkpoint")
            (token,) = blobs([link.get("token")], f"link {i} token")
            links.append(
                ArchiveLink(
                    kind=str(kind),
                    checkpoint=note.encode("utf-8"),
                    token=token,
                    certs=blobs(link.get("certs", []), f"link {i} certs"),
                    crls=blobs(link.get("crls", []), f"link {i} crls"),
                )
            )
        return cls(receipt=LedgerReceipt.from_text(proof), links=tuple(links))


@dataclass(frozen=True)
class ArchiveVerdict:
    poe: datetime | None  # the proven time of existence of the entry; None when not proven
    reasons: tuple[Reason, ...]
    links: int = 0


@dataclass(frozen=True)
class _Token:
    signed_data: Any
    imprint: bytes
    gen_time: datetime


def _parse_token(der: bytes) -> _Token:
    from asn1crypto import cms, tsp

    info = cms.ContentInfo.load(der)
    if info["content_type"].native != "signed_data":
        raise ValueError("not CMS SignedData")
    sd = info["content"]
    tst = sd["encap_content_info"]["content"].parsed
    if not isinstance(tst, tsp.TSTInfo):
        raise ValueError("does not encapsulate a TSTInfo")
    if tst["message_imprint"]["hash_algorithm"]["algorithm"].native != "sha256":
        raise ValueError("imprint is not SHA-256")
    return _Token(sd, bytes(tst["message_imprint"]["hashed_message"].native), _aware(tst["gen_time"].native))


def _run(coro: Any) -> Any:
    """An awaitable from synchronous code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _judge_token(
    token: _Token, expected: bytes, at: datetime, trust: TrustList, certs: list[bytes], crls: list[bytes]
) -> Reason | None:
    """Step 4 for one token at ``at``; None when it holds."""
    from cryptography import x509
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data

    from verifier._core import _issuer_of, _validation_context
    from verifier._trust import check_revocation

    vc = _validation_context(trust, certs, crls, at)
    try:
        status = _run(validate_tst_signed_data(token.signed_data, vc, lambda _alg: expected))
    except Exception as exc:  # noqa: BLE001 - malformed CMS of any kind is an invalid token
        return reason("EVIDENCE_TOKEN_INVALID", detail=f"{type(exc).__name__}: {exc}"[:300])
    if not (status.get("intact") and status.get("valid")):
        return reason("EVIDENCE_TOKEN_INVALID", detail="the token's signature does not verify")
    cert = status.get("signing_cert")
    if cert is None:
        return reason("EVIDENCE_TSA_UNTRUSTED", detail="the token names no certificate")
    not_after = _aware(cert.not_valid_after)
    if at > not_after:
        return reason(
            "EVIDENCE_LINK_EXPIRED",
            detail=f"token of {token.gen_time.isoformat()}: certificate expired {not_after.isoformat()}, "
            f"judged at {at.isoformat()}",
        )
    if status.get("trust_problem_indic") is not None or status.get("validation_path") is None:
        return reason("EVIDENCE_TSA_UNTRUSTED", detail=str(status.get("trust_problem_indic")))
    cert_der = cert.dump()
    issuer = _issuer_of(cert_der, list(trust.intermediates) + certs + list(trust.roots))
    if issuer is None:
        return reason("EVIDENCE_TSA_UNTRUSTED", detail="the TSA certificate's issuer is not known")
    verdict = check_revocation(cert_der, issuer, crls, at, time_proven=True)
    if verdict.status in ("revoked_before", "revoked_no_poe", "held_before", "held_no_poe"):
        return reason(
            "EVIDENCE_TSA_REVOKED",
            detail=f"TSA certificate {x509.load_der_x509_certificate(cert_der).serial_number:x} revoked "
            f"{verdict.revoked_at}, judged at {at.isoformat()}",
        )
    if verdict.status == "unknown":
        return reason("EVIDENCE_TSA_UNTRUSTED", detail=f"revocation unknown at {at.isoformat()}")
    return None


def verify_record(
    record: EvidenceRecord,
    trust: TrustList,
    log_public_key: bytes,
    log_key_name: str | None,
    now: datetime,
) -> ArchiveVerdict:
    """Steps 1-5 of the module's plan."""
    # 1. the receipt against the stamped checkpoint
    rec = record.receipt
    try:
        _origin, size, root = verify_checkpoint(rec.checkpoint, log_public_key, log_key_name)
    except (ValueError, UnicodeDecodeError) as exc:
        return ArchiveVerdict(None, (reason("CHECKPOINT_INVALID", detail=f"evidence record: {exc}"),))
    try:
        included = root_from_inclusion_proof(rec.index, size, leaf_hash(rec.entry), rec.proof) == root
    except ValueError:
        included = False
    if not included:
        return ArchiveVerdict(None, (reason("LEDGER_PROOF_INVALID", detail="evidence record's proof"),))
    # parse every token first: each is judged at the next one's time
    tokens: list[_Token] = []
    for i, link in enumerate(record.links):
        try:
            tokens.append(_parse_token(link.token))
        except (ValueError, TypeError, KeyError) as exc:
            return ArchiveVerdict(None, (reason("EVIDENCE_TOKEN_INVALID", detail=f"link {i}: {exc}"),))
    # 2. the first link covers the receipt's checkpoint
    expected = [hashlib.sha256(rec.checkpoint).digest()]
    if tokens[0].imprint != expected[0]:
        return ArchiveVerdict(
            None,
            (
                reason(
                    "EVIDENCE_CHECKPOINT_MISMATCH",
                    detail=f"the stamp covers {tokens[0].imprint.hex()[:16]}…, the checkpoint of size "
                    f"{size} hashes to {expected[0].hex()[:16]}…",
                ),
            ),
        )
    # 3. each renewal covers the link before it
    for i in range(1, len(tokens)):
        want = hashlib.sha256(record.links[i - 1].token + record.links[i].checkpoint).digest()
        expected.append(want)
        if tokens[i].imprint != want:
            return ArchiveVerdict(
                None, (reason("EVIDENCE_CHAIN_BROKEN", detail=f"link {i} does not cover link {i - 1}"),)
            )
        if tokens[i].gen_time < tokens[i - 1].gen_time:
            return ArchiveVerdict(
                None, (reason("EVIDENCE_CHAIN_BROKEN", detail=f"link {i} is older than link {i - 1}"),)
            )
    # 4. each token at the next one's genTime, the last now
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        at = now if last else tokens[i + 1].gen_time
        link = record.links[i]
        later = record.links[i + 1] if not last else None
        certs = list(link.certs) + (list(later.certs) if later else [])
        crls = list(trust.crls) + (list(later.crls) if later else []) + list(link.crls)
        problem = _judge_token(token, expected[i], at, trust, certs, crls)
        if problem is not None:
            detail = f"link {i} ({link.kind}): {problem.detail or ''}"
            return ArchiveVerdict(None, (reason(problem.code, detail=detail),), len(tokens))
    # 5
    return ArchiveVerdict(tokens[0].gen_time, (), len(tokens))


def _entry_digest(entry: bytes) -> str | None:
    obj = entry_payload(entry)
    body = obj.get("body") if isinstance(obj, dict) else None
    value = body.get("document_sha256") if isinstance(body, dict) else None
    return str(value) if value is not None else None


def _needs_poe(report: VerificationReport) -> bool:
    """A first pass whose only shortcomings are time-bound (expired certificates without a later proof)."""
    codes = [r for s in report.signatures for r in s.reasons] + list(report.reasons)
    if any(r.severity is Severity.FAIL for r in codes):
        return False
    return any(r.code in TIME_BOUND and r.severity is Severity.INDETERMINATE for r in codes)


def prove_by_ledger(
    pdf: bytes,
    report: VerificationReport,
    evidence: Evidence,
    trust: TrustList,
    now: datetime,
    rerun: Callable[[datetime], VerificationReport],
    query: LedgerQuery,
) -> tuple[VerificationReport, list[Reason]]:
    """``verify_document`` step 7b: the report judged at the ledger's proof of existence, when the file is
    the ledger's and a record proves it; else the report as it was (with the record's problems, if one was
    given and fails)."""
    record = evidence.archive
    needed = _needs_poe(report)
    if record is None and (not needed or evidence.archive_lookup is None or evidence.ledger_lookup is None):
        return report, []
    if evidence.log_public_key is None:
        return report, []
    if record is None:  # in the county: the entry the ledger has for this document, and its record
        assert evidence.ledger_lookup is not None and evidence.archive_lookup is not None
        try:
            finding = evidence.ledger_lookup(query)
            if finding is None or finding.answer is not LedgerAnswer.FOUND or finding.index is None:
                return report, []
            record = evidence.archive_lookup(finding.index)
        except Exception:  # noqa: BLE001 - an unreadable database leaves the report as it is
            return report, []
        if record is None:
            return report, []
    digest = _entry_digest(record.receipt.entry)
    if digest is None or digest != hashlib.sha256(pdf).hexdigest():
        # an extended copy, or another document (its receipt check says LEDGER_ENTRY_MISMATCH)
        if digest is not None and evidence.archive is not None and digest in query.revision_sha256:
            return report, [reason("EVIDENCE_RECORD_NOT_APPLIED", detail=f"entry {record.receipt.index}")]
        return report, []
    verdict = verify_record(record, trust, evidence.log_public_key, evidence.log_key_name, now)
    if verdict.poe is None:
        return report, list(verdict.reasons)
    detail = (
        f"ledger entry {record.receipt.index} in a checkpoint timestamped {verdict.poe.isoformat()}, "
        f"{verdict.links - 1} renewal(s)"
    )
    if not needed or verdict.poe >= now:
        return report, [reason("EVIDENCE_RECORD_POE", detail=detail)]
    poe = verdict.poe.isoformat()
    return rerun(verdict.poe), [reason("EVIDENCE_RECORD_POE", detail=f"judged as of {poe}: {detail}")]
