"""Webhook delivery over real HTTP: signed, in order, retried with back-off, nothing lost while down.

The receiver listens on loopback, which webhooks may reach only when allow-listed
(``webhook_allow_hosts``); the refusals themselves are in tests/security/test_webhook_destinations.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest


class Receiver:
    def __init__(self) -> None:
        self.fail = True
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail:
                    self.send_response(503)
                else:
                    receiver.received.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def county_hooks(sqlite_api_settings):  # type: ignore[no-untyped-def]
    """(client, accounts) on SQLite whose settings allow-list the loopback receiver."""
    from starlette.testclient import TestClient

    from api.app import create_app
    from tests._fixtures.api import make_county_accounts

    settings = sqlite_api_settings.model_copy(update={"webhook_allow_hosts": "127.0.0.1"})
    app = create_app(settings, account_rate=(1000.0, 10_000), webhook_interval_s=None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, make_county_accounts(client)


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    r = Receiver()
    yield r
    r.server.shutdown()


def _event(services, n: int, supervisor: str) -> None:  # type: ignore[no-untyped-def]
    from api._storage import OutboxRow
    from core.db import transaction

    with transaction(services.sessions) as s:
        s.add(
            OutboxRow(
                event="DECISION_ISSUED",
                request_id=f"r{n}",
                supervising_code=supervisor,
                township_code="t",
                payload=json.dumps({"request_id": f"r{n}", "document_number": f"兴江审批〔2026〕{n}号"}),
                created_at=datetime.now(UTC),
            )
        )


def test_webhook_delivery_signed_ordered_retried(county_hooks, receiver) -> None:
    from api._webhooks import SIGNATURE_HEADER, deliver_due

    client, accounts = county_hooks
    officer = accounts["health.officer"]
    services = client.app.state.services
    r = client.post("/v1/webhooks", json={"url": receiver.url}, headers=officer.headers)
    assert r.status_code == 201, r.text
    hook = r.json()
    secret = hook["secret"]
    assert hook["supervising_code"] == "xg-health"
    assert "secret" not in client.get("/v1/webhooks", headers=officer.headers).json()[0]
    r = client.post("/v1/webhooks", json={"url": "ftp://example.org/x"}, headers=officer.headers)
    assert r.status_code == 400 and r.json()["code"] == "WEBHOOK_URL_INVALID"
    assert (
        client.post(
            "/v1/webhooks", json={"url": receiver.url}, headers=accounts["xj.clerk"].headers
        ).status_code
        == 403
    )

    for n in (1, 2, 3):
        _event(services, n, "xg-health")
    _event(services, 4, "other-department")  # not theirs
    now = datetime.now(UTC)
    with httpx.Client(timeout=5) as http:
        # The receiver is down: nothing is lost, the hook backs off.
        assert deliver_due(services, http, now) == 0
        state = client.get("/v1/webhooks", headers=officer.headers).json()[0]
        assert state["attempts"] == 1 and state["last_error"] == "delivery failed" and state["cursor"] == 0
        assert deliver_due(services, http, now) == 0  # not due yet
        receiver.fail = False
        assert deliver_due(services, http, now + timedelta(seconds=3)) == 3
        assert deliver_due(services, http, now + timedelta(seconds=4)) == 0  # nothing new
    bodies = [json.loads(b) for _, b in receiver.received]
    assert [b["request_id"] for b in bodies] == ["r1", "r2", "r3"]
    for headers, body in receiver.received:
        sig = headers[SIGNATURE_HEADER]
        t, v1 = (part.split("=", 1)[1] for part in sig.split(","))
        expected = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(v1, expected)
    state = client.get("/v1/webhooks", headers=officer.headers).json()[0]
    assert state["attempts"] == 0 and state["last_error"] is None
    r = client.delete(f"/v1/webhooks/{hook['webhook_id']}", headers=accounts["xj.principal"].headers)
    assert r.status_code == 403
    r = client.delete(f"/v1/webhooks/{hook['webhook_id']}", headers=officer.headers)
    assert r.status_code == 200 and r.json()["disabled"] is True
