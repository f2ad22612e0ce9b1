"""Issue 21, finding 3 (webhook SSRF) and the webhook part of finding 10 (disabled accounts' hooks).

The address classification is tested as a unit: nothing here sends a packet to a non-loopback address, and
no name is looked up in DNS (the suite's resolver, ``tests._fixtures.api.loopback_only_resolve``, answers
IP literals and ``localhost`` only; tests that need a name give their own). Deliveries go to a receiver on
127.0.0.1, reachable only through the allow-list setting.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import api._webhook_guard as guard
from api._webhook_guard import (
    DestinationRefused,
    address_refusal,
    check_destination,
    loose_ipv4,
    parse_allow_hosts,
    pinned,
)

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.255.0.9",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "224.0.0.1",
    "224.0.1.1",  # multicast that Python 3.11 calls global
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "198.18.0.1",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::1",  # local-use NAT64
    "2001::1",  # Teredo
    "2001:db8::1",
]
PUBLIC_ADDRESSES = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2a00:1450:4001::1"]


@pytest.mark.parametrize("text", REFUSED_ADDRESSES)
def test_non_public_addresses_are_refused(text: str) -> None:
    assert address_refusal(ipaddress.ip_address(text)) is not None


@pytest.mark.parametrize("text", PUBLIC_ADDRESSES)
def test_public_addresses_pass(text: str) -> None:
    assert address_refusal(ipaddress.ip_address(text)) is None


@pytest.mark.parametrize(
    ("spelling", "meant"),
    [
        ("0x7f000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("10.0x10.1", "10.16.0.1"),
        ("0xa9fea9fe", "169.254.169.254"),
    ],
)
def test_odd_ipv4_spellings_are_read_and_refused(spelling: str, meant: str) -> None:
    assert loose_ipv4(spelling) == ipaddress.IPv4Address(meant)
    with pytest.raises(DestinationRefused) as caught:
        check_destination(f"http://{spelling}:5432/x", frozenset())
    assert caught.value.code == "WEBHOOK_DESTINATION_REFUSED"
    # Not even allow-listing the address lets a non-canonical spelling through.
    with pytest.raises(DestinationRefused):
        check_destination(f"http://{spelling}/x", parse_allow_hosts(meant))


def test_names_are_not_numbers() -> None:
    for name in ("deadbeef", "face.b00c", "example.org", "1.2.3.4.5", "256.1.1.1", "1.2.3.0x100"):
        assert loose_ipv4(name) is None, name


def test_every_resolved_address_is_checked() -> None:
    def two_answers(host: str, port: int) -> list[str]:
        return ["8.8.8.8", "127.0.0.1"]

    with pytest.raises(DestinationRefused):
        check_destination("https://hook.example/x", frozenset(), two_answers)

    def public(host: str, port: int) -> list[str]:
        return ["8.8.8.8"]

    checked = check_destination("https://hook.example/x", frozenset(), public)
    assert checked.addresses == ("8.8.8.8",) and checked.port == 443


def test_unresolvable_is_refused_like_internal() -> None:
    """A name that does not resolve is refused with the same code and message (no DNS oracle)."""

    def nothing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "no such name")

    with pytest.raises(DestinationRefused) as missing:
        check_destination("http://intranet.example/x", frozenset(), nothing)
    with pytest.raises(DestinationRefused) as internal:
        check_destination("http://10.0.0.1/x", frozenset())
    assert missing.value.to_dict() == internal.value.to_dict()


def test_allow_list_names_the_host() -> None:
    allow = parse_allow_hosts(" Receiver.Local , 127.0.0.1,[::1]")
    assert allow == frozenset({"receiver.local", "127.0.0.1", "::1"})
    assert check_destination("http://127.0.0.1:5432/", allow).addresses == ("127.0.0.1",)
    assert check_destination("http://[::1]:8080/", allow).addresses == ("::1",)

    def local(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]

    assert check_destination("https://receiver.local/h", allow, local).allow_listed
    with pytest.raises(DestinationRefused):
        check_destination("https://other.local/h", allow, local)


@pytest.mark.parametrize(
    "url", ["ftp://example.org/x", "http:///x", "http://user:pw@8.8.8.8/x", "http://8.8.8.8:99999/x"]
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(Exception) as caught:
        check_destination(url, frozenset())
    assert getattr(caught.value, "code", None) == "WEBHOOK_URL_INVALID"


def test_pinned_connection_keeps_the_host_name() -> None:
    def public(host: str, port: int) -> list[str]:
        return ["2606:4700::1111", "8.8.8.8"]

    d = check_destination("https://hook.example:8443/in?x=1", frozenset(), public)
    url, headers, extensions = pinned(d)
    assert str(url) == "https://[2606:4700::1111]:8443/in?x=1"
    assert headers == {"Host": "hook.example:8443"} and extensions == {"sni_hostname": "hook.example"}


# --- over HTTP: registration, delivery, what the owner reads ------------------------------------------------


class Receiver:
    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _county(settings: Any) -> Any:
    from starlette.testclient import TestClient

    from api.app import create_app

    app = create_app(settings, account_rate=(1000.0, 10_000), webhook_interval_s=None)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def plain(sqlite_api_settings: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A county with no allow-list: webhooks reach public addresses only."""
    from tests._fixtures.api import make_county_accounts

    with _county(sqlite_api_settings) as client:
        yield client, make_county_accounts(client)


