"""``/docs`` works on an intranet: Swagger UI comes from this deployment, nothing from outside (issue 20)."""

from __future__ import annotations

import re

#: Any absolute URL (or protocol-relative one) in an attribute or a CSP that a browser would fetch.
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//""", re.I)


def test_docs_page_loads_only_local_assets(sqlite_api_client) -> None:
    r = sqlite_api_client.get("/docs")
    assert r.status_code == 200
    page = r.text
    assert "/docs/assets/swagger-ui-bundle.js" in page and "/docs/assets/swagger-ui.css" in page
    assert EXTERNAL.search(page) is None, EXTERNAL.search(page)
    assert "cdn.jsdelivr.net" not in page and "validatorUrl" in page
    csp = r.headers["Content-Security-Policy"]
    assert "http" not in csp and "default-src 'none'" in csp and "script-src 'self'" in csp

    js = sqlite_api_client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) > 500_000 and b"SwaggerUIBundle" in js.content
    css = sqlite_api_client.get("/docs/assets/swagger-ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert sqlite_api_client.get("/docs/assets/favicon.png").status_code == 200
    assert sqlite_api_client.get("/openapi.json").json()["openapi"].startswith("3.")


def test_docs_assets_serve_only_the_pages_files(sqlite_api_client) -> None:
    for name in ("redoc.standalone.js", "..%2F__init__.py", "%2e%2e/core.py", "nothing.js"):
        assert sqlite_api_client.get(f"/docs/assets/{name}").status_code == 404
