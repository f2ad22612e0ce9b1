"""``verify_document``: one verdict for a sealed PDF, stricter than pyHanko's own validator.

Plan:

1–7. Document checks, integrity (pyHanko + endesive), strict difference analysis, trust and revocation at
     the proven signing time: ``verifier._core.run_checks`` (its docstring numbers them), run in a
     forked child bounded by ``VerifyLimits`` (``verifier._sandbox``) because the bytes are hostile.
8.   Evidence, in this process (it may use a database or a network lookup the child must not inherit):
     ledger receipt + inclusion proof against a signed checkpoint, the decision's current status, the
     delegation at the signing time. Each input is optional; what was not checked says so (INFO). A
     ledger that was supplied judges: no entry for the document fails (LEDGER_ENTRY_MISSING), an entry
     newer than the latest checkpoint at hand is INDETERMINATE (LEDGER_ENTRY_PENDING). The ledger lookup
     gets the primary seal, its binding and the digest of every revision prefix to find the entry by.
     Whose evidence: the county that issued the primary seal (``EvidenceRouter``: this county or one of
     its trust store, whose bundle past its nextUpdate adds TRUST_BUNDLE_STALE).
     8a. Before that, the untouched original whose certificates expired (``verifier._archive``): when
     the first pass falls short only for time (expired TSA certificates, no later archive timestamp) and
     an evidence record of the ledger proves the file existed while they were valid (given with the
     document, or in the county read from the database), steps 1–7 run again as of that time.
9.   Verdict: worst reason wins; untrusted-but-intact is INDETERMINATE, never TOTAL_PASSED.
"""

from __future__ import annotations

from datetime import datetime

from verifier._archive import prove_by_ledger
from verifier._core import primary_seal, run_checks, with_reasons
from verifier._counties import EvidenceRouter
from verifier._evidence import Evidence, LedgerQuery, check_evidence
from verifier._model import Reason, VerificationReport, VerifyLimits
from verifier._trust import TrustList


def verify_document(
    unverified_pdf: bytes,
    trust: TrustList,
    *,
    now: datetime,
    limits: VerifyLimits | None = None,
    evidence: Evidence | EvidenceRouter | None = None,
) -> VerificationReport:
    """Verify every seal in ``unverified_pdf``; never raises on bad input, always returns a report.

    ``evidence`` may be an :class:`EvidenceRouter` (this county and the counties of its trust store): step 8
    then uses the evidence of the county whose CA issued the primary seal."""
    limits = limits or VerifyLimits()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # 1–7
    report = _checks(unverified_pdf, trust, now, limits)
    if report.unreadable or not report.signatures:
        return report
    # 8
    first = primary_seal(report.signatures)
    if first is None:
        return report
    extra: list[Reason] = []
    if isinstance(evidence, EvidenceRouter):  # the county that issued the seal: its bundle, fresh or not
        evidence, extra = evidence.for_seal(first.seal, now)
    evidence = evidence or Evidence()
    # 8a. the untouched original after its certificates expired: the ledger's evidence record
    report, archived = prove_by_ledger(
        unverified_pdf,
        report,
        evidence,
        trust,
        now,
        lambda at: _checks(unverified_pdf, trust, at, limits),
        LedgerQuery(first.binding, first.seal, report.revision_sha256),
    )
    first = primary_seal(report.signatures) or first
    reasons, facts = check_evidence(
        evidence, first.binding, first.seal, first.signing_time, now, report.revision_sha256
    )
    # 9
    return with_reasons(report, extra + archived + reasons, **facts)


def _checks(
    unverified_pdf: bytes, trust: TrustList, now: datetime, limits: VerifyLimits
) -> VerificationReport:
    """Steps 1–7, sandboxed as ``limits`` say."""
    if limits.sandbox:
        from verifier._sandbox import default_pool, run_sandboxed

        if limits.sandbox_mode == "fork":
            return run_sandboxed(unverified_pdf, trust, now, limits)
        return default_pool().run(unverified_pdf, trust, now, limits)
    return run_checks(unverified_pdf, trust, now, limits)
