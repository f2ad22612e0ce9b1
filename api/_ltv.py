"""Long-term validation in the running service (issue 19, item 4): the renewal loop of ``yizhang serve``,
``yizhang ltv renew``, and what ``/readyz`` and ``/metrics`` say about it. The work is ``signer._ltv`` and,
for the ledger's evidence records of untouched originals, ``signer._ledger_anchor``."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from api._services import Services

if TYPE_CHECKING:
    from signer import LedgerAnchor, LtvHealth, LtvRenewer, LtvRound

log = logging.getLogger("yizhang.ltv")


def _now() -> datetime:
    return datetime.now(UTC)


def renewer_for(services: Services) -> LtvRenewer:
    from signer import LtvPolicy, LtvRenewer

    return LtvRenewer(
        services.engine,
        services.need_keystore(),
        services.need_county_pki(),
        LtvPolicy.from_settings(services.settings),
        home=services.settings.home_dir,
        sealer=services.signer,
    )


def renew_round(
    services: Services, due_within: timedelta | None = None, limit: int | None = None
) -> LtvRound:
    """One rotation-and-renewal round; after a rotation the ``/v1/tsa`` route's TSA is rebuilt too."""
    result = renewer_for(services).run_round(due_within=due_within, limit=limit)
    tsa = services.wired.tsa
    if tsa is not None and services.signer is not None:  # the container's cache
        from signer import tsa_identity_row

        row = tsa_identity_row(services.engine)
        if row is not None and tsa.identity.cert_der != row[1]:
            services.wired.tsa = None  # rebuilt from the signer on next use
    return result


def anchor_for(services: Services) -> LedgerAnchor:
    """The ledger's evidence chains (issue 19 item 4b): daily checkpoint stamps and their renewals."""
    from signer import AnchorPolicy, LedgerAnchor

    return LedgerAnchor(
        services.need_ledger(),
        services.need_keystore(),
        services.need_county_pki(),
        AnchorPolicy.from_settings(services.settings),
        home=services.settings.home_dir,
    )


def health(services: Services, now: datetime | None = None) -> LtvHealth:
    from signer import LtvPolicy, ltv_health

    token_ok = services.keystore is not None and services.keystore.unavailable is None
    return ltv_health(
        services.engine, now or _now(), LtvPolicy.from_settings(services.settings), token_ok=token_ok
    )


def metrics_text(services: Services) -> bytes:
    """Prometheus gauges, computed at scrape time from the database (the same for every worker)."""
    try:
        h = health(services)
    except Exception:  # noqa: BLE001 - no sig_documents table (a deployment without sealing): no gauges
        return b""
    lines = [
        "# HELP yizhang_ltv_tsa_expiry_seconds seconds until the county TSA certificate expires",
        "# TYPE yizhang_ltv_tsa_expiry_seconds gauge",
    ]
    if h.tsa_not_after is not None:
        lines.append(f"yizhang_ltv_tsa_expiry_seconds {(h.tsa_not_after - h.checked_at).total_seconds():.0f}")
    lines += [
        "# HELP yizhang_ltv_archive_earliest_expiry_seconds seconds until the earliest archive timestamp "
        "of a stored document stops being verifiable",
        "# TYPE yizhang_ltv_archive_earliest_expiry_seconds gauge",
    ]
    if h.earliest_archive_until is not None:
        left = (h.earliest_archive_until - h.checked_at).total_seconds()
        lines.append(f"yizhang_ltv_archive_earliest_expiry_seconds {left:.0f}")
    lines += [
        "# HELP yizhang_ltv_documents_due stored documents inside the renewal window",
        "# TYPE yizhang_ltv_documents_due gauge",
        f"yizhang_ltv_documents_due {h.documents_due}",
    ]
    ev = h.evidence
    lines += [
        "# HELP yizhang_ltv_evidence_chains_due evidence chains of the ledger inside the renewal window",
        "# TYPE yizhang_ltv_evidence_chains_due gauge",
        f"yizhang_ltv_evidence_chains_due {int(ev.get('chains_due') or 0)}",
        "# HELP yizhang_ltv_evidence_stamp_age_seconds seconds since the newest checkpoint timestamp",
        "# TYPE yizhang_ltv_evidence_stamp_age_seconds gauge",
    ]
    if ev.get("latest_stamp"):
        age = (h.checked_at - datetime.fromisoformat(ev["latest_stamp"])).total_seconds()
        lines.append(f"yizhang_ltv_evidence_stamp_age_seconds {age:.0f}")
    lines += [
        "# HELP yizhang_ltv_problem a long-term validation problem (1 while it lasts), by code",
        "# TYPE yizhang_ltv_problem gauge",
    ]
    lines += [f'yizhang_ltv_problem{{code="{p.code}"}} 1' for p in h.problems]
    return ("\n".join(lines) + "\n").encode()


async def renew_regularly(services: Services, interval_s: float | None = None) -> None:
    """``yizhang serve``: a round at start, then every ``LTV_INTERVAL_S`` -- TSA rotation and document
    renewal, then the ledger's evidence chains (the day's checkpoint stamp, renewals due; issue 19 item
    4b); problems logged with their code each round. Rounds of several workers do not collide (file locks
    around rotation and stamping, compare-and-set on each document, unique links in the ledger)."""
    from signer import LTV_INTERVAL_S

    def round_() -> None:
        if services.keystore is not None and services.county_pki is not None:
            result = renew_round(services)
            if result.rotated_to or result.renewed or result.failed:
                log.info("long-term validation round: %s", result.to_dict())
            if services.ledger is not None and services.ledger.signer is not None:
                # after the rotation above: renewal links are made by the current TSA
                try:
                    anchored = anchor_for(services).run_round()
                except Exception as exc:  # noqa: BLE001 - logged by code; health reports what it leaves
                    log.error("LTV_EVIDENCE_ROUND_FAILED: %s", getattr(exc, "code", type(exc).__name__))
                else:
                    if anchored.stamped is not None or anchored.renewed or anchored.failed:
                        log.info("ledger evidence round: %s", anchored.to_dict())
        h = health(services)
        for p in h.problems:
            log.error("%s: %s %s", p.code, p.message, p.details)

    while True:
        try:
            await asyncio.to_thread(round_)
        except Exception as exc:  # noqa: BLE001 - logged by code; the next round retries
            log.error("LTV_ROUND_FAILED: %s", getattr(exc, "code", type(exc).__name__))
        await asyncio.sleep(interval_s or LTV_INTERVAL_S)
