"""Other counties' trust: whose evidence judges a document, and whether that county's bundle is current.

A verifier trusts its own county (``TrustList.for_home`` and its own database) and the counties in its trust
store (``yizhang trust add``): each one a signed trust bundle holding that county's roots, CRLs, log key,
latest checkpoint and decision status list. Steps 1-7 of the plan run with every trusted root at once (the
path builder tries each candidate path); step 8 needs the evidence of the county that issued the seal, which
:class:`EvidenceRouter` picks by the seal certificate's authority key identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from verifier._evidence import Evidence
from verifier._model import Reason, SealFacts
from verifier._reasons import reason
from verifier._trust import TrustList


@dataclass(frozen=True)
class ForeignCounty:
    """One county of the trust store, as a verifier uses it."""

    name: str  # the store's name for it (``yizhang trust list``)
    trust: TrustList  # its roots, issuing CA and CRLs
    evidence: Evidence  # its log key, checkpoint, status list
    next_update: datetime | None  # the bundle's own nextUpdate; past it the bundle is stale
    source: str  # where ``yizhang trust refresh`` fetches it again (URL or file)
    created_at: datetime | None = None  # when the county made the bundle
    key_ids: frozenset[str] = field(default=frozenset())
    # how to get a fresh one, when it is not in the trust store (``verify --bundle FILE``): said instead of
    # ``yizhang trust refresh NAME``
    refresh_hint: str | None = None

    def __post_init__(self) -> None:
        if not self.key_ids:
            object.__setattr__(self, "key_ids", self.trust.key_ids())


@dataclass(frozen=True)
class EvidenceRouter:
    """Step 8's evidence for each document: this county's own for its seals, a trusted county's for seals
    its CAs issued; anything else gets this county's (whose ledger then cannot speak for the document)."""

    home: Evidence
    counties: tuple[ForeignCounty, ...] = ()

    def trust_list(self, home: TrustList) -> TrustList:
        """Every trusted root, intermediate and CRL: this county's and the trust store's."""
        out = home
        for county in self.counties:
            out = out.merged(county.trust)
        return out

    def county_of(self, seal: SealFacts | None) -> ForeignCounty | None:
        """The trusted county whose CA issued ``seal``: by the authority key identifier, else (a certificate
        without one) by the issuer's name when exactly one county has a CA of that name."""
        if seal is None or not self.counties:
            return None
        if seal.issuer_key_id:
            for county in self.counties:
                if seal.issuer_key_id in county.key_ids:
                    return county
            return None
        named = [c for c in self.counties if seal.issuer in _subjects(c.trust)]
        return named[0] if len(named) == 1 else None

    def for_seal(self, seal: SealFacts | None, now: datetime) -> tuple[Evidence, list[Reason]]:
        """The evidence for a document whose primary seal is ``seal``, and ``TRUST_BUNDLE_STALE`` when it
        comes from a bundle past its nextUpdate (its CRLs and status list may miss a revocation made since:
        the answer is at best INDETERMINATE, TRY_LATER)."""
        county = self.county_of(seal)
        if county is None:
            return self.home, []
        extra: list[Reason] = []
        if county.next_update is not None and now > county.next_update:
            extra.append(reason("TRUST_BUNDLE_STALE", detail=stale_detail(county, now)))
        return county.evidence, extra


def stale_detail(county: ForeignCounty, now: datetime) -> str:
    """How old, and where a fresh one is: ``<name>: trust bundle N d H h past its nextUpdate …``."""
    assert county.next_update is not None
    late = now - county.next_update
    days, rest = divmod(int(late.total_seconds()), 86400)
    return (
        f"{county.name}: trust bundle {days} d {rest // 3600} h past its nextUpdate "
        f"{county.next_update.isoformat()}"
        + (f" (made {county.created_at.isoformat()})" if county.created_at else "")
        + (
            f"; {county.refresh_hint}"
            if county.refresh_hint
            else f"; refresh it: yizhang trust refresh {county.name} (from {county.source})"
        )
    )


def _subjects(trust: TrustList) -> frozenset[str]:
    from cryptography import x509

    out = set()
    for der in trust.intermediates + trust.roots:
        try:
            out.add(x509.load_der_x509_certificate(der).subject.rfc4514_string())
        except ValueError:
            continue
    return frozenset(out)
