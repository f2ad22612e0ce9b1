"""The FastAPI application: ``create_app(settings)`` builds it; ``app_factory()`` is uvicorn's entry point.

Layers, outermost first: keep-alive recycling (``Connection: close`` every ``keepalive_requests`` answers,
so reconnecting clients spread over the workers), request id / access log / metrics / last-resort 500
(``ObservabilityMiddleware``), body-size limit (FastAPI's ``max_body_size``, checked on Content-Length and
on streamed bytes before the body is read whole), error handlers (one status table, ``api._errors``),
routes (each declares ``require(...)`` or ``public()``, ``api._authz``). The
:class:`~api._services.Services` container is built in the lifespan, once per worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api._authz import TokenBucket
from api._docs import install_docs
from api._errors import install_error_handlers
from api._html_headers import HtmlHeadersMiddleware
from api._limits import BodyLimitMiddleware, ConnectionRecycleMiddleware, TextGuardMiddleware
from api._observability import Metrics, ObservabilityMiddleware
from api._services import Services, build_services
from core.settings import Settings, load_settings

log = logging.getLogger("yizhang.api")

#: Default limit on any request body: JSON and forms. Upload routes set their own (from the settings).
DEFAULT_MAX_BODY = 1024 * 1024
#: Multipart framing and the form fields next to a PDF.
UPLOAD_OVERHEAD = 256 * 1024
#: Routes that take a PDF or a catalog file (exact paths, ``{name}`` one segment): a body that is not JSON
#: gets the PDF limit there instead of the default. JSON gets the default on every route (api/_limits.py).
UPLOAD_PATHS = (
    "/v1/verify",
    "/v1/signing-requests",
    "/v1/signing-requests/batch",
    "/v1/catalogs/{county_code}/import",
    "/verify",
    "/ui/clerk/submit",
    "/v1/attestations",
    "/ui/attest",
)


def upload_limit(settings: Settings) -> int:
    return settings.max_pdf_bytes + UPLOAD_OVERHEAD


def create_app(
    settings: Settings,
    *,
    services_builder: Callable[[Settings], Services] | None = None,
    account_rate: tuple[float, int] | None = None,
    public_rate: tuple[float, int] | None = None,
    webhook_interval_s: float | None = 5.0,
    checkpoint_interval_s: float | None = None,
    freeze_gc: bool = False,
    crl_publishing: bool = True,
    ltv_renewal: bool = False,
) -> FastAPI:
    """The service for one deployment. ``account_rate``/``public_rate`` are (tokens per second, burst);
    by default the settings' ``account_rate_per_s``/``account_burst`` and ``public_*``.

    ``checkpoint_interval_s`` defaults to ``settings.checkpoint_interval_s``; 0 or ``None`` there means
    checkpoints only on demand."""
    from verifier import patches

    patches.install()  # pyHanko/asn1crypto/oscrypto patches, explicitly (verifier/patches.py); idempotent
    cp_interval = settings.checkpoint_interval_s if checkpoint_interval_s is None else checkpoint_interval_s
    builder = services_builder or build_services

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = builder(settings)
        app.state.services = services
        if freeze_gc:
            # A serve worker: everything built so far (modules, catalogs, fonts, pyHanko's tables) lives as
            # long as the worker; out of the collector's sight, a full collection no longer walks it on a
            # request's time. Not for apps made and dropped in one process (tests): frozen is never freed.
            gc.collect()
            gc.freeze()
            # A signing leaves ~1,300 more container objects allocated than freed between collections
            # (pyHanko's PDF graphs, asn1crypto values; most die by reference counting soon after): with
            # the default first threshold (700) the young generation was collected ~1.8 times and the middle
            # one 0.17 times per signing, and their survivors pushed full collections: 1.0-1.3 ms of CPU per
            # signing. With 10,000: 0.1 young collections per signing (~4 ms each), no full one in 300
            # signings, 0.5 ms (2026-12-06, in-process, sequential signings of the bench's permit).
            gc.set_threshold(10_000, 10, 10)
        # The token loop: opens a keystore that failed at start, heals one whose token failed (issue 8).
        token_watch = asyncio.create_task(_watch_token(services)) if services.token_watched() else None
        delivery = (
            asyncio.create_task(_deliver_webhooks(services, webhook_interval_s))
            if webhook_interval_s
            else None
        )
        checkpoints = (
            asyncio.create_task(_checkpoint_regularly(services, cp_interval)) if cp_interval else None
        )
        sweeper = asyncio.create_task(_sweep_reservations(services, settings.number_reservation_ttl_s))
        crls = asyncio.create_task(_publish_crls_regularly(services)) if crl_publishing else None
        # Long-term validation (issue 19): TSA rotation and archive timestamp renewal, a round at start.
        ltv = asyncio.create_task(_renew_ltv(services)) if ltv_renewal else None
        try:
            yield
        finally:
            if token_watch is not None:
                token_watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await token_watch
            for task in (delivery, checkpoints, sweeper, crls, ltv):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            services.close()

    app = FastAPI(
        title="Yizhang 一章",
        summary="Township e-seal signing service",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served by api._docs from local assets (no CDN)
        redoc_url=None,
    )
    install_docs(app)
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.account_bucket = TokenBucket(
        *(account_rate or (settings.account_rate_per_s, settings.account_burst))
    )
    app.state.public_bucket = TokenBucket(
        *(public_rate or (settings.public_rate_per_s, settings.public_burst))
    )
    install_error_handlers(app)

    from api.routes import include_all

    include_all(app, settings)
    # console area (api/console/): the /ui/ pages and the public /verify page
    app.include_router(__import__("api.console", fromlist=["router_for"]).router_for(settings))
    # add_middleware puts the last one outermost: observability wraps the body limit, which wraps the
    # text guard (it reads a JSON or form body whole, so only after the limit).
    app.add_middleware(TextGuardMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        default=DEFAULT_MAX_BODY,
        uploads=dict.fromkeys(UPLOAD_PATHS, upload_limit(settings)),
    )
    app.add_middleware(ObservabilityMiddleware, metrics=app.state.metrics)
    app.add_middleware(ConnectionRecycleMiddleware, max_requests=settings.keepalive_requests)
    app.add_middleware(HtmlHeadersMiddleware)  # outermost: a CSP on every HTML answer that has none
    return app


async def _every(interval_s: float, round_: Callable[[], object], what: str) -> None:
    """Run the blocking ``round_`` in a thread every ``interval_s``; a failed round is logged, the next
    one retries (the loop must survive it)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(round_)
        except Exception:  # noqa: BLE001 - see above
            log.exception("%s failed", what)


