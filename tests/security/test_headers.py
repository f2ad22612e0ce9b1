"""Issue 21, finding 14: what the service's answers say about themselves.

- ``/metrics`` answers only the scraper's bearer token (``YIZHANG_METRICS_TOKEN_SOURCE``); unset: 404.
- Every HTML answer carries a Content-Security-Policy (``/docs`` and the console keep their own).
- Session cookies are ``Secure`` unless the service is reached over plain http on loopback (the demo).
- The nginx example sends HSTS.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "scrape-7f3c1e9a0b2d4c6e8f"  # test-only


def _client(tmp_path: Path, **settings_over: Any) -> Any:
    from starlette.testclient import TestClient

    from api.app import create_app
    from core.db import migrate
    from core.settings import Settings

    url = f"sqlite:///{tmp_path / 'api.db'}"
    migrate(url)
    settings = Settings(home=tmp_path / "home", database_url=url, **settings_over)
    app = create_app(settings, account_rate=(1000.0, 10_000), webhook_interval_s=None)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Any]:
    with _client(tmp_path) as c:
        yield c


# --- /metrics -------------------------------------------------------------------------------------------


def test_metrics_are_not_public_without_a_token_configured(plain: Any) -> None:
    r = plain.get("/metrics")
    assert r.status_code == 404 and "yizhang_" not in r.text


def test_metrics_need_the_bearer_token(tmp_path: Path) -> None:
    source = tmp_path / "metrics.token"
    source.write_text(METRICS_TOKEN + "\n")
    with _client(tmp_path, metrics_token_source=f"file:{source}") as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/metrics", headers={"Authorization": METRICS_TOKEN}).status_code == 401
        r = c.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert r.status_code == 200 and "yizhang_http_requests_total" in r.text
        refused = c.get("/metrics", headers={"Authorization": "Bearer x"})
        assert refused.json()["code"] == "METRICS_TOKEN_INVALID"
        assert METRICS_TOKEN not in refused.text


# --- CSP on every HTML answer ---------------------------------------------------------------------------


def _html_gets(client: Any) -> list[str]:
    from api._authz import iter_routes

    paths = []
    for route in iter_routes(client.app.routes):
        path = getattr(route, "path", "")
        if "GET" in (getattr(route, "methods", None) or ()) and "{" not in path:
            paths.append(path)
    return sorted(set(paths))


def test_every_html_answer_has_a_csp(plain: Any) -> None:
    seen_html = []
    for path in [*_html_gets(plain), "/ui/no-such-page", "/verify?x=1"]:
        r = plain.get(path, follow_redirects=False)
        if r.headers.get("content-type", "").startswith("text/html"):
            seen_html.append(path)
            csp = r.headers.get("content-security-policy", "")
            assert "default-src 'none'" in csp or "default-src 'self'" in csp, (path, csp)
            assert "frame-ancestors 'none'" in csp, (path, csp)
    assert "/docs" in seen_html and "/ui/login" in seen_html, seen_html


def test_a_plain_html_response_gets_the_default_csp(tmp_path: Path) -> None:
    """A page added later without its own policy (here: a bare HTMLResponse route) still gets one."""
    from starlette.responses import HTMLResponse

    from api._html_headers import DEFAULT_CSP

    with _client(tmp_path) as c:
        c.app.router.add_route("/bare-page", lambda _request: HTMLResponse("<p>x</p>"), methods=["GET"])
        r = c.get("/bare-page")
        assert r.headers["content-security-policy"] == DEFAULT_CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        docs = c.get("/docs").headers["content-security-policy"]
        assert "script-src 'self'" in docs  # a page's own policy is kept


# --- cookies --------------------------------------------------------------------------------------------


def _login_cookie(client: Any) -> str:
    from tests._fixtures.api import PASSWORD, make_county_accounts

    make_county_accounts(client)
    r = client.post("/v1/auth/login", json={"username": "xj.clerk", "password": PASSWORD})
    assert r.status_code == 200, r.text
    (cookie,) = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
    return cookie


@pytest.mark.parametrize(
    ("over", "secure"),
    [
        ({"public_base_url": "http://seal.xingguo.example"}, True),  # reached over the network
        ({"public_base_url": "https://seal.xingguo.example"}, True),
        ({"public_base_url": "http://127.0.0.1:8000"}, False),  # the demo
        ({"public_base_url": "http://localhost:8000"}, False),
        ({"public_base_url": "http://seal.xingguo.example", "cookie_secure": False}, False),  # told so
        ({"public_base_url": "http://127.0.0.1:8000", "cookie_secure": True}, True),
    ],
)
def test_session_cookie_is_secure_outside_the_demo(
    tmp_path: Path, over: dict[str, Any], secure: bool
) -> None:
    with _client(tmp_path, **over) as c:
        cookie = _login_cookie(c)
    flags = {p.strip().lower() for p in cookie.split(";")[1:]}
    assert ("secure" in flags) is secure, cookie
    assert "httponly" in flags and "samesite=strict" in flags, cookie


def test_no_cookie_is_set_outside_the_helper() -> None:
    """Cookie flags are decided in one place (api/_cookies.py)."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "api").rglob("*.py")
        if p.name != "_cookies.py" and ".set_cookie(" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


# --- HSTS in the reverse-proxy example ------------------------------------------------------------------


def test_nginx_example_sends_hsts() -> None:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    server = re.search(r"```nginx\n(.*?)```", text, re.S)
    assert server is not None
    m = re.search(r'add_header\s+Strict-Transport-Security\s+"max-age=(\d+)[^"]*"\s+always;', server.group(1))
    assert m is not None and int(m.group(1)) >= 31536000