@pytest.fixture
def allowing(sqlite_api_settings: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A county whose operator allow-listed 127.0.0.1 and ``hooks.county.internal``."""
    from tests._fixtures.api import make_county_accounts

    settings = sqlite_api_settings.model_copy(
        update={"webhook_allow_hosts": "127.0.0.1,hooks.county.internal"}
    )
    with _county(settings) as client:
        yield client, make_county_accounts(client)


def _event(services: Any, n: int, supervisor: str = "xg-health") -> None:
    from api._storage import OutboxRow
    from core.db import transaction

    with transaction(services.sessions) as s:
        s.add(
            OutboxRow(
                event="DECISION_ISSUED",
                request_id=f"r{n}",
                supervising_code=supervisor,
                township_code="t",
                payload=json.dumps({"request_id": f"r{n}"}),
                created_at=datetime.now(UTC),
            )
        )


INTERNAL_URLS = [
    "http://127.0.0.1:5432/",
    "http://0x7f000001:5432/",
    "http://2130706433:5432/",
    "http://0177.0.0.1:5432/",
    "http://127.1:5432/",
    "http://localhost:5432/",
    "http://[::1]:5432/",
    "http://[::ffff:127.0.0.1]:5432/",
    "http://[::ffff:7f00:1]:5432/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://192.168.0.1/",
    "http://[fe80::1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://0.0.0.0:8000/",
]


def test_registration_refuses_internal_destinations(plain) -> None:  # type: ignore[no-untyped-def]
    client, accounts = plain
    officer = accounts["health.officer"]
    for url in INTERNAL_URLS:
        r = client.post("/v1/webhooks", json={"url": url}, headers=officer.headers)
        assert r.status_code == 400, (url, r.text)
        body = r.json()
        assert body["code"] == "WEBHOOK_DESTINATION_REFUSED", (url, body)
        assert "loopback" not in body["message"] and "private" not in body["message"]
    assert client.get("/v1/webhooks", headers=officer.headers).json() == []


def test_dns_rebinding_is_refused_at_delivery(plain, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The name resolved to a public address when registered and to loopback when delivered: the hook
    posts nothing and its owner reads only ``destination refused``."""
    client, accounts = plain
    officer = accounts["health.officer"]
    services = client.app.state.services
    answers = {"localhost": ["93.184.216.34"]}
    monkeypatch.setattr(guard, "RESOLVE", lambda host, port: answers[host])
    url = f"http://localhost:{receiver.port}/hook"
    r = client.post("/v1/webhooks", json={"url": url}, headers=officer.headers)
    assert r.status_code == 201, r.text
    answers["localhost"] = ["127.0.0.1"]  # rebound
    _event(services, 1)
    from api._webhooks import deliver_due

    with httpx.Client(timeout=5) as http:
        assert deliver_due(services, http) == 0
    assert receiver.received == []
    [state] = client.get("/v1/webhooks", headers=officer.headers).json()
    assert state["last_error"] == "destination refused" and state["cursor"] == 0


def test_delivery_connects_to_the_checked_address(allowing, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An allow-listed name is resolved once per round; the post goes to that address with the name kept
    in the Host header."""
    client, accounts = allowing
    officer = accounts["health.officer"]
    services = client.app.state.services
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(guard, "RESOLVE", resolve)
    url = f"http://hooks.county.internal:{receiver.port}/hook"
    assert client.post("/v1/webhooks", json={"url": url}, headers=officer.headers).status_code == 201
    for n in (1, 2):
        _event(services, n)
    from api._webhooks import deliver_due

    lookups.clear()
    with httpx.Client(timeout=5) as http:
        assert deliver_due(services, http) == 2
    assert lookups == ["hooks.county.internal"]
    assert [h["Host"] for h, _ in receiver.received] == [f"hooks.county.internal:{receiver.port}"] * 2


def test_last_error_tells_no_port_state(allowing, receiver) -> None:  # type: ignore[no-untyped-def]
    """A receiver answering 503 and a closed port read the same to the hook's owner."""
    from api._webhooks import deliver_due

    client, accounts = allowing
    officer = accounts["health.officer"]
    services = client.app.state.services
    receiver.status = 503
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    for url in (receiver.url, f"http://127.0.0.1:{closed}/hook"):
        assert client.post("/v1/webhooks", json={"url": url}, headers=officer.headers).status_code == 201
    _event(services, 1)
    with httpx.Client(timeout=5) as http:
        assert deliver_due(services, http) == 0
    states = client.get("/v1/webhooks", headers=officer.headers).json()
    assert [s["last_error"] for s in states] == ["delivery failed", "delivery failed"]
    assert len(receiver.received) == 1


def test_disabled_accounts_hooks_stop(allowing, receiver) -> None:  # type: ignore[no-untyped-def]
    """Finding 10: the hook of a disabled account posts nothing (its events wait); re-enabled, it resumes."""
    from api._webhooks import deliver_due

    client, accounts = allowing
    officer, admin = accounts["health.officer"], accounts["admin"]
    services = client.app.state.services
    assert client.post("/v1/webhooks", json={"url": receiver.url}, headers=officer.headers).status_code == 201
    r = client.patch(f"/v1/accounts/{officer.account_id}", json={"disabled": True}, headers=admin.headers)
    assert r.status_code == 200, r.text
    _event(services, 1)
    now = datetime.now(UTC)
    with httpx.Client(timeout=5) as http:
        assert deliver_due(services, http, now) == 0
        assert receiver.received == []
        r = client.patch(
            f"/v1/accounts/{officer.account_id}", json={"disabled": False}, headers=admin.headers
        )
        assert r.status_code == 200, r.text
        assert deliver_due(services, http, now + timedelta(seconds=1)) == 1
    assert [json.loads(b)["request_id"] for _, b in receiver.received] == ["r1"]
