"""``/docs`` renders in a real headless Chromium with the network to the outside cut off (issue 20).

Township networks are intranets. The browser here is started so that nothing beyond loopback can answer:
every host name resolves to nothing (``--host-resolver-rules``) and every proxied request goes to a
closed loopback port (``--proxy-server``); on top of that, Playwright intercepts each request and aborts
any whose host is not 127.0.0.1, ::1 or localhost. The test shows that cut is live (an outside URL fails),
then loads ``/docs`` from the served demo county and asserts Swagger UI drew the API's operations, and
that no request the page made (scripts, styles, images, the OpenAPI document) left loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.console.conftest import CHROMIUM, CHROMIUM_ARGS, SHOTS, County

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]

LOOPBACK = {"127.0.0.1", "::1", "[::1]", "localhost"}
#: Nothing resolves except loopback; anything proxied goes to the discard port, where nothing listens.
OFFLINE_ARGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1;localhost;[::1]",
]
#: Where FastAPI's default page would take Swagger UI from (the reason /docs was blank on an intranet).
CDN_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return (parts.hostname or "") in LOOPBACK


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not installed (scripts/test.sh installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + OFFLINE_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_docs_render_with_the_outside_network_blocked(county: County, offline_browser: Any) -> None:
    context = offline_browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    requested: list[str] = []
    refused: list[str] = []
    failed: list[str] = []

    def gate(route: Any) -> None:
        url = route.request.url
        if _is_loopback(url):
            route.continue_()
        else:
            refused.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", gate)
    try:
        # the cut is live: the CDN that FastAPI's stock page uses cannot be reached from this browser
        probe = context.new_page()
        with pytest.raises(Exception, match="ERR_INTERNET_DISCONNECTED"):
            probe.goto(CDN_URL, timeout=15_000)
        probe.close()
        assert refused == [CDN_URL]
        refused.clear()

        page = context.new_page()
        page.on("request", lambda r: requested.append(r.url))
        page.on("requestfailed", lambda r: failed.append(r.url))
        response = page.goto(county.base + "/docs", wait_until="networkidle", timeout=60_000)
        assert response is not None and response.status == 200
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert "Yizhang" in page.inner_text(".swagger-ui .info .title")
        paths = page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
        assert len(paths) > 20, paths
        assert any(p.replace("\u200b", "").startswith("/v1/verify") for p in paths), paths
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "docs-offline.png"))

        # the page fetched its script, style and the OpenAPI document, every one from the served deployment
        assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in requested), requested
        assert any(u.endswith("/docs/assets/swagger-ui.css") for u in requested), requested
        assert any(u.endswith("/openapi.json") for u in requested), requested
        assert [u for u in requested if not _is_loopback(u)] == []
        assert refused == [] and failed == [], (refused, failed)
    finally:
        context.close()
