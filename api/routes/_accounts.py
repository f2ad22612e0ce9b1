"""Account administration (county approval bureau) and read-only listing (auditors).

Separation of duties (issue 21, docs/security.md): an administrator creates accounts, changes their role and
organisation, links one person's accounts, resets passwords (the person must change it at the next login),
disables and re-enables accounts and revokes tokens; an administrator never mints a token for another
person's account (``TOKEN_FOR_ANOTHER_ACCOUNT``): a person mints their own (``POST /v1/me/tokens``). Every
act is a ledger entry (``ACCOUNT_CHANGED``) with its actor, committed with the act.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from api._accounts import (
    AccountChange,
    change_role,
    create_account,
    get_account,
    issue_token,
    link_person,
    list_accounts,
    list_tokens,
    record_account_change,
    revoke_token,
    set_disabled,
    set_password,
)
from api._accounts import get_token as get_token_row
from api._authz import Permission, Principal, ServicesDep, require
from api._json import JsonValue
from api._schemas import AccountIn, AccountOut, AccountPatch, IssuedTokenOut, TokenIn, TokenOut
from core.db import transaction
from core.errors import BadInput, Conflict, NotFound, PermissionDenied
from core.settings import Settings
from policies import ROLE_ORG_KIND, OrgKind, Role

if TYPE_CHECKING:
    from api._services import Services


Reader = Annotated[Principal, Depends(require(Permission.ACCOUNTS_READ))]
Admin = Annotated[Principal, Depends(require(Permission.ACCOUNTS_ADMIN))]


def via_of(principal: Principal) -> str:
    """How an act reached the service, for its ledger entry: ``api`` (a token) or ``console`` (a session)."""
    return "console" if principal.via == "session" else "api"


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1/accounts", tags=["accounts"])

    @router.get("")
    def accounts(
        principal: Reader,
        services: ServicesDep,
        org_code: Annotated[str | None, Query(max_length=64)] = None,
        role: Role | None = None,
    ) -> list[AccountOut]:
        with transaction(services.sessions) as s:
            found = list_accounts(s, org_code=org_code, role=role)
        return [AccountOut.of(a) for a in found if principal.in_scope(org_code=a.org_code)]

    @router.post("", status_code=201)
    def new_account(body: AccountIn, principal: Admin, services: ServicesDep) -> AccountOut:
        """An account bound to a registered organisation of the right kind (and, for window staff, to that
        township's service centre, which the policy checks at every use of the seal). A password given here
        is an initial one: the person must change it at the first login. ``same_person_as`` binds the
        account to the person of an existing account (the approval rule compares people)."""
        _check_organisation(services, body.role, body.org_code, body.service_centre)
        ledger = services.need_ledger()
        with transaction(services.sessions) as s:
            account = create_account(
                s,
                username=body.username,
                display_name=body.display_name,
                role=body.role,
                org_code=body.org_code,
                service_centre=body.service_centre,
                password=body.password,
                created_by=principal.account.username,
                same_person_as=body.same_person_as,
                must_change_password=True,
            )
            details = {
                "role": account.role.value,
                "org_code": account.org_code,
                "linked_to_existing_person": account.person_id != account.account_id,
            }
            record_account_change(
                s,
                ledger,
                account,
                AccountChange.CREATED,
                actor=principal.account.username,
                via=via_of(principal),
                details=details,
            )
        return AccountOut.of(account)

    @router.get("/{account_id}")
    def account(account_id: str, principal: Reader, services: ServicesDep) -> AccountOut:
        with transaction(services.sessions) as s:
            found = get_account(s, account_id)
        principal.ensure_scope(org_code=found.org_code)
        return AccountOut.of(found)

    @router.patch("/{account_id}")
    def patch_account(
        account_id: str, body: AccountPatch, principal: Admin, services: ServicesDep
    ) -> AccountOut:
        """Change role/organisation, link to a person, disable or re-enable, reset the password; each one a
        ledger entry. A reset or a disabling ends every session and token of the account for good."""
        moving = (
            body.role is not None or body.org_code is not None or "service_centre" in body.model_fields_set
        )
        ledger = services.need_ledger()
        with transaction(services.sessions) as s:
            current = get_account(s, account_id)
        principal.ensure_scope(org_code=current.org_code)
        role, org_code, centre = current.role, current.org_code, current.service_centre
        if moving:
            role = body.role or current.role
            org_code = body.org_code or current.org_code
            if "service_centre" in body.model_fields_set:
                centre = body.service_centre
            if account_id == principal.account.account_id and role is not current.role:
                raise Conflict(
                    "SELF_ROLE_CHANGE", "an administrator cannot change its own role", "不能变更自己的角色"
                )
            # Before the write transaction: the policy store reads on its own connection.
            _check_organisation(services, role, org_code, centre)
        with transaction(services.sessions) as s:
            found = get_account(s, account_id)

            def record(change: AccountChange, **details: JsonValue) -> None:
                record_account_change(
                    s,
                    ledger,
                    found,
                    change,
                    actor=principal.account.username,
                    via=via_of(principal),
                    details=details,
                )

            if moving:
                before = found
                found = change_role(s, account_id, role=role, org_code=org_code, service_centre=centre)
                if found.role is not before.role:
                    record(AccountChange.ROLE_CHANGED, role=found.role.value, previous_role=before.role.value)
                if (found.org_code, found.service_centre) != (before.org_code, before.service_centre):
                    record(
                        AccountChange.ORGANISATION_CHANGED,
                        org_code=found.org_code,
                        previous_org_code=before.org_code,
                        service_centre=found.service_centre or "-",
                    )
            if body.same_person_as is not None:
                found = link_person(s, account_id, body.same_person_as)
                record(AccountChange.PERSON_LINKED)
            if body.disabled is not None and body.disabled is not found.disabled:
                if body.disabled and account_id == principal.account.account_id:
                    raise Conflict(
                        "SELF_DISABLE", "an administrator cannot disable itself", "不能停用自己的账号"
                    )
                found = set_disabled(s, account_id, body.disabled)
                record(AccountChange.DISABLED if body.disabled else AccountChange.ENABLED)
            if body.password is not None:
                set_password(s, account_id, body.password, reset=True)
                found = get_account(s, account_id)
                record(AccountChange.PASSWORD_RESET)
        return AccountOut.of(found)

    @router.get("/{account_id}/tokens")
    def account_tokens(account_id: str, principal: Admin, services: ServicesDep) -> list[TokenOut]:
        with transaction(services.sessions) as s:
            get_account(s, account_id)
            return [TokenOut.of(t) for t in list_tokens(s, account_id)]

    @router.post("/{account_id}/tokens", status_code=201)
    def account_new_token(
        account_id: str, body: TokenIn, principal: Admin, services: ServicesDep
    ) -> IssuedTokenOut:
        """A token for the administrator's own account only (as ``POST /v1/me/tokens``): a token for another
        account would be that person's credential in the administrator's hands (issue 21). An administrator
        who must act for someone resets the password (the person is told at the next login) or disables the
        account; the person makes their own tokens."""
        if account_id != principal.account.account_id:
            raise PermissionDenied(
                "TOKEN_FOR_ANOTHER_ACCOUNT",
                "tokens are made by the account's own person (POST /v1/me/tokens), never by an administrator",
                "访问令牌只能由账号本人申领，管理员不得代为申领",
            )
        ledger = services.need_ledger()
        with transaction(services.sessions) as s:
            issued = issue_token(s, account_id, name=body.name, ttl=timedelta(days=body.ttl_days))
            record_account_change(
                s,
                ledger,
                principal.account,
                AccountChange.TOKEN_ISSUED,
                actor=principal.account.username,
                via=via_of(principal),
                details={"token_id": issued.token.token_id},
            )
        return IssuedTokenOut(**TokenOut.of(issued.token).model_dump(), token=issued.secret)

    @router.delete("/{account_id}/tokens/{token_id}")
    def account_revoke_token(
        account_id: str, token_id: str, principal: Admin, services: ServicesDep
    ) -> TokenOut:
        ledger = services.need_ledger()
        with transaction(services.sessions) as s:
            token = get_token_row(s, token_id)
            if token.account_id != account_id:
                raise NotFound("TOKEN_NOT_FOUND", "no such token", "令牌不存在")
            revoked = revoke_token(s, token_id)
            if token.revoked_at is None:
                record_account_change(
                    s,
                    ledger,
                    get_account(s, account_id),
                    AccountChange.TOKEN_REVOKED,
                    actor=principal.account.username,
                    via=via_of(principal),
                    details={"token_id": token_id},
                )
            return TokenOut.of(revoked)

    return router


def _check_organisation(services: Services, role: Role, org_code: str, service_centre: str | None) -> None:
    from api._accounts import _CODE

    if not _CODE.match(org_code):
        raise BadInput("ORG_CODE_INVALID", "organisation code is malformed", "机构代码格式错误")
    store = services.need_policy_store()
    org = store.organisation(org_code)  # 404 ORGANISATION_UNKNOWN
    want = ROLE_ORG_KIND[role]
    if org.kind is not want:
        kind_zh = {OrgKind.COUNTY: "县", OrgKind.DEPARTMENT: "县直部门", OrgKind.TOWNSHIP: "乡镇"}[want]
        raise BadInput(
            "ORG_KIND_MISMATCH",
            f"a {role.value} belongs to a {want.value.lower()}, {org_code} is a {org.kind.value.lower()}",
            f"该角色须属于{kind_zh}",
        )
    if service_centre is not None and org.service_centre and service_centre != org.service_centre:
        raise BadInput(
            "SERVICE_CENTRE_MISMATCH",
            f"{org_code}'s service centre is {org.service_centre}",
            f"{org_code} 的便民服务中心为 {org.service_centre}",
        )
