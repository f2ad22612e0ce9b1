"""Webhook delivery of the supervision feed (审管联动): signed payloads, in order, retried until acknowledged.

The outbox (``api_outbox``) is written in the same transaction as the change it reports, so nothing is lost
while a receiver is down. Each webhook keeps a cursor; the event after it is posted until the receiver
answers 2xx, with exponential back-off (capped at an hour). A delivery is claimed by pushing the webhook's
``next_attempt_at`` forward first (a lease), so several workers never post the same event at once.

Signature: ``X-Yizhang-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` — the
receiver recomputes it and rejects old timestamps (replay).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from api._accounts import aware
from api._services import Services
from api._storage import OutboxRow, WebhookRow
from core.db import transaction
from core.errors import BadInput, NotFound

LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(hours=1)
SIGNATURE_HEADER = "X-Yizhang-Signature"


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
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.netloc or len(url) > 500:
        raise BadInput(
            "WEBHOOK_URL_INVALID", "the webhook URL must be http(s)://host/...", "回调地址须为 http(s) URL"
        )
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
    with transaction(services.sessions) as s:
        rows = s.scalars(
            select(WebhookRow).where(WebhookRow.disabled.is_(False), WebhookRow.next_attempt_at <= now)
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
    """One delivery round: every due webhook gets its pending events, in order, until one fails."""
    now = now or _now()
    delivered = 0
    for webhook_id, url, secret, code, cursor, attempts in _claim(services, now):
        error: str | None = None
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
            try:
                r = client.post(url, content=body, headers=headers)
                ok = 200 <= r.status_code < 300
                error = None if ok else f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                ok, error = False, type(exc).__name__
            if not ok:
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


def webhook_view(w: Webhook) -> dict[str, Any]:
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