#: How often the token loop looks at the token (the keystore spaces its own attempts by a backoff).
TOKEN_WATCH_INTERVAL_S = 1.0


async def _watch_token(services: Services) -> None:
    """Every second: open the keystore if it did not open at start (wiring the registry, the ledger's log
    key and the signer on it), or let a keystore whose token failed re-open its sessions, so the service
    becomes ready by itself when the token is back."""
    await _every(TOKEN_WATCH_INTERVAL_S, services.heal_token, "token check")


async def _checkpoint_regularly(services: Services, interval_s: float) -> None:
    """Checkpoints issued regularly (issue 4): every ``interval_s``, forward pending seal/policy events into
    the ledger and sign the tree head if it grew. One loop per worker; the ledger serialises them."""
    from api._journal import forward_and_checkpoint

    await _every(interval_s, lambda: forward_and_checkpoint(services), "periodic checkpoint")


#: How often each serve worker looks whether the CRLs are due (reading two files; publishing is rarer).
CRL_CHECK_INTERVAL_S = 60.0


async def _publish_crls_regularly(services: Services) -> None:
    """CRLs that are always current (issue 19): at start, then whenever the published ones are older than
    ``crl_republish_s`` (at most half their validity) or a lifecycle change could not publish at once.
    Every worker looks; the keystore's publishing lock lets one of them sign and the others find it done."""

    def round_() -> None:
        if services.county_pki is not None:  # the keystore may be wired later
            services.county_pki.ensure_current_crls()

    try:
        await asyncio.to_thread(round_)
    except Exception:  # noqa: BLE001 - logged; the loop below retries
        log.exception("CRL publication at start failed")
    await _every(CRL_CHECK_INTERVAL_S, round_, "CRL publication")


async def _renew_ltv(services: Services) -> None:
    from api._ltv import renew_regularly

    await renew_regularly(services)


async def _sweep_reservations(services: Services, ttl_s: float) -> None:
    """Void document numbers reserved by a signing that never ended (its worker died), a while after the
    reservation's time is up; one loop per worker (``SKIP LOCKED`` keeps them apart)."""

    def round_() -> None:
        if services.signer is not None:  # the keystore may be wired later
            services.signer.sweep_reservations()

    await _every(min(60.0, max(1.0, ttl_s / 4)), round_, "number reservation sweep")


async def _deliver_webhooks(services: Services, interval_s: float) -> None:
    """The outbox's delivery loop, one per worker (leases keep workers from posting the same event)."""
    import httpx

    from api._webhooks import deliver_due

    with httpx.Client(timeout=10, follow_redirects=False) as client:
        await _every(interval_s, lambda: deliver_due(services, client), "webhook delivery round")


def app_factory() -> FastAPI:
    """For ``uvicorn --factory api.app:app_factory``: settings from the environment (``YIZHANG_*``)."""
    import os

    from api._observability import configure_logging

    os.umask(0o077)  # as ``yizhang`` does: the home's files are the owner's alone (issue 21)
    configure_logging()
    return create_app(load_settings(), freeze_gc=True, ltv_renewal=True)
