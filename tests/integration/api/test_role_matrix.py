"""Every role × every guarded endpoint: a role reaches exactly the routes its permissions name.

The table under test is ``api._authz.ROLE_PERMISSIONS``; the expectations below are written out by hand so a
change to the table shows up here as a deliberate diff. docs/security.md ("Roles and permissions") is the
same table for people.

Read-only roles (issue 21): a role whose permissions only read (the auditor) reaches no write route
(POST/PUT/PATCH/DELETE) but its own account's (password, own tokens, logout). Generated from the route
table, so a new write route guarded by a read permission (as the webhooks were: SUPERVISION_READ) fails here.
"""

from __future__ import annotations

import re

from api._authz import access_of, iter_routes

# What each role may do, written out independently of the code.
EXPECTED = {
    "COUNTY_ADMIN": {
        "SELF",
        "ACCOUNTS_READ",
        "ACCOUNTS_ADMIN",
        "SEALS_READ",
        "SEALS_ADMIN",
        "SEALS_CUSTODY",
        "POLICY_READ",
        "POLICY_ADMIN",
        "AGREEMENTS_ADMIN",
        "LEDGER_READ",
        "LEDGER_CHECKPOINT",
        "SIGNING_READ",
        "REPORTS_READ",
        "SUPERVISION_READ",
        "SUPERVISION_ADMIN",
    },
    "DEPARTMENT_OFFICER": {
        "SELF",
        "SEALS_READ",
        "POLICY_READ",
        "AGREEMENTS_ADMIN",
        "SIGNING_READ",
        "DECISION_LIFECYCLE",
        "ATTEST",
        "REPORTS_READ",
        "SUPERVISION_READ",
        "SUPERVISION_ADMIN",
    },
    "TOWNSHIP_CLERK": {"SELF", "SEALS_READ", "POLICY_READ", "SIGNING_SUBMIT", "SIGNING_READ"},
    "TOWNSHIP_PRINCIPAL": {
        "SELF",
        "SEALS_READ",
        "POLICY_READ",
        "SIGNING_READ",
        "SIGNING_APPROVE",
        "DECISION_LIFECYCLE",
        "REPORTS_READ",
    },
    "SEAL_CUSTODIAN": {"SELF", "SEALS_READ", "SEALS_CUSTODY", "SIGNING_READ"},
    "AUDITOR": {
        "SELF",
        "ACCOUNTS_READ",
        "SEALS_READ",
        "POLICY_READ",
        "LEDGER_READ",
        "SIGNING_READ",
        "REPORTS_READ",
        "SUPERVISION_READ",
    },
}
ROLE_USER = {
    "COUNTY_ADMIN": "admin",
    "DEPARTMENT_OFFICER": "health.officer",
    "TOWNSHIP_CLERK": "xj.clerk",
    "TOWNSHIP_PRINCIPAL": "xj.principal",
    "SEAL_CUSTODIAN": "xj.custodian",
    "AUDITOR": "auditor",
}
# Never a password change or a token revocation in the sweep: they would change the callers.
SKIP = {("POST", "/v1/me/password")}
# Permissions that only read; SELF is the caller's own account (password, own tokens, logout).
READ_PERMISSIONS = {
    "ACCOUNTS_READ",
    "SEALS_READ",
    "POLICY_READ",
    "LEDGER_READ",
    "SIGNING_READ",
    "REPORTS_READ",
    "SUPERVISION_READ",
}
READ_ONLY_ROLES = {"AUDITOR"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _write_routes(app):  # type: ignore[no-untyped-def]
    """(method, path, needed permissions) of every guarded write route of the app."""
    out = []
    for route in iter_routes(app.routes):
        marker = access_of(route)
        if marker is None or marker[0] != "require":
            continue
        for method in sorted((getattr(route, "methods", None) or set()) & WRITE_METHODS):
            out.append((method, route.path, {p.value for p in marker[1]}))
    return out


def test_table_matches_the_written_expectation() -> None:
    from api._authz import ROLE_PERMISSIONS

    assert {r.value: {p.value for p in ps} for r, ps in ROLE_PERMISSIONS.items()} == EXPECTED


def test_every_role_against_every_guarded_route(sqlite_api_settings, county_accounts_sqlite) -> None:
    client, accounts = county_accounts_sqlite
    checked = 0
    for route in iter_routes(client.app.routes):
        marker = access_of(route)
        if marker is None or marker[0] != "require" or route.path.startswith("/ui/"):
            continue  # console pages authenticate by session only (tests/integration/console/)
        needed = {p.value for p in marker[1]}
        path = re.sub(r"\{[^}]+\}", "x-unknown", route.path)
        for method in sorted(route.methods - {"HEAD"}):
            if (method, route.path) in SKIP:
                continue
            for role, username in ROLE_USER.items():
                r = client.request(method, path, json={}, headers=accounts[username].headers)
                allowed = needed <= EXPECTED[role]
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
                code = body.get("code") if isinstance(body, dict) else None
                if allowed:
                    assert code != "ROLE_FORBIDDEN", (role, method, route.path)
                    assert r.status_code < 500 or r.status_code == 503, (role, method, route.path, r.text)
                else:
                    assert (r.status_code, code) == (403, "ROLE_FORBIDDEN"), (
                        role,
                        method,
                        route.path,
                        r.text,
                    )
                checked += 1
    assert checked > 100


def test_read_only_roles_are_the_roles_that_only_read() -> None:
    derived = {role for role, perms in EXPECTED.items() if perms <= READ_PERMISSIONS | {"SELF"}}
    assert derived == READ_ONLY_ROLES


def test_no_write_route_is_guarded_by_a_read_permission(sqlite_api_client) -> None:
    # Static, over the whole route table (API and console): a write needs a write permission, or is the
    # caller's own account (SELF alone).
    writes = _write_routes(sqlite_api_client.app)
    assert len(writes) > 30
    misguarded = [
        (m, p, sorted(n)) for m, p, n in writes if n != {"SELF"} and n <= READ_PERMISSIONS | {"SELF"}
    ]
    assert misguarded == []


def test_read_only_roles_reach_no_write_route(sqlite_api_settings, county_accounts_sqlite) -> None:
    # Over HTTP, generated from the route table: every write route (but the caller's own account) answers
    # 403 ROLE_FORBIDDEN to every read-only role, before any other check.
    client, accounts = county_accounts_sqlite
    checked = 0
    for method, route_path, needed in _write_routes(client.app):
        if needed == {"SELF"} or route_path.startswith("/ui/"):
            continue  # own account; console pages are swept with a session in tests/integration/console/
        path = re.sub(r"\{[^}]+\}", "x-unknown", route_path)
        for role in sorted(READ_ONLY_ROLES):
            caller = accounts[ROLE_USER[role]]
            r = client.request(method, path, json={}, headers=caller.headers)
            code = (
                r.json().get("code")
                if r.headers.get("content-type", "").startswith("application/json")
                else None
            )
            assert (r.status_code, code) == (403, "ROLE_FORBIDDEN"), (role, method, route_path, r.text)
            checked += 1
    assert checked > 30
