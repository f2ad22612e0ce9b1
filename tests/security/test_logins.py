"""Logins (issue 21, finding 7): backoff per account name and per address, and argon2 in a bounded pool.

Before: 100 wrong passwords and then the right one → 200; 8 parallel logins ran 8 argon2 computations at
once and another township's signing went from 0.04 s to 9.9 s. Real HTTP through the ASGI app, real
databases (SQLite and PostgreSQL; the backoff state is a table, shared by every serve worker), real argon2.
The public per-address token bucket is opened wide so what is measured is the login backoff itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from tests._fixtures.api import PASSWORD, make_county_accounts

WRONG = "not the password at all 1"


@pytest.fixture
def client(api_settings: Any) -> Iterator[TestClient]:
    from api.app import create_app

    app = create_app(api_settings, public_rate=(1000.0, 10_000), webhook_interval_s=None)
    with TestClient(app, raise_server_exceptions=False) as tc:
        make_county_accounts(tc)
        yield tc


def _login(client: TestClient, username: str, password: str) -> Any:
    client.cookies.clear()
    return client.post("/v1/auth/login", json={"username": username, "password": password})


def _unlock_all(client: TestClient) -> None:
    """What waiting out the lock does (the test does not sleep for it)."""
    from api._accounts import utcnow
    from api._storage import LoginFailureRow
    from core.db import transaction

    with transaction(client.app.state.services.sessions) as s:  # type: ignore[attr-defined]
        s.execute(update(LoginFailureRow).values(locked_until=utcnow() - timedelta(seconds=1)))


def test_hundred_wrong_passwords_then_the_right_one_is_refused_for_a_while(client: TestClient) -> None:
    from api import _login_guard as guard

    free = guard.ACCOUNT_FREE_FAILURES
    codes = [_login(client, "xj.clerk", f"{WRONG}{i}") for i in range(100)]
    assert [r.status_code for r in codes[:free]] == [401] * free
    throttled = codes[free:]
    assert {r.status_code for r in throttled} == {429}
    right = _login(client, "xj.clerk", PASSWORD)
    assert right.status_code == 429, right.text
    body = right.json()
    assert body["code"] == "LOGIN_THROTTLED" and body["message_zh"] and body["message_en"]
    retry = int(right.headers["Retry-After"])
    assert 1 <= retry <= guard.BASE_LOCK.total_seconds()
    # An unknown name is counted the same way (the lockout tells nobody whether an account exists).
    for i in range(guard.ACCOUNT_FREE_FAILURES):
        assert _login(client, "nobody.here", f"{WRONG}{i}").status_code == 401
    assert _login(client, "nobody.here", WRONG).json()["code"] == "LOGIN_THROTTLED"
    # Another account from the same address is not locked by the clerk's lock (address threshold is higher).
    assert _login(client, "xj.principal", PASSWORD).status_code == 200
    # Once the lock has passed, the right password opens the account and clears its count...
    _unlock_all(client)
    assert _login(client, "xj.clerk", PASSWORD).status_code == 200
    # ...so one more mistake is a plain 401, not a longer lock.
    assert _login(client, "xj.clerk", WRONG).status_code == 401


def test_one_address_spraying_many_names_is_throttled(client: TestClient) -> None:
    from api import _login_guard as guard

    for i in range(guard.ADDRESS_FREE_FAILURES):
        r = _login(client, f"guess.{i}", WRONG)
        assert r.status_code == 401, (i, r.text)
    r = _login(client, "xj.principal", PASSWORD)  # a name never tried, from the same address
    assert r.status_code == 429 and r.json()["code"] == "LOGIN_THROTTLED"
    assert int(r.headers["Retry-After"]) >= 1


def test_console_login_is_throttled_too(client: TestClient) -> None:
    from api import _login_guard as guard

    def form(password: str) -> Any:
        client.cookies.clear()
        return client.post(
            "/ui/login", data={"username": "xj.clerk", "password": password}, follow_redirects=False
        )

    for i in range(guard.ACCOUNT_FREE_FAILURES):
        assert form(f"{WRONG}{i}").headers["location"].endswith("error=LOGIN_FAILED")
    r = form(PASSWORD)
    assert r.status_code == 303 and r.headers["location"].endswith("error=LOGIN_THROTTLED")
    page = client.get(r.headers["location"])
    assert "LOGIN_THROTTLED" in page.text and "稍后再试" in page.text


def test_parallel_logins_do_not_all_run_argon2_at_once(client: TestClient) -> None:
    from api._accounts import PASSWORD_HASHING

    parallel = 8
    barrier = threading.Barrier(parallel)
    results: list[Any] = [None] * parallel

    def one(i: int) -> None:
        barrier.wait()
        username = ("xj.clerk", "xj.principal")[i % 2]
        results[i] = client.post("/v1/auth/login", json={"username": username, "password": PASSWORD})

    PASSWORD_HASHING.reset_marks()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    statuses = [r.status_code for r in results]
    # The bound held, and it was tested: logins did arrive together and waited for a slot.
    assert PASSWORD_HASHING.peak <= PASSWORD_HASHING.limit <= 2
    assert PASSWORD_HASHING.peak_waiting >= 1
    # Each one is a login or a clear "busy, retry" (never a 500, never a pile-up of hashes).
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses
    for r in results:
        if r.status_code == 503:
            assert r.json()["code"] == "LOGIN_BUSY" and int(r.headers["Retry-After"]) >= 1
