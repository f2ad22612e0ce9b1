"""Authentication and authorisation over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import logging
from datetime import timedelta

from tests._fixtures.api import PASSWORD


def _issue(api_client, account_id: str, **kw):  # type: ignore[no-untyped-def]
    from api._accounts import issue_token
    from core.db import transaction

    with transaction(api_client.app.state.services.sessions) as s:
        return issue_token(s, account_id, name="t", **kw)


def test_no_token_is_401(api_client, county_accounts) -> None:
    r = api_client.get("/v1/me")
    assert r.status_code == 401
    assert r.json()["code"] == "UNAUTHENTICATED"


def test_bad_credentials_are_401(api_client, county_accounts) -> None:
    for header in [
        "Bearer nope",
        "Bearer yz_" + "a" * 43,
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "yz_abc",
        "Bearer " + "x" * 5000,
    ]:
        r = api_client.get("/v1/me", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["code"] == "TOKEN_INVALID"


def test_valid_token_reaches_me(api_client, county_accounts) -> None:
    clerk = county_accounts["xj.clerk"]
    r = api_client.get("/v1/me", headers=clerk.headers)
    assert r.status_code == 200
    assert r.json()["username"] == "xj.clerk" and r.json()["org_code"] == "xingjiang"


def test_expired_token_is_401(api_client, county_accounts) -> None:
    from api._accounts import issue_token, utcnow
    from core.db import transaction

    clerk = county_accounts["xj.clerk"]
    with transaction(api_client.app.state.services.sessions) as s:
        issued = issue_token(
            s, clerk.account_id, name="old", ttl=timedelta(hours=1), now=utcnow() - timedelta(hours=2)
        )
    r = api_client.get("/v1/me", headers={"Authorization": f"Bearer {issued.secret}"})
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_EXPIRED"


def test_revoked_token_is_401(api_client, county_accounts) -> None:
    clerk = county_accounts["xj.clerk"]
    issued = _issue(api_client, clerk.account_id)
    auth = {"Authorization": f"Bearer {issued.secret}"}
    assert api_client.get("/v1/me", headers=auth).status_code == 200
    r = api_client.delete(f"/v1/me/tokens/{issued.token.token_id}", headers=clerk.headers)
    assert r.status_code == 200 and r.json()["revoked_at"]
    r = api_client.get("/v1/me", headers=auth)
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_REVOKED"


def test_disabled_account_is_403_even_with_valid_token(api_client, county_accounts) -> None:
    admin, clerk = county_accounts["admin"], county_accounts["xj.clerk"]
    r = api_client.patch(f"/v1/accounts/{clerk.account_id}", json={"disabled": True}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["disabled"] is True
    r = api_client.get("/v1/me", headers=clerk.headers)
    assert r.status_code == 403 and r.json()["code"] == "ACCOUNT_DISABLED"
    r = api_client.post("/v1/auth/login", json={"username": "xj.clerk", "password": PASSWORD})
    assert r.status_code == 403 and r.json()["code"] == "ACCOUNT_DISABLED"


def test_wrong_role_is_403(api_client, county_accounts) -> None:
    clerk = county_accounts["xj.clerk"]
    r = api_client.get("/v1/accounts", headers=clerk.headers)
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"
    r = api_client.post(
        "/v1/accounts",
        json={"username": "evil", "display_name": "x", "role": "COUNTY_ADMIN", "org_code": "xingguo"},
        headers=clerk.headers,
    )
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"


def test_auditor_reads_accounts_but_cannot_change_them(api_client, county_accounts) -> None:
    auditor, clerk = county_accounts["auditor"], county_accounts["xj.clerk"]
    r = api_client.get("/v1/accounts", headers=auditor.headers)
    assert r.status_code == 200 and len(r.json()) == len(county_accounts)
    r = api_client.patch(f"/v1/accounts/{clerk.account_id}", json={"disabled": True}, headers=auditor.headers)
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"


def test_admin_creates_account_and_the_person_makes_a_token(
    api_client, county_accounts, registered_orgs
) -> None:
    # The administrator creates the account with an initial password; the person changes it and makes their
    # own token (an administrator never mints one for another account: tests/security/test_duties.py).
    admin = county_accounts["admin"]
    r = api_client.post(
        "/v1/accounts",
        json={
            "username": "gl.clerk",
            "display_name": "古龙岗窗口",
            "role": "TOWNSHIP_CLERK",
            "org_code": "gulonggang",
            "service_centre": "gulonggang-centre",
            "password": "initial pass 12345",
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    account_id = r.json()["account_id"]
    csrf = api_client.post(
        "/v1/auth/login", json={"username": "gl.clerk", "password": "initial pass 12345"}
    ).json()["csrf_token"]
    r = api_client.post(
        "/v1/me/password",
        json={"current_password": "initial pass 12345", "new_password": PASSWORD},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 204
    csrf = api_client.post("/v1/auth/login", json={"username": "gl.clerk", "password": PASSWORD}).json()[
        "csrf_token"
    ]
    r = api_client.post("/v1/me/tokens", json={"name": "window pc"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    api_client.cookies.clear()
    secret = r.json()["token"]
    assert secret.startswith("yz_")
    me = api_client.get("/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()
    assert me["org_code"] == "gulonggang"
    tokens = api_client.get(f"/v1/accounts/{account_id}/tokens", headers=admin.headers).json()
    assert tokens[0]["last_used_at"] is not None and "token" not in tokens[0]


ACCOUNT_ERRORS = [
    (
        {"username": "ccc5", "display_name": "x", "role": "AUDITOR", "org_code": "nowhere"},
        404,
        "ORGANISATION_UNKNOWN",
    ),
    (
        {"username": "ccc6", "display_name": "x", "role": "AUDITOR", "org_code": "xingjiang"},
        400,
        "ORG_KIND_MISMATCH",
    ),
    (
        {
            "username": "ccc7",
            "display_name": "x",
            "role": "TOWNSHIP_CLERK",
            "org_code": "xingjiang",
            "service_centre": "meijiao-centre",
        },
        400,
        "SERVICE_CENTRE_MISMATCH",
    ),
    (
        {"username": "admin", "display_name": "x", "role": "AUDITOR", "org_code": "xingguo"},
        409,
        "USERNAME_TAKEN",
    ),
    (
        {"username": "Bad Name", "display_name": "x", "role": "AUDITOR", "org_code": "xingguo"},
        400,
        "USERNAME_INVALID",
    ),
    (
        {"username": "ccc1", "display_name": "x", "role": "TOWNSHIP_CLERK", "org_code": "xingjiang"},
        400,
        "SERVICE_CENTRE_REQUIRED",
    ),
    (
        {"username": "ccc2", "display_name": "x", "role": "KING", "org_code": "xingguo"},
        422,
        "VALIDATION_FAILED",
    ),
    (
        {
            "username": "ccc3",
            "display_name": "x",
            "role": "AUDITOR",
            "org_code": "xingguo",
            "password": "short",
        },
        400,
        "PASSWORD_TOO_SHORT",
    ),
    (
        {"username": "ccc4", "display_name": "x", "role": "AUDITOR", "org_code": "bad code!"},
        400,
        "ORG_CODE_INVALID",
    ),
]


def test_account_creation_errors(api_client, county_accounts, registered_orgs) -> None:
    for body, status, code in ACCOUNT_ERRORS:
        r = api_client.post("/v1/accounts", json=body, headers=county_accounts["admin"].headers)
        assert r.status_code == status, r.text
        assert r.json()["code"] == code


def test_other_organisation_is_403(api_client, county_accounts) -> None:
    # A department officer may not read a township's account; a county auditor may.
    officer, clerk = county_accounts["health.officer"], county_accounts["mj.clerk"]
    r = api_client.get(f"/v1/accounts/{clerk.account_id}", headers=officer.headers)
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN"
    r = api_client.get(f"/v1/accounts/{clerk.account_id}", headers=county_accounts["auditor"].headers)
    assert r.status_code == 200


def test_cannot_revoke_someone_elses_token(api_client, county_accounts) -> None:
    xj, mj = county_accounts["xj.clerk"], county_accounts["mj.clerk"]
    issued = _issue(api_client, mj.account_id)
    r = api_client.delete(f"/v1/me/tokens/{issued.token.token_id}", headers=xj.headers)
    assert r.status_code == 404 and r.json()["code"] == "TOKEN_NOT_FOUND"


def test_console_login_session_and_csrf(api_client, county_accounts) -> None:
    r = api_client.post("/v1/auth/login", json={"username": "xj.principal", "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf_token"]
    cookie = r.cookies.get("yz_session")
    assert (
        cookie
        and "httponly" in r.headers["set-cookie"].lower()
        and "samesite=strict" in r.headers["set-cookie"].lower()
    )
    assert api_client.get("/v1/me").json()["username"] == "xj.principal"  # cookie jar
    # An unsafe method needs the CSRF token in a header.
    r = api_client.post("/v1/me/tokens", json={"name": "x"})
    assert r.status_code == 403 and r.json()["code"] == "CSRF_FAILED"
    r = api_client.post("/v1/me/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403 and r.json()["code"] == "CSRF_FAILED"
    r = api_client.post("/v1/me/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    api_client.post("/v1/auth/logout")
    api_client.cookies.set("yz_session", cookie)  # replaying the old cookie after logout
    r = api_client.get("/v1/me")
    assert r.status_code == 401 and r.json()["code"] == "SESSION_INVALID"


def test_login_failures_say_the_same_thing(api_client, county_accounts) -> None:
    a = api_client.post("/v1/auth/login", json={"username": "xj.clerk", "password": "wrong password 123"})
    b = api_client.post("/v1/auth/login", json={"username": "nobody", "password": "wrong password 123"})
    assert a.status_code == b.status_code == 401
    assert a.json()["code"] == b.json()["code"] == "LOGIN_FAILED"


def test_password_change_ends_sessions(api_client, county_accounts) -> None:
    r = api_client.post("/v1/auth/login", json={"username": "xj.clerk", "password": PASSWORD})
    csrf = r.json()["csrf_token"]
    new = "another long passphrase 42"
    r = api_client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 204
    assert api_client.get("/v1/me").status_code == 401
    assert (
        api_client.post("/v1/auth/login", json={"username": "xj.clerk", "password": new}).status_code == 200
    )


def test_rate_limit_per_account(api_settings, county_accounts) -> None:
    # A separate app with a tiny bucket: 3 requests, then 429 with Retry-After; another account unaffected.
    from starlette.testclient import TestClient

    from api.app import create_app

    # From the settings (YIZHANG_ACCOUNT_RATE_PER_S / YIZHANG_ACCOUNT_BURST), as `yizhang serve` builds it.
    settings = api_settings.model_copy(update={"account_rate_per_s": 0.001, "account_burst": 3})
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        clerk, other = county_accounts["xj.clerk"], county_accounts["mj.clerk"]
        codes = [client.get("/v1/me", headers=clerk.headers).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = client.get("/v1/me", headers=clerk.headers)
        assert r.json()["code"] == "RATE_LIMITED" and int(r.headers["retry-after"]) >= 1
        assert client.get("/v1/me", headers=other.headers).status_code == 200


def test_logs_never_carry_tokens_or_passwords(api_client, county_accounts) -> None:
    from api._observability import JsonFormatter

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("yizhang")
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        clerk = county_accounts["xj.clerk"]
        api_client.get("/v1/me", headers=clerk.headers)
        api_client.get("/v1/me?token=" + clerk.token, headers=clerk.headers)
        api_client.post("/v1/auth/login", json={"username": "xj.clerk", "password": PASSWORD})
        api_client.post("/v1/auth/login", json={"username": "xj.clerk", "password": PASSWORD + "x"})
        api_client.post("/v1/auth/login", content=b'{"username": "a", "password": ' + PASSWORD.encode())
        r = api_client.post("/v1/me/tokens", json={"name": "n"}, headers=clerk.headers)
        new_secret = r.json()["token"]
        logging.getLogger("yizhang.api").warning(
            f"oops Authorization: Bearer {new_secret} password={PASSWORD}"
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = buf.getvalue()
    assert '"route": "/v1/me"' in text  # the access log did write
    for secret in (clerk.token, PASSWORD, new_secret, "correct horse"):
        assert secret not in text


def test_token_check_reads_afresh_and_writes_last_used_at_once_a_minute(api_client, county_accounts) -> None:
    import pytest

    from api._accounts import authenticate_token, aware, get_account, revoke_token, utcnow
    from api._errors import Unauthenticated
    from api._storage import TokenRow
    from core.db import transaction

    services = api_client.app.state.services
    clerk = county_accounts["xj.clerk"]
    t0 = utcnow().replace(microsecond=0)
    issued = _issue(api_client, clerk.account_id, ttl=timedelta(hours=1), now=t0)

    def last_used():  # type: ignore[no-untyped-def]
        with transaction(services.sessions) as s:
            row = s.get(TokenRow, issued.token.token_id)
            assert row is not None
            return aware(row.last_used_at) if row.last_used_at else None

    account = authenticate_token(services.engine, issued.secret, now=t0)
    with transaction(services.sessions) as s:
        assert account == get_account(s, clerk.account_id)  # the Core row reads as the ORM row does
    assert last_used() == t0
    authenticate_token(services.engine, issued.secret, now=t0 + timedelta(seconds=59))
    assert last_used() == t0  # within the minute: a read, not a write
    authenticate_token(services.engine, issued.secret, now=t0 + timedelta(seconds=60))
    assert last_used() == t0 + timedelta(seconds=60)
    with pytest.raises(Unauthenticated) as expired:
        authenticate_token(services.engine, issued.secret, now=t0 + timedelta(hours=1))
    assert expired.value.code == "TOKEN_EXPIRED"
    with transaction(services.sessions) as s:
        revoke_token(s, issued.token.token_id, now=t0 + timedelta(seconds=61))
    with pytest.raises(Unauthenticated) as revoked:  # the next check sees it: nothing is cached
        authenticate_token(services.engine, issued.secret, now=t0 + timedelta(seconds=62))
    assert revoked.value.code == "TOKEN_REVOKED"
