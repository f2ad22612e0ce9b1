"""Every role × every guarded endpoint: a role reaches exactly the routes its permissions name.

The table under test is ``api._authz.ROLE_PERMISSIONS``; the expectations below are written out by hand so a
change to the table shows up here as a deliberate diff.
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
