"""Every route declares its access rule: ``require(...)`` or ``public()``. A new endpoint cannot escape."""

from __future__ import annotations

from starlette.routing import Route

from api._authz import access_of, iter_routes

# The framework's own pages: the OpenAPI document and its viewer (no data), with the viewer's local assets.
FRAMEWORK_PUBLIC = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/docs/assets/{name}"}
# The public surface, on purpose. Adding to it is a decision, so it is listed here.
EXPECTED_PUBLIC_PREFIXES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/auth/",
    "/v1/public/",
    "/v1/verify",  # not /v1/tsa: the county TSA answers accounts that seal only (issue 18)
    "/pki/",
    "/ui/login",  # the console area's login page
    "/verify",  # the public verification page (issue 7)
)


def test_every_route_declares_require_or_public(sqlite_api_client) -> None:
    unguarded = []
    public_routes = []
    for route in iter_routes(sqlite_api_client.app.routes):
        path = getattr(route, "path", "?")
        if path in FRAMEWORK_PUBLIC:
            continue
        marker = access_of(route)
        if marker is None:
            unguarded.append((path, sorted(getattr(route, "methods", None) or [])))
        elif marker[0] == "public":
            public_routes.append(path)
    assert unguarded == [], f"routes without require()/public(): {unguarded}"
    stray = [p for p in public_routes if not p.startswith(EXPECTED_PUBLIC_PREFIXES)]
    assert stray == [], f"public routes outside the agreed public surface: {stray}"


def test_route_walk_sees_every_route(sqlite_api_client) -> None:
    # A sanity check on the walker itself: it reaches into included routers.
    paths = {getattr(r, "path", None) for r in iter_routes(sqlite_api_client.app.routes)}
    assert {"/healthz", "/v1/me", "/v1/accounts/{account_id}"} <= paths


def test_walk_catches_an_unguarded_route(sqlite_api_settings) -> None:
    from api.app import create_app

    app = create_app(sqlite_api_settings)

    def sneaky() -> dict[str, str]:
        return {}

    app.add_api_route("/v1/sneaky", sneaky)
    found = [r for r in iter_routes(app.routes) if getattr(r, "path", "") == "/v1/sneaky"]
    assert found and isinstance(found[0], Route) and access_of(found[0]) is None
