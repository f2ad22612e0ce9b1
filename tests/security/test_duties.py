"""Separation of duties (issue 21, findings 1, 2 and 10): nobody obtains another person's credentials, every
account-administration act is in the ledger with its actor, read-only roles write nothing, one person with
two accounts cannot approve their own request, and a reset, a change or a disabling ends credentials for good.

Real HTTP through the ASGI app, real databases (SQLite and PostgreSQL), the real ledger; the approval test
uses a real SoftHSM token and seals.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests._fixtures.api import PASSWORD
from tests.integration.api.test_signing_workflow import HEALTH_LICENCE_FIRST, XJ, _submit, county

__all__ = ["county"]  # the signing workflow's county (real token, seals, policies), used below

NEW_PASSWORD = "a brand new passphrase 77"


def _account_entries(services: Any) -> list[dict[str, Any]]:
    """Every ACCOUNT_CHANGED entry, its body with its salted fields opened (as an auditor reads them)."""
    from ledger import EntryKind

    ledger = services.ledger
    out = []
    for i in range(ledger.size()):
        entry = ledger.get(i)
        if entry.kind is EntryKind.ACCOUNT_CHANGED:
            out.append({**entry.body, **ledger.personal_data(i), "_personal": set(entry.personal)})
    return out


def _login(client: Any, username: str, password: str) -> Any:
    client.cookies.clear()
    return client.post("/v1/auth/login", json={"username": username, "password": password})


# --- finding 1: an administrator never holds another person's credentials ---------------------------------


def test_admin_cannot_mint_tokens_for_others(api_client, county_accounts) -> None:
    admin, clerk, principal = (county_accounts[u] for u in ("admin", "xj.clerk", "xj.principal"))
    for target in (clerk, principal):
        before = api_client.get(f"/v1/accounts/{target.account_id}/tokens", headers=admin.headers).json()
        r = api_client.post(
            f"/v1/accounts/{target.account_id}/tokens", json={"name": "window pc"}, headers=admin.headers
        )
        assert r.status_code == 403 and r.json()["code"] == "TOKEN_FOR_ANOTHER_ACCOUNT", r.text
        assert "token" not in r.json()
        after = api_client.get(f"/v1/accounts/{target.account_id}/tokens", headers=admin.headers).json()
        assert after == before
    # The person mints their own; the administrator's own account through the same route is fine.
    r = api_client.post("/v1/me/tokens", json={"name": "mine"}, headers=clerk.headers)
    assert r.status_code == 201
    r = api_client.post(
        f"/v1/accounts/{admin.account_id}/tokens", json={"name": "mine"}, headers=admin.headers
    )
    assert r.status_code == 201


def test_password_reset_forces_a_change_before_anything_else(api_client, county_accounts) -> None:
    admin, clerk = county_accounts["admin"], county_accounts["xj.clerk"]
    r = api_client.patch(
        f"/v1/accounts/{clerk.account_id}", json={"password": "temporary pass 1234"}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    r = _login(api_client, "xj.clerk", "temporary pass 1234")
    assert r.status_code == 200 and r.json()["account"]["must_change_password"] is True
    csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
    assert api_client.get("/v1/me").status_code == 200  # reading itself is fine
    for method, path, body in (
        ("GET", "/v1/seals", None),
        ("GET", "/v1/signing-requests", None),
        ("POST", "/v1/me/tokens", {"name": "x"}),
    ):
        r = api_client.request(method, path, json=body, headers=csrf)
        assert r.status_code == 403 and r.json()["code"] == "PASSWORD_CHANGE_REQUIRED", (path, r.text)
    r = api_client.post(
        "/v1/me/password",
        json={"current_password": "temporary pass 1234", "new_password": NEW_PASSWORD},
        headers=csrf,
    )
    assert r.status_code == 204
    r = _login(api_client, "xj.clerk", NEW_PASSWORD)
    assert r.status_code == 200 and r.json()["account"]["must_change_password"] is False
    assert api_client.get("/v1/signing-requests").status_code == 200


def test_account_made_with_a_password_must_change_it(api_client, county_accounts, registered_orgs) -> None:
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
    assert r.status_code == 201 and r.json()["must_change_password"] is True, r.text
    r = _login(api_client, "gl.clerk", "initial pass 12345")
    csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
    r = api_client.post("/v1/me/tokens", json={"name": "x"}, headers=csrf)
    assert r.status_code == 403 and r.json()["code"] == "PASSWORD_CHANGE_REQUIRED"


# --- every administration act is a ledger entry with its actor --------------------------------------------


def test_every_account_act_is_in_the_ledger(api_client, county_accounts, registered_orgs) -> None:
    services = api_client.app.state.services
    admin, clerk = county_accounts["admin"], county_accounts["xj.clerk"]
    assert _account_entries(services) == []

    r = api_client.post(
        "/v1/accounts",
        json={
            "username": "xj.chief",
            "display_name": "兴江乡长",
            "role": "TOWNSHIP_PRINCIPAL",
            "org_code": "xingjiang",
            "service_centre": "xingjiang-centre",
            "same_person_as": clerk.account_id,
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    chief = r.json()["account_id"]
    assert r.json()["person_id"] == api_client.get("/v1/me", headers=clerk.headers).json()["person_id"]
    acts: list[tuple[str, str, str]] = [("CREATED", chief, "admin")]

    def patch(account_id: str, body: dict[str, Any], *changes: str) -> None:
        r = api_client.patch(f"/v1/accounts/{account_id}", json=body, headers=admin.headers)
        assert r.status_code == 200, r.text
        acts.extend((c, account_id, "admin") for c in changes)

    patch(chief, {"org_code": "meijiao", "service_centre": "meijiao-centre"}, "ORGANISATION_CHANGED")
    patch(chief, {"role": "TOWNSHIP_CLERK"}, "ROLE_CHANGED")
    patch(chief, {"same_person_as": county_accounts["mj.clerk"].account_id}, "PERSON_LINKED")
    patch(clerk.account_id, {"disabled": True}, "DISABLED")
    patch(clerk.account_id, {"disabled": False}, "ENABLED")
    patch(clerk.account_id, {"password": "temporary pass 1234"}, "PASSWORD_RESET")
    r = _login(api_client, "xj.clerk", "temporary pass 1234")
    api_client.post(
        "/v1/me/password",
        json={"current_password": "temporary pass 1234", "new_password": NEW_PASSWORD},
        headers={"X-CSRF-Token": r.json()["csrf_token"]},
    )
    acts.append(("PASSWORD_CHANGED", clerk.account_id, "xj.clerk"))
    api_client.cookies.clear()
    principal = county_accounts["xj.principal"]
    r = api_client.post("/v1/me/tokens", json={"name": "window"}, headers=principal.headers)
    token_id = r.json()["token_id"]
    acts.append(("TOKEN_ISSUED", principal.account_id, "xj.principal"))
    r = api_client.delete(f"/v1/accounts/{principal.account_id}/tokens/{token_id}", headers=admin.headers)
    assert r.status_code == 200
    acts.append(("TOKEN_REVOKED", principal.account_id, "admin"))
    # Revoking it again changes nothing and logs nothing.
    api_client.delete(f"/v1/accounts/{principal.account_id}/tokens/{token_id}", headers=admin.headers)
    # Refused acts log nothing either.
    api_client.post(f"/v1/accounts/{clerk.account_id}/tokens", json={"name": "x"}, headers=admin.headers)

    entries = _account_entries(services)
    assert [(e["change"], e["account_id"], e["actor"]) for e in entries] == acts
    # The password change came with a session cookie (the console's way in), the rest with tokens.
    assert [e["via"] for e in entries] == [
        "console" if e["change"] == "PASSWORD_CHANGED" else "api" for e in entries
    ]
    # The account is named by salted commitments, not in clear in the entry.
    assert all({"account_id", "username"} <= e["_personal"] for e in entries)
    created = entries[0]
    assert (created["role"], created["org_code"], created["linked_to_existing_person"]) == (
        "TOWNSHIP_PRINCIPAL",
        "xingjiang",
        True,
    )
    assert [e["token_id"] for e in entries if e["change"].startswith("TOKEN_")] == [token_id, token_id]
    assert api_client.get("/v1/ledger/audit", headers=county_accounts["auditor"].headers).json()["ok"] is True


def test_cli_token_for_an_account_says_so_and_is_logged(tmp_path: Path) -> None:
    """The shell operator is trusted with the home, but minting a token for an account is said and logged."""
    from typer.testing import CliRunner

    from api._accounts import create_account
    from api.cli import app
    from core.db import make_engine, migrate, transaction
    from ledger import EntryKind, Ledger

    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(url)
    engine = make_engine(url)
    with transaction(engine) as s:
        clerk = create_account(
            s,
            username="xj.clerk",
            display_name="x",
            role="TOWNSHIP_CLERK",
            org_code="xingjiang",
            service_centre="c",
            created_by="t",
        )
    env = {"YIZHANG_DATABASE_URL": url}
    r = CliRunner().invoke(
        app, ["account", "token", "--username", "xj.clerk", "--json", "--home", str(home)], env=env
    )
    assert r.exit_code == 0, r.output
    assert "acts as that person" in r.stderr and "TOKEN_ISSUED" in r.stderr
    ledger = Ledger(engine, None, origin="t/ledger")
    try:
        [entry] = [ledger.get(i) for i in range(ledger.size())]
        opened = {**entry.body, **ledger.personal_data(entry.index)}
        assert entry.kind is EntryKind.ACCOUNT_CHANGED
        assert (opened["change"], opened["via"], opened["account_id"]) == (
            "TOKEN_ISSUED",
            "cli",
            clerk.account_id,
        )
        assert opened["actor"].startswith("cli:")
    finally:
        ledger.close()
        engine.dispose()


# --- finding 2: read-only roles write nothing -------------------------------------------------------------


def test_auditor_cannot_register_or_remove_webhooks(county_accounts_sqlite) -> None:
    from api._storage import WebhookRow
    from core.db import transaction

    client, accounts = county_accounts_sqlite
    auditor = accounts["auditor"]
    hook_id = str(uuid.uuid4())
    with transaction(client.app.state.services.sessions) as s:  # the health department's receiver
        s.add(
            WebhookRow(
                webhook_id=hook_id,
                supervising_code="xg-health",
                url="https://hooks.invalid/feed",
                secret="s" * 43,
                cursor=0,
                attempts=0,
                next_attempt_at=datetime.now(UTC),
                disabled=False,
                created_by="health.officer",
                created_at=datetime.now(UTC),
            )
        )
    r = client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.invalid/mine", "supervising_code": "xg-health"},
        headers=auditor.headers,
    )
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN", r.text
    r = client.delete(f"/v1/webhooks/{hook_id}", headers=auditor.headers)
    assert r.status_code == 403 and r.json()["code"] == "ROLE_FORBIDDEN", r.text
    hooks = client.get("/v1/webhooks", headers=auditor.headers).json()  # reading stays open
    assert [(h["webhook_id"], h["disabled"]) for h in hooks] == [(hook_id, False)]


# --- finding 10: reset, change and disable end credentials for good ---------------------------------------


def test_reset_change_and_disable_end_tokens_for_good(api_client, county_accounts) -> None:
    admin, clerk = county_accounts["admin"], county_accounts["xj.clerk"]

    def token() -> dict[str, str]:
        from api._accounts import issue_token
        from core.db import transaction

        with transaction(api_client.app.state.services.sessions) as s:
            return {"Authorization": f"Bearer {issue_token(s, clerk.account_id, name='t').secret}"}

    def assert_revoked(headers: dict[str, str]) -> None:
        r = api_client.get("/v1/me", headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "TOKEN_REVOKED", r.text

    # An administrator's reset: the fixture's token and a session opened with the old password end.
    _login(api_client, "xj.clerk", PASSWORD)
    cookie = api_client.cookies.get("yz_session")
    r = api_client.patch(
        f"/v1/accounts/{clerk.account_id}", json={"password": "temporary pass 1234"}, headers=admin.headers
    )
    assert r.status_code == 200
    assert_revoked(clerk.headers)
    api_client.cookies.clear()
    api_client.cookies.set("yz_session", cookie)
    assert api_client.get("/v1/me").json()["code"] == "SESSION_INVALID"
    # The person's own change ends the tokens made before it.
    r = _login(api_client, "xj.clerk", "temporary pass 1234")
    csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
    api_client.post(
        "/v1/me/password",
        json={"current_password": "temporary pass 1234", "new_password": NEW_PASSWORD},
        headers=csrf,
    )
    api_client.cookies.clear()
    before_change = token()
    r = _login(api_client, "xj.clerk", NEW_PASSWORD)
    r = api_client.post(
        "/v1/me/password",
        json={"current_password": NEW_PASSWORD, "new_password": NEW_PASSWORD + "!"},
        headers={"X-CSRF-Token": r.json()["csrf_token"]},
    )
    assert r.status_code == 204
    api_client.cookies.clear()
    assert_revoked(before_change)
    # Disabling, then re-enabling: the tokens from before stay dead.
    before_disable = token()
    assert api_client.get("/v1/me", headers=before_disable).status_code == 200
    for disabled in (True, False):
        r = api_client.patch(
            f"/v1/accounts/{clerk.account_id}", json={"disabled": disabled}, headers=admin.headers
        )
        assert r.status_code == 200
    assert_revoked(before_disable)
    assert api_client.get("/v1/me", headers=token()).status_code == 200  # a new one works


# --- two accounts, one person: no self-approval -----------------------------------------------------------


@pytest.mark.softhsm
def test_one_person_with_clerk_and_principal_accounts_cannot_approve_own_request(county) -> None:
    from api._accounts import create_account, issue_token
    from core.db import transaction

    c, h, seals = county["client"], county["h"], county["seals"]
    services = c.app.state.services
    with transaction(services.sessions) as s:
        from api._accounts import get_account_by_username

        clerk = get_account_by_username(s, "xj.clerk")
        chief = create_account(
            s,
            username="xj.clerk.as.principal",
            display_name="xj.clerk",
            role="TOWNSHIP_PRINCIPAL",
            org_code=XJ,
            service_centre=f"{XJ}-BMFW",
            created_by="t",
            same_person_as=clerk.account_id,
        )
        own = {"Authorization": f"Bearer {issue_token(s, chief.account_id, name='t').secret}"}
    assert chief.person_id == clerk.person_id and chief.account_id != clerk.account_id

    r = _submit(c, h["xj.clerk"], seals["no2"], HEALTH_LICENCE_FIRST, "审批", "许可证及其附件", "same-person")
    assert r.status_code == 201 and r.json()["status"] == "PENDING_APPROVAL", r.text
    rid = r.json()["request_id"]
    r = c.post(f"/v1/signing-requests/{rid}/approve", json={"comment": "同意"}, headers=own)
    assert r.status_code == 403, r.text
    assert "SELF_APPROVAL" in {x["code"] for x in r.json()["reasons"]}
    r = c.post(f"/v1/signing-requests/{rid}/reject", json={"comment": "不行"}, headers=own)
    assert r.status_code == 403 and r.json()["code"] == "SELF_APPROVAL"
    assert c.get(f"/v1/signing-requests/{rid}", headers=h["xj.clerk"]).json()["status"] == "PENDING_APPROVAL"
    # Another person approves: sealed.
    r = c.post(f"/v1/signing-requests/{rid}/approve", json={"comment": "同意"}, headers=h["xj.principal"])
    assert r.status_code == 200 and r.json()["status"] == "SEALED", r.text
