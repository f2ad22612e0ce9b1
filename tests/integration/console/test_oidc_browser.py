"""OIDC login in a real headless Chromium: the console on ``localhost``, the provider on ``127.0.0.1``.

Two different sites, as in production: the callback is a cross-site navigation from the provider, so the
SameSite=Strict session cookie only reaches the landing page because the callback answers with a page that
moves on by itself (not a redirect). The app is served by uvicorn in a thread (SQLite, no token needed: the
test stops at the account page). Screenshots go to ``test-output/console/``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.console.conftest import SHOTS
from tests.oidc.op import OpenIdProvider, free_port

pytestmark = [pytest.mark.slow]

CLIENT = {"client_id": "yizhang", "client_secret": "yizhang-browser-test-secret-0123456789abcdef"}
USERS = [{"sub": "u-auditor", "preferred_username": "county.auditor", "name": "审计"}]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, OpenIdProvider]]:
    import uvicorn

    from api._accounts import create_account
    from api.app import create_app
    from core.db import migrate, transaction
    from core.settings import Settings

    port = free_port()
    base = f"http://localhost:{port}"
    op = OpenIdProvider(
        tmp_path, [{**CLIENT, "redirect_uris": [base + "/ui/login/oidc/callback"]}], USERS
    ).start()
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    migrate(url)
    settings = Settings(
        home=tmp_path / "home",
        database_url=url,
        public_base_url=base,
        oidc_issuer=op.issuer,
        oidc_client_id=CLIENT["client_id"],
        oidc_client_secret=CLIENT["client_secret"],
    )
    app = create_app(settings, webhook_interval_s=None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        with transaction(app.state.services.sessions) as s:
            create_account(
                s,
                username="county.auditor",
                display_name="县审计员",
                role="AUDITOR",
                org_code="xingguo",
                created_by="fixture",
            )
        yield base, op
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        op.stop()


def test_oidc_login_in_a_browser(served: tuple[str, OpenIdProvider], browser: Any) -> None:
    base, op = served
    context = browser.new_context(locale="zh-CN", viewport={"width": 1100, "height": 800})
    page = context.new_page()
    try:
        page.goto(base + "/ui/login")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "oidc-1-login.png"), full_page=True)
        page.click("#oidc-login")  # 使用统一身份认证登录
        page.wait_for_selector("#op-login")
        assert page.url.startswith(op.issuer + "/interaction/")
        page.fill("#op-login", "county.auditor")
        page.click("#op-submit")
        page.wait_for_url("**/ui/auditor", timeout=15_000)  # landed with the session (not sent to login)
        page.goto(base + "/ui/account")
        assert "县审计员" in page.content(), page.content()[:2000]
        page.screenshot(path=str(SHOTS / "oidc-2-account.png"), full_page=True)
        # The session is the console's own: logging out works with its CSRF token.
        page.click("#logout")
        page.wait_for_url("**/ui/login")
    finally:
        context.close()
