"""Long-term validation with proofs of existence (ETSI EN 319 102-1 §5.6.3, PAdES-LTA; issue 19 item 4).

``_verify_core`` checks every signature and document timestamp on its own: a signature at the time its
signature timestamp proves, a document timestamp *now*. Once a TSA certificate has expired, "now" is too
late for the timestamps it made. What still proves them is a later timestamp: a trusted document timestamp
covering a revision proves that everything in it -- earlier timestamps, and the chain and CRLs in the DSS --
existed at its genTime. This pass, run after the others (``prove_existence``):

1. Archive timestamps, last first. The last one is judged now (as before). Each earlier one that is not
   trusted now is judged again at the proof-of-existence time (POE) the nearest later trusted document
   timestamp gives; trusted there, it becomes a proof for the ones before it (``ARCHIVE_TIMESTAMP_POE``,
   information). Its CRLs are the ones the renewal put in the DSS (current at the renewal) and the trust
   list's.
2. Signature timestamps. ``_verify_core`` judges a signature timestamp's TSA at its own genTime; that holds
   only while its certificate is valid now, or when a trusted document timestamp proves the signature
   existed before the certificate expired. Otherwise ``TIMESTAMP_EXPIRED_NO_POE`` (INDETERMINATE,
   OUT_OF_BOUNDS_NO_POE): the archive timestamps were not renewed in time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from verifier._model import Severity
from verifier._reasons import reason


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _sig_tst_cert_not_after(emb: Any) -> datetime | None:
    """notAfter of the certificate that signed the signature timestamp (unverified: only used to ask
    whether a proof of existence is needed)."""
    try:
        for attr in emb.signer_info["unsigned_attrs"] or []:
            if attr["type"].native != "signature_time_stamp_token":
                continue
            sd = attr["values"][0]["content"]
            sid = sd["signer_infos"][0]["sid"]
            serial = sid.chosen["serial_number"].native
            for c in sd["certificates"] or []:
                if c.name == "certificate" and c.chosen.serial_number == serial:
                    return _aware(c.chosen.not_valid_after)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError):
        return None
    return None


def _trusted_timestamp(w: Any) -> bool:
    return (
        w.kind == "doc_timestamp"
        and bool(w.intact and w.crypto_valid)
        and w.signing_time is not None
        and not any(r.severity is Severity.FAIL or r.code == "TIMESTAMP_UNTRUSTED" for r in w.reasons)
    )


def _revalidate_at(w: Any, emb: Any, reader: Any, trust: Any, poe: datetime) -> bool:
    from pyhanko.sign.validation import validate_pdf_timestamp

    from verifier._core import _embedded_revinfo, _validation_context, strict_diff_policy

    certs, crls, _ocsps = _embedded_revinfo(emb, reader)
    vc = _validation_context(trust, certs, list(trust.crls) + crls, poe)
    try:
        status = validate_pdf_timestamp(emb, validation_context=vc, diff_policy=strict_diff_policy())
    except Exception:  # noqa: BLE001 - the first pass reported what is wrong with it
        return False
    return bool(status.intact and status.valid and status.trusted)


def prove_existence(works: list[tuple[Any, Any]], reader: Any, trust: Any, now: datetime) -> None:
    """Steps 1 and 2 above, on ``_verify_core``'s per-signature scratch (``(_SigWork, emb)`` in revision
    order); adjusts their reasons in place."""
    # 1. archive timestamps, last first
    poe: tuple[datetime, str] | None = None  # (genTime, name) of the nearest later trusted timestamp
    proofs: list[tuple[datetime, int]] = []  # (genTime, signed revision) of every trusted timestamp
    for w, emb in reversed(works):
        if emb is None or w.kind != "doc_timestamp":
            continue
        untrusted = [r for r in w.reasons if r.code == "TIMESTAMP_UNTRUSTED"]
        if (
            untrusted
            and poe is not None
            and w.intact
            and w.crypto_valid
            and len(untrusted) == len(w.reasons)
            and _revalidate_at(w, emb, reader, trust, poe[0])
        ):
            w.reasons = [
                reason(
                    "ARCHIVE_TIMESTAMP_POE",
                    signature=w.name,
                    detail=f"judged at {poe[0].isoformat()}, proven by {poe[1]}",
                )
            ]
            w.trusted = True
        if _trusted_timestamp(w):
            at = _aware(w.signing_time)
            poe = (at, w.name)
            proofs.append((at, w.signed_revision if w.signed_revision is not None else -1))

    # 2. signature timestamps whose TSA certificate has expired
    for w, emb in works:
        if emb is None or w.kind != "signature" or w.signing_time is None:
            continue
        tsa_until = _sig_tst_cert_not_after(emb)
        if tsa_until is None or now <= tsa_until:
            continue
        rev = w.signed_revision if w.signed_revision is not None else -1
        if any(t <= tsa_until and r >= rev for t, r in proofs):
            continue
        w.reasons.append(
            reason(
                "TIMESTAMP_EXPIRED_NO_POE",
                signature=w.name,
                detail=f"signature timestamp certificate expired {tsa_until.isoformat()}",
            )
        )
