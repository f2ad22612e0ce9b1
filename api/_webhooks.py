"""Webhook delivery of the supervision feed (审管联动): signed payloads, in order, retried until acknowledged.

The outbox (``api_outbox``) is written in the same transaction as the change it reports, so nothing is lost
while a receiver is down. Each webhook keeps a cursor; the event after it is posted until the receiver
answers 2xx, with exponential back-off (capped at an hour). A delivery is claimed by pushing the webhook's
``next_attempt_at`` forward first (a lease), so several workers never post the same event at once.

Signature: ``X-Yizhang-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` — the
receiver recomputes it and rejects old timestamps (replay).

Where a hook may post is checked at registration and before every delivery (``api._webhook_guard``): public
addresses only, unless the host is allow-listed; the connection goes to the address just checked. The owner
reads ``last_error`` as ``destination refused`` or ``delivery failed`` only (what answered, or that nothing
did, would make the hook a port scanner); the operator's log has the detail.

A hook delivers only while the account that registered it is enabled: disabling that account pauses its
hooks (their cursor waits), re-enabling resumes them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from api._accounts import aware
from api._json import JsonObject
from api._services import Services
from api._storage import AccountRow, OutboxRow, WebhookRow
from api._webhook_guard import DestinationRefused, check_destination, parse_allow_hosts, pinned
from core.db import transaction
from core.errors import NotFound

log = logging.getLogger("yizhang.api.webhooks")

LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(hours=1)
SIGNATURE_HEADER = "X-Yizhang-Signature"
#: What a hook's owner reads in ``last_error``; nothing more specific (see the module's docstring).
REFUSED = "destination refused"
FAILED = "delivery failed"


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    supervising_code: str | None
    url: str
    cursor: int
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    disabled: bool

    @classmethod
    def from_row(cls, row: WebhookRow) -> Webhook:
        return cls(
            row.webhook_id,
            row.supervising_code,
            row.url,
            row.cursor,
            row.attempts,
            aware(row.next_attempt_at),
            row.last_error,
            row.disabled,
        )


def _now() -> datetime:
    return datetime.now(UTC)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def create_webhook(
    services: Services, *, url: str, supervising_code: str | None, created_by: str, from_start: bool = False
) -> tuple[Webhook, str]:
    """A new subscription; returns it with its secret (shown once). New hooks start at the current end of
    the feed unless ``from_start``."""
    try:
        check_destination(url, parse_allow_hosts(services.settings.webhook_allow_hosts))
    except DestinationRefused as exc:
        log.warning("webhook registration refused: %s", exc.why, extra={"created_by": created_by})
        raise
    secret = secrets.token_urlsafe(32)
    now = _now()
    with transaction(services.sessions) as s:
        last = 0
        if not from_start:
            last = int(s.scalar(select(OutboxRow.event_id).order_by(OutboxRow.event_id.desc()).limit(1)) or 0)
        row = WebhookRow(
            webhook_id=str(uuid.uuid4()),
            supervising_code=supervising_code,
            url=url,
            secret=secret,
            cursor=last,
            attempts=0,
            next_attempt_at=now,
            last_error=None,
            disabled=False,
            created_by=created_by,
            created_at=now,
        )
        s.add(row)
        s.flush()
        return Webhook.from_row(row), secret


def list_webhooks(services: Services, supervising_code: str | None = None) -> list[Webhook]:
    with transaction(services.sessions) as s:
        stmt = select(WebhookRow).order_by(WebhookRow.created_at)
        if supervising_code is not None:
            stmt = stmt.where(WebhookRow.supervising_code == supervising_code)
        return [Webhook.from_row(r) for r in s.scalars(stmt)]


def get_webhook(services: Services, webhook_id: str) -> Webhook:
    with transaction(services.sessions) as s:
        row = s.get(WebhookRow, webhook_id)
        if row is None:
            raise NotFound("WEBHOOK_NOT_FOUND", "no such webhook", "回调不存在")
        return Webhook.from_row(row)


def disable_webhook(services: Services, webhook_id: str) -> Webhook:
    with transaction(services.sessions) as s:
        row = s.get(WebhookRow, webhook_id)
        if row is None:
            raise NotFound("WEBHOOK_NOT_FOUND", "no such webhook", "回调不存在")
        row.disabled = True
        return Webhook.from_row(row)


def _claim(services: Services, now: datetime) -> list[tuple[str, str, str, str | None, int, int]]:
    # Only hooks whose registering account exists and is enabled (finding 10): a disabled account's hooks
    # are not even claimed, so their cursor waits and nothing is posted.
    owner_enabled = (
        select(AccountRow.account_id)
        .where(AccountRow.username == WebhookRow.created_by, AccountRow.disabled.is_(False))
        .exists()
    )
    with transaction(services.sessions) as s:
        rows = s.scalars(
            select(WebhookRow).where(
                WebhookRow.disabled.is_(False), WebhookRow.next_attempt_at <= now, owner_enabled
            )
        ).all()
        claimed = []
        for r in rows:
            r.next_attempt_at = now + LEASE
            claimed.append((r.webhook_id, r.url, r.secret, r.supervising_code, r.cursor, r.attempts))
        return claimed


def _next_event(services: Services, supervising_code: str | None, cursor: int) -> OutboxRow | None:
    with transaction(services.sessions) as s:
        stmt = select(OutboxRow).where(OutboxRow.event_id > cursor).order_by(OutboxRow.event_id).limit(1)
        if supervising_code is not None:
            stmt = stmt.where(OutboxRow.supervising_code == supervising_code)
        row = s.scalars(stmt).first()
        if row is not None:
            s.expunge(row)
        return row


def deliver_due(
    services: Services, client: httpx.Client, now: datetime | None = None, max_events: int = 100
) -> int:
    """One delivery round: every due webhook gets its pending events, in order, until one fails.

    Before a hook's first post of the round its destination is resolved and checked again (DNS rebinding);
    the round's posts go to the address checked then."""
    now = now or _now()
    delivered = 0
    allow = parse_allow_hosts(services.settings.webhook_allow_hosts)
    for webhook_id, url, secret, code, cursor, attempts in _claim(services, now):
        error: str | None = None
        destination = None
        for _ in range(max_events):
            event = _next_event(services, code, cursor)
            if event is None:
                break
            body = json.dumps(
                {"event_id": event.event_id, "event": event.event, **json.loads(event.payload)},
                ensure_ascii=False,
                sort_keys=True,
            ).encode()
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, int(now.timestamp()), body),
                "X-Yizhang-Event-Id": str(event.event_id),
            }
            if destination is None:
                try:
                    destination = check_destination(url, allow)
                except DestinationRefused as exc:
                    log.warning("webhook %s not delivered: destination %s", webhook_id, exc.why)
                    error = REFUSED
                    break
            target, host, extensions = pinned(destination)
            try:
                r = client.post(
                    target,
                    content=body,
                    headers={**headers, **host},
                    extensions=extensions,
                    follow_redirects=False,
                )
                ok = 200 <= r.status_code < 300
                detail = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                ok, detail = False, type(exc).__name__
            if not ok:
                log.warning("webhook %s not delivered: %s", webhook_id, detail)
                error = FAILED
                break
            cursor = event.event_id
            delivered += 1
        with transaction(services.sessions) as s:
            row = s.get(WebhookRow, webhook_id)
            if row is None:
                continue
            row.cursor = cursor
            if error is None:
                row.attempts = 0
                row.next_attempt_at = now
                row.last_error = None
            else:
                row.attempts = attempts + 1
                backoff = min(MAX_BACKOFF, timedelta(seconds=2 ** min(row.attempts, 12)))
                row.next_attempt_at = now + backoff
                row.last_error = error
    return delivered


def webhook_view(w: Webhook) -> JsonObject:
    return {
        "webhook_id": w.webhook_id,
        "supervising_code": w.supervising_code,
        "url": w.url,
        "cursor": w.cursor,
        "attempts": w.attempts,
        "next_attempt_at": w.next_attempt_at.isoformat(),
        "last_error": w.last_error,
        "disabled": w.disabled,
    }
