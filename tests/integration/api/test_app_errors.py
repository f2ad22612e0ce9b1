"""The app factory over real HTTP: one error shape, the status table, body limits, health and metrics."""

from __future__ import annotations

import json

import pytest
from fastapi import Depends
from starlette.testclient import TestClient

from api._authz import public
from core.errors import (
    BadInput,
    Conflict,
    KeystoreError,
    NotFound,
    PermissionDenied,
    PolicyDenied,
    Unavailable,
)

SHAPE = {"code", "message", "message_en", "message_zh", "family", "request_id"}

RAISED = {
    "bad": (BadInput("SOME_BAD_INPUT", "bad", "坏"), 400),
    "missing": (NotFound("SEAL_NOT_FOUND", "no seal", "无此印章"), 404),
    "conflict": (Conflict("ILLEGAL_TRANSITION", "no", "不可"), 409),
    "denied": (
        PolicyDenied(
            "POLICY_DENIED",
            "denied",
            "拒绝",
            details={"reasons": [{"code": "MATTER_NOT_HELD", "message_en": "x", "message_zh": "y"}]},
        ),
        403,
    ),
    "forbidden": (PermissionDenied("OTHER_ORGANISATION", "no", "不可"), 403),
    "down": (Unavailable("TSA_DOWN", "down", "不可用"), 503),
    "token": (KeystoreError("TOKEN_MISSING", "token", "令牌"), 503),
}


@pytest.fixture
def raising_client(sqlite_api_settings):  # type: ignore[no-untyped-def]
    from api.app import create_app

    app = create_app(sqlite_api_settings)

    def raiser(exc: Exception):  # type: ignore[no-untyped-def]
        def raise_it() -> None:
            raise exc

        return raise_it

    for name, (exc, _) in RAISED.items():
        app.add_api_route(f"/test/{name}", raiser(exc), dependencies=[Depends(public())])

    def boom() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    app.add_api_route("/test/boom", boom, dependencies=[Depends(public())])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("name", sorted(RAISED))
def test_service_errors_map_to_one_status_table(raising_client, name: str) -> None:
    exc, status = RAISED[name]
    r = raising_client.get(f"/test/{name}")
    assert r.status_code == status
    body = r.json()
    assert SHAPE <= set(body)
    assert body["code"] == exc.code
    assert body["request_id"] == r.headers["x-request-id"]
    if name == "denied":
        assert [x["code"] for x in body["reasons"]] == ["MATTER_NOT_HELD"]


def test_unexpected_exception_is_500_internal_without_trace(raising_client) -> None:
    r = raising_client.get("/test/boom")
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "INTERNAL"
    assert "passwd" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text


def test_request_id_is_echoed_or_made(sqlite_api_client) -> None:
    r = sqlite_api_client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = sqlite_api_client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert r.headers["x-request-id"] != "bad id\twith junk" and len(r.headers["x-request-id"]) == 16


def test_unknown_route_and_method(sqlite_api_client) -> None:
    r = sqlite_api_client.get("/v1/no-such-thing")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    r = sqlite_api_client.put("/healthz")
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"


def test_validation_errors_are_422_without_the_input(sqlite_api_client) -> None:
    r = sqlite_api_client.post(
        "/v1/auth/login", json={"username": "x", "password": 12345678901234, "junk": 1}
    )
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "VALIDATION_FAILED" and SHAPE <= set(body)
    assert "12345678901234" not in r.text
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "password"), ("body", "junk")}


@pytest.mark.parametrize(
    "content",
    [b"{", b"\xff\xfe\x00garbage", b"[]", b'{"username": null}', b"null", b'"' + b"a" * 1000 + b'"'],
)
def test_malformed_json_is_4xx_never_500(sqlite_api_client, content: bytes) -> None:
    r = sqlite_api_client.post(
        "/v1/auth/login", content=content, headers={"Content-Type": "application/json"}
    )
    assert 400 <= r.status_code < 500, r.text
    assert SHAPE <= set(r.json())


def test_oversized_body_refused_by_content_length_before_reading(sqlite_api_client) -> None:
    # The header alone decides: the body sent is tiny, the declared length is over the 1 MiB default.
    r = sqlite_api_client.post(
        "/v1/auth/login",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(64 * 1024 * 1024)},
    )
    assert r.status_code == 413
    assert r.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_oversized_streamed_body_refused_before_read_whole(sqlite_api_settings) -> None:
    """A chunked body without Content-Length is counted as it streams; reading stops at the limit."""
    import asyncio

    from api.app import DEFAULT_MAX_BODY, create_app

    api_app = create_app(sqlite_api_settings)

    chunk = b"x" * 65536
    total_chunks = (DEFAULT_MAX_BODY // len(chunk)) * 4
    pulled = 0
    sent: list[dict] = []

    async def run() -> None:
        nonlocal pulled

        async def receive() -> dict:
            nonlocal pulled
            pulled += 1
            return {"type": "http.request", "body": chunk, "more_body": pulled < total_chunks}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/auth/login",
            "raw_path": b"/v1/auth/login",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
            "client": ("127.0.0.1", 1),
            "server": ("test", 80),
            "root_path": "",
        }
        await api_app(scope, receive, send)

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert [m for m in sent if m["type"] == "http.response.start"] == [start]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 413
    assert json.loads(body)["code"] == "PAYLOAD_TOO_LARGE"
    assert pulled < total_chunks  # stopped early: the rest of the body was never read
    assert pulled * len(chunk) <= DEFAULT_MAX_BODY + len(chunk)


def test_healthz_and_readyz_with_database(api_client) -> None:
    assert api_client.get("/healthz").json() == {"status": "ok"}
    r = api_client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok"}


def test_readyz_503_when_configured_token_is_not_reachable(sqlite_api_settings, tmp_path) -> None:
    from api.app import create_app

    # A configured token (the home has a SoftHSM config) that cannot be opened: not ready.
    home = sqlite_api_settings.home
    home.mkdir(parents=True, exist_ok=True)
    (home / "softhsm2.conf").write_text(f"directories.tokendir = {tmp_path / 'no-tokens'}\n")
    with TestClient(create_app(sqlite_api_settings), raise_server_exceptions=False) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok" and body["checks"]["token"] != "ok"


def test_readyz_503_when_database_is_down(tmp_path) -> None:
    from api.app import create_app
    from core.settings import Settings

    settings = Settings(home=tmp_path, database_url="postgresql://postgres@127.0.0.1:1/nothing")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["database"] != "ok"


def test_metrics_count_requests_by_route_template(sqlite_api_client) -> None:
    sqlite_api_client.get("/healthz")
    sqlite_api_client.get("/v1/accounts/some-id")  # 401, labelled by template, not by id
    from tests._fixtures.api import METRICS_AUTH

    text = sqlite_api_client.get("/metrics", headers=METRICS_AUTH).text
    assert 'yizhang_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/accounts/{account_id}",status="401"' in text
    assert "some-id" not in text
    assert "yizhang_http_request_duration_seconds_bucket" in text


def test_openapi_document_is_served(sqlite_api_client) -> None:
    spec = sqlite_api_client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/v1/signing-requests",
        "/v1/seals/{seal_id}",
        "/v1/verify",
        "/v1/tsa",
        "/v1/public/proofs/{index}",
    ):
        assert path in spec["paths"], path
    assert not any(p.startswith("/ui/") for p in spec["paths"])
    # Guarded operations declare the bearer scheme; public ones do not.
    assert spec["paths"]["/v1/me"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/v1/verify"]["post"]
    assert spec["paths"]["/v1/tsa"]["post"]["security"] == [{"bearer": []}]  # not a public oracle
