"""OpenID Connect login against a real OpenID Provider (panva/oidc-provider under node, tests/oidc/).

The app runs in-process (ASGI TestClient); the provider is a real HTTP server on 127.0.0.1. The test plays
the browser: it follows the app's redirect to the provider, signs in there, and brings the provider's
redirect back to the app's callback. Every refusal asserts its code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from tests.oidc.op import OpenIdProvider, sign_in

REDIRECT = "http://127.0.0.1:8000/ui/login/oidc/callback"  # the default public_base_url + callback path
CLIENT = {"client_id": "yizhang", "client_secret": "yizhang-test-client-secret-0123456789abcdef"}
OTHER = {"client_id": "other-app", "client_secret": "other-app-test-client-secret-0123456789abcdef"}
HS256_CLIENT = {
    "client_id": "yizhang-hs",
    "client_secret": "yizhang-hs-test-client-secret-0123456789abcdef",
    "id_token_signed_response_alg": "HS256",
}
USERS = [
    {"sub": "u-clerk", "preferred_username": "xj.clerk", "name": "兴江乡窗口"},
    {"sub": "u-principal", "preferred_username": "xj.principal", "name": "兴江乡负责人"},
    {"sub": "u-ghost", "preferred_username": "ghost.person", "name": "无账号"},
    {"sub": "u-admin", "preferred_username": "Admin", "name": "管理员", "acr": "urn:yizhang:test:mfa"},
    # Another person at the provider claiming the clerk's username (issue 21, finding 15); signs in by sub.
    {"sub": "u-impostor", "preferred_username": "xj.clerk", "name": "冒名者"},
]
JSON = {"Accept": "application/json"}
PEOPLE = (  # the local accounts (username, role, organisation, service centre)
    ("admin", "COUNTY_ADMIN", "xingguo", None),
    ("xj.clerk", "TOWNSHIP_CLERK", "xingjiang", "xingjiang-centre"),
    ("xj.principal", "TOWNSHIP_PRINCIPAL", "xingjiang", "xingjiang-centre"),
)


def _clients() -> list[dict[str, Any]]:
    return [{**c, "redirect_uris": [REDIRECT]} for c in (CLIENT, OTHER, HS256_CLIENT)]


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    provider = OpenIdProvider(tmp_path_factory.mktemp("op"), _clients(), USERS).start()
    try:
        yield provider
    finally:
        provider.stop()


def _settings(db_url: str, home: Path, issuer: str, client: dict[str, Any] = CLIENT, **extra: Any) -> Any:
    from core.settings import Settings

    return Settings(
        home=home,
        database_url=db_url,
        oidc_issuer=issuer,
        oidc_client_id=client["client_id"],
        oidc_client_secret=client["client_secret"],
        **extra,
    )


def _sqlite(tmp_path: Path) -> str:
    from core.db import migrate

    url = f"sqlite:///{tmp_path / 'oidc.db'}"
    migrate(url)
    return url


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Any]:
    """Builds a served app (with the county's accounts) for given OIDC settings; closes them all after."""
    from api._accounts import create_account
    from api.app import create_app
    from core.db import transaction

    opened: list[TestClient] = []

    def make(
        issuer: str, client: dict[str, Any] = CLIENT, db_url: str | None = None, **extra: Any
    ) -> TestClient:
        n = len(opened)
        if db_url is None:
            (tmp_path / f"db{n}").mkdir()
            db_url = _sqlite(tmp_path / f"db{n}")
        settings = _settings(db_url, tmp_path / f"home{n}", issuer, client, **extra)
        tc = TestClient(create_app(settings, public_rate=(1000.0, 1000)), raise_server_exceptions=False)
        tc.__enter__()
        opened.append(tc)
        with transaction(tc.app.state.services.sessions) as s:
            for username, role, org, centre in PEOPLE:  # no passwords: argon2 is slow on purpose
                create_account(
                    s,
                    username=username,
                    display_name=username,
                    role=role,
                    org_code=org,
                    service_centre=centre,
                    created_by="fixture",
                )
        return tc

    yield make
    for tc in opened:
        tc.__exit__(None, None, None)


def _start(app: TestClient) -> str:
    r = app.get("/ui/login/oidc", follow_redirects=False)
    assert r.status_code == 303, r.text
    assert app.cookies.get("yz_oidc")
    location = r.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert query["state"][0] and query["nonce"][0] and query["code_challenge"][0]
    return location


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _login(app: TestClient, login: str, **headers: str) -> httpx.Response:
    callback = sign_in(_start(app), login)
    return app.get(_local(callback), headers=headers, follow_redirects=False)


def test_full_login_opens_a_console_session(op, app_factory, db_url, caplog) -> None:
    caplog.set_level(logging.INFO)
    app = app_factory(op.issuer, db_url=db_url)
    page = app.get("/ui/login")
    assert "使用统一身份认证登录" in page.text and 'href="/ui/login/oidc"' in page.text

    callback = sign_in(_start(app), "xj.clerk")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    r = app.get(_local(callback), follow_redirects=False)
    assert r.status_code == 200, r.text
    assert 'http-equiv="refresh" content="0;url=/ui/clerk"' in r.text
    assert not app.cookies.get("yz_oidc")  # the state cookie is spent
    assert app.cookies.get("yz_session")

    me = app.get("/v1/me")
    assert me.status_code == 200 and me.json()["username"] == "xj.clerk"
    # The same console session as a password login: pages work, forms need its CSRF token.
    account_page = app.get("/ui/account")
    assert account_page.status_code == 200 and "xj.clerk" in account_page.text
    csrf = account_page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = app.post("/v1/me/tokens", json={"name": "x", "ttl_days": 1})
    assert refused.status_code == 403 and refused.json()["code"] == "CSRF_FAILED"
    assert app.post("/ui/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert app.get("/v1/me").json()["code"] in {"UNAUTHENTICATED", "SESSION_INVALID"}

    # Logged without tokens: neither the code nor any JWT reaches the logs.
    # (The test's own TestClient logs the callback URL it calls; only the app's records count here.)
    logged = "\n".join(
        f"{rec.getMessage()} {rec.__dict__}"
        for rec in caplog.records
        if rec.name.startswith("yizhang") or (rec.name == "httpx" and "testserver" not in rec.getMessage())
    )
    assert code not in logged and "eyJ" not in logged and CLIENT["client_secret"] not in logged
    assert any(getattr(rec, "method", None) == "oidc" for rec in caplog.records)


def test_json_clients_get_json(op, app_factory) -> None:
    app = app_factory(op.issuer)
    r = _login(app, "xj.clerk", **JSON)
    assert r.status_code == 200 and r.json()["username"] == "xj.clerk" and r.json()["location"] == "/ui/clerk"


def test_unknown_account_refused(op, app_factory) -> None:
    app = app_factory(op.issuer)
    r = _login(app, "ghost.person", **JSON)
    assert r.status_code == 403 and r.json()["code"] == "OIDC_ACCOUNT_UNKNOWN"
    assert not app.cookies.get("yz_session")
    page = _login(app, "ghost.person")  # a browser gets the login page with the reason and the code
    assert page.status_code == 403 and "OIDC_ACCOUNT_UNKNOWN" in page.text and "没有对应账号" in page.text


def test_accounts_are_bound_by_issuer_and_subject(op, app_factory) -> None:
    """The first login binds the account to (issuer, subject); another subject with the same
    preferred_username is refused, the bound one still gets in (issue 21, finding 15)."""
    from api._accounts import get_account_by_username
    from api._storage import AccountRow
    from core.db import transaction

    app = app_factory(op.issuer)
    first = _login(app, "xj.clerk", **JSON)  # sub u-clerk
    assert first.status_code == 200, first.text
    with transaction(app.app.state.services.sessions) as s:
        row = s.get(AccountRow, get_account_by_username(s, "xj.clerk").account_id)
        assert (row.oidc_issuer, row.oidc_subject) == (op.issuer, "u-clerk")
    app.cookies.clear()
    impostor = _login(app, "u-impostor", **JSON)  # preferred_username xj.clerk, another subject
    assert impostor.status_code == 403 and impostor.json()["code"] == "OIDC_SUBJECT_MISMATCH", impostor.text
    assert "yz_session" not in impostor.cookies
    app.cookies.clear()
    again = _login(app, "xj.clerk", **JSON)
    assert again.status_code == 200 and again.json()["username"] == "xj.clerk"


def test_disabled_account_refused(op, app_factory) -> None:
    from api._accounts import get_account_by_username, set_disabled
    from core.db import transaction

    app = app_factory(op.issuer)
    with transaction(app.app.state.services.sessions) as s:
        set_disabled(s, get_account_by_username(s, "xj.principal").account_id, True)
    r = _login(app, "xj.principal", **JSON)
    assert r.status_code == 403 and r.json()["code"] == "OIDC_ACCOUNT_DISABLED"
    assert not app.cookies.get("yz_session")


def test_username_claim_is_matched_case_insensitively_and_required_claim_enforced(op, app_factory) -> None:
    app = app_factory(op.issuer, oidc_required_claim="acr", oidc_required_claim_value="urn:yizhang:test:mfa")
    weak = _login(app, "xj.clerk", **JSON)
    assert weak.status_code == 403 and weak.json()["code"] == "OIDC_CLAIM_REQUIRED"
    strong = _login(app, "Admin", **JSON)  # preferred_username "Admin" → local account "admin"
    assert strong.status_code == 200 and strong.json()["username"] == "admin", strong.text


def test_tampered_state_refused(op, app_factory) -> None:
    app = app_factory(op.issuer)
    callback = sign_in(_start(app), "xj.clerk")
    query = parse_qs(urlsplit(callback).query)
    forged = {**{k: v[0] for k, v in query.items()}, "state": secrets.token_urlsafe(32)}
    r = app.get("/ui/login/oidc/callback?" + urlencode(forged), headers=JSON)
    assert r.status_code == 400 and r.json()["code"] == "OIDC_STATE_INVALID"
    assert not app.cookies.get("yz_session")

    # Another browser (no state cookie) bringing a valid callback: refused too (login CSRF).
    callback = sign_in(_start(app), "xj.clerk")
    app.cookies.delete("yz_oidc", path="/ui/login/oidc")
    r = app.get(_local(callback), headers=JSON)
    assert r.status_code == 400 and r.json()["code"] == "OIDC_STATE_INVALID"

    # A forged state cookie does not decrypt.
    callback = sign_in(_start(app), "xj.clerk")
    app.cookies.set("yz_oidc", "A" * 120, domain="testserver.local", path="/ui/login/oidc")
    r = app.get(_local(callback), headers={**JSON, "Cookie": "yz_oidc=" + "A" * 120})
    assert r.status_code == 400 and r.json()["code"] == "OIDC_STATE_INVALID"


def test_replayed_callback_refused(op, app_factory) -> None:
    app = app_factory(op.issuer)
    callback = sign_in(_start(app), "xj.clerk")
    state_cookie = app.cookies.get("yz_oidc")
    assert app.get(_local(callback), headers=JSON).status_code == 200
    # The same browser again: its state cookie is spent.
    again = app.get(_local(callback), headers=JSON)
    assert again.status_code == 400 and again.json()["code"] == "OIDC_STATE_INVALID"
    # Someone who kept the state cookie too: the provider's code is single-use.
    fresh = TestClient(app.app, raise_server_exceptions=False)
    replay = fresh.get(_local(callback), headers={**JSON, "Cookie": f"yz_oidc={state_cookie}"})
    assert replay.status_code == 401 and replay.json()["code"] == "OIDC_TOKEN_REQUEST_FAILED"
    assert not fresh.cookies.get("yz_session")


def test_tampered_issuer_parameter_refused(op, app_factory) -> None:
    app = app_factory(op.issuer)
    callback = sign_in(_start(app), "xj.clerk")
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert query.get("iss") == op.issuer  # the provider sends RFC 9207's iss
    query["iss"] = "https://evil.example"
    r = app.get("/ui/login/oidc/callback?" + urlencode(query), headers=JSON)
    assert r.status_code == 401 and r.json()["code"] == "OIDC_ISSUER_MISMATCH"


def test_provider_refusal_is_reported(op, app_factory) -> None:
    app = app_factory(op.issuer)
    r = _login(app, "nobody-at-the-provider", **JSON)
    assert r.status_code == 401 and r.json()["code"] == "OIDC_PROVIDER_REFUSED"


# -- a second client: its codes and its tokens are not ours ------------------------------------------------


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _other_app_tokens(op: OpenIdProvider, login: str) -> tuple[dict[str, Any], str]:
    """The test as another relying party at the same provider: its own code, then its own tokens."""
    meta = httpx.get(op.issuer + "/.well-known/openid-configuration").json()
    verifier, challenge = _pkce()
    nonce = secrets.token_urlsafe(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": OTHER["client_id"],
            "redirect_uri": REDIRECT,
            "scope": "openid profile",
            "state": "s",
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    callback = sign_in(meta["authorization_endpoint"] + "?" + query, login)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    tokens = httpx.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(OTHER["client_id"], OTHER["client_secret"]),
    )
    assert tokens.status_code == 200, tokens.text
    return tokens.json(), nonce


def test_code_issued_to_another_client_refused(op, app_factory) -> None:
    app = app_factory(op.issuer)
    meta = httpx.get(op.issuer + "/.well-known/openid-configuration").json()
    ours = parse_qs(urlsplit(sign_in(_start(app), "xj.clerk")).query)
    # A code the provider issued to other-app (its PKCE), pasted into our callback with our valid state.
    _verifier, challenge = _pkce()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": OTHER["client_id"],
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "state": "x",
            "nonce": "n",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    foreign = parse_qs(urlsplit(sign_in(meta["authorization_endpoint"] + "?" + query, "xj.clerk")).query)
    mixed = {"code": foreign["code"][0], "state": ours["state"][0], "iss": op.issuer}
    r = app.get("/ui/login/oidc/callback?" + urlencode(mixed), headers=JSON)
    assert r.status_code == 401 and r.json()["code"] == "OIDC_TOKEN_REQUEST_FAILED"


def test_id_token_checks_with_real_tokens(op) -> None:
    """A real ID token issued to another client, then altered: audience, signature, expiry, nonce, alg."""
    from api._errors import Unauthenticated
    from api._oidc import OidcClient, OidcConfig

    tokens, nonce = _other_app_tokens(op, "xj.clerk")
    raw = tokens["id_token"]
    ours = OidcClient(
        OidcConfig(
            issuer=op.issuer,
            client_id=CLIENT["client_id"],
            client_secret=CLIENT["client_secret"],
            scopes="openid profile",
            username_claim="preferred_username",
            required_claim=None,
            required_claim_value=None,
            redirect_uri=REDIRECT,
            timeout_s=5,
        )
    )
    theirs = OidcClient(OidcConfig(**{**ours.config.__dict__, "client_id": OTHER["client_id"]}))
    try:
        claims = theirs.verify_id_token(raw, nonce=nonce)  # valid for the client it was issued to
        assert claims["sub"] == "u-clerk"

        def code_of(client: OidcClient, token: str, **kw: Any) -> str:
            with pytest.raises(Unauthenticated) as err:
                client.verify_id_token(token, nonce=kw.pop("nonce", nonce), **kw)
            return err.value.code

        assert code_of(ours, raw) == "OIDC_AUDIENCE_MISMATCH"
        head, body, sig = raw.split(".")
        flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
        assert code_of(theirs, f"{head}.{body}.{flipped}") == "OIDC_ID_TOKEN_SIGNATURE"
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        forged_body = (
            base64.urlsafe_b64encode(json.dumps({**payload, "aud": CLIENT["client_id"]}).encode())
            .rstrip(b"=")
            .decode()
        )
        assert code_of(ours, f"{head}.{forged_body}.{sig}") == "OIDC_ID_TOKEN_SIGNATURE"
        assert code_of(theirs, raw, now=payload["exp"] + 3600) == "OIDC_ID_TOKEN_EXPIRED"
        assert code_of(theirs, raw, nonce="another-login") == "OIDC_NONCE_MISMATCH"
        none_head = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
        assert code_of(theirs, f"{none_head}.{body}.") == "OIDC_ID_TOKEN_ALG"
        unknown_kid = base64.urlsafe_b64encode(b'{"alg":"RS256","kid":"not-a-key"}').rstrip(b"=").decode()
        assert code_of(theirs, f"{unknown_kid}.{body}.{sig}") == "OIDC_ID_TOKEN_KEY_UNKNOWN"
    finally:
        ours.close()
        theirs.close()


def test_hs256_id_token_refused(op, app_factory) -> None:
    """A provider that signs ID tokens with the client secret (HS256): refused, whatever it says."""
    app = app_factory(op.issuer, client=HS256_CLIENT)
    r = _login(app, "xj.clerk", **JSON)
    assert r.status_code == 401 and r.json()["code"] == "OIDC_ID_TOKEN_ALG"


def test_issuer_mismatch_in_discovery_refused(op, app_factory) -> None:
    # The same provider under another name: its discovery document names 127.0.0.1, not localhost.
    app = app_factory(op.issuer.replace("127.0.0.1", "localhost"))
    r = app.get("/ui/login/oidc", headers=JSON, follow_redirects=False)
    assert r.status_code == 503 and r.json()["code"] == "OIDC_DISCOVERY_INVALID"


# -- key rotation and a provider that is down ---------------------------------------------------------------


@pytest.fixture
def own_op(tmp_path: Path) -> Iterator[OpenIdProvider]:
    provider = OpenIdProvider(tmp_path, _clients(), USERS, key_type="EC").start()
    try:
        yield provider
    finally:
        provider.stop()


def test_key_rotation_refetches_the_key_set(own_op, app_factory, monkeypatch) -> None:
    import api._oidc

    app = app_factory(own_op.issuer)
    assert _login(app, "xj.clerk", **JSON).status_code == 200  # ES256, key-1, now cached
    own_op.restart()  # same issuer, new key (key-2)
    monkeypatch.setattr(api._oidc, "JWKS_REFETCH_COOLDOWN_S", 0.0)
    r = _login(app, "xj.clerk", **JSON)
    assert r.status_code == 200, r.text


def test_provider_down_is_a_clear_error(own_op, app_factory) -> None:
    app = app_factory(own_op.issuer)
    # Down between the redirect and the callback: the code cannot be redeemed.
    callback = sign_in(_start(app), "xj.clerk")
    own_op.stop()
    r = app.get(_local(callback), headers=JSON)
    assert r.status_code == 503 and r.json()["code"] == "OIDC_PROVIDER_UNAVAILABLE"
    # Down from the start (a fresh app has no discovery document cached).
    fresh = app_factory(own_op.issuer)
    r = fresh.get("/ui/login/oidc", headers=JSON, follow_redirects=False)
    assert r.status_code == 503 and r.json()["code"] == "OIDC_PROVIDER_UNAVAILABLE"
    page = fresh.get("/ui/login/oidc", follow_redirects=False)
    assert page.status_code == 503 and "OIDC_PROVIDER_UNAVAILABLE" in page.text and "暂不可用" in page.text


def test_oidc_disabled_without_issuer(sqlite_api_client) -> None:
    assert "统一身份认证" not in sqlite_api_client.get("/ui/login").text
    r = sqlite_api_client.get("/ui/login/oidc", headers=JSON, follow_redirects=False)
    assert r.status_code == 404 and r.json()["code"] == "OIDC_DISABLED"
    r = sqlite_api_client.get("/ui/login/oidc/callback?code=x&state=y", headers=JSON)
    assert r.status_code == 404 and r.json()["code"] == "OIDC_DISABLED"


def test_plain_http_issuer_refused_at_startup(tmp_path: Path) -> None:
    from api._oidc import OidcConfig
    from core.errors import BadInput

    settings = _settings("sqlite://", tmp_path, "http://idp.example", CLIENT)
    with pytest.raises(BadInput) as err:
        OidcConfig.from_settings(settings)
    assert err.value.code == "OIDC_CONFIG_INVALID"
