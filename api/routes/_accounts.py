"""Account administration (county approval bureau) and read-only listing (auditors)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from api._accounts import (
    Role,
    create_account,
    get_account,
    issue_token,
    list_accounts,
    list_tokens,
    revoke_token,
    set_disabled,
    set_password,
)
from api._accounts import get_token as get_token_row
from api._authz import Permission, Principal, require, services_of
from api._schemas import AccountIn, AccountOut, AccountPatch, IssuedTokenOut, TokenIn, TokenOut
from core.db import transaction
from core.errors import BadInput, Conflict, NotFound
from core.settings import Settings

Reader = Annotated[Principal, Depends(require(Permission.ACCOUNTS_READ))]
Admin = Annotated[Principal, Depends(require(Permission.ACCOUNTS_ADMIN))]


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1/accounts", tags=["accounts"])

    @router.get("")
    def accounts(
        principal: Reader,
        request: Request,
        org_code: Annotated[str | None, Query(max_length=64)] = None,
        role: Role | None = None,
    ) -> list[AccountOut]:
        with transaction(services_of(request).sessions) as s:
            found = list_accounts(s, org_code=org_code, role=role)
        return [AccountOut.of(a) for a in found if principal.in_scope(org_code=a.org_code)]

    @router.post("", status_code=201)
    def new_account(body: AccountIn, principal: Admin, request: Request) -> AccountOut:
        """An account bound to a registered organisation of the right kind (and, for window staff, to that
        township's service centre, which the policy checks at every use of the seal)."""
        _check_organisation(services_of(request), body)
        with transaction(services_of(request).sessions) as s:
            account = create_account(
                s,
                username=body.username,
                display_name=body.display_name,
                role=body.role,
                org_code=body.org_code,
                service_centre=body.service_centre,
                password=body.password,
                created_by=principal.account.username,
            )
        return AccountOut.of(account)

    @router.get("/{account_id}")
    def account(account_id: str, principal: Reader, request: Request) -> AccountOut:
        with transaction(services_of(request).sessions) as s:
            found = get_account(s, account_id)
        principal.ensure_scope(org_code=found.org_code)
        return AccountOut.of(found)

    @router.patch("/{account_id}")
    def patch_account(account_id: str, body: AccountPatch, principal: Admin, request: Request) -> AccountOut:
        with transaction(services_of(request).sessions) as s:
            found = get_account(s, account_id)
            principal.ensure_scope(org_code=found.org_code)
            if body.disabled is not None:
                if body.disabled and account_id == principal.account.account_id:
                    raise Conflict(
                        "SELF_DISABLE", "an administrator cannot disable itself", "不能停用自己的账号"
                    )
                found = set_disabled(s, account_id, body.disabled)
            if body.password is not None:
                set_password(s, account_id, body.password)
                found = get_account(s, account_id)
        return AccountOut.of(found)

    @router.get("/{account_id}/tokens")
    def account_tokens(account_id: str, principal: Admin, request: Request) -> list[TokenOut]:
        with transaction(services_of(request).sessions) as s:
            get_account(s, account_id)
            return [TokenOut.of(t) for t in list_tokens(s, account_id)]

    @router.post("/{account_id}/tokens", status_code=201)
    def account_new_token(
        account_id: str, body: TokenIn, principal: Admin, request: Request
    ) -> IssuedTokenOut:
        """A token for a service account or an integration; the secret is in this response only."""
        with transaction(services_of(request).sessions) as s:
            issued = issue_token(s, account_id, name=body.name, ttl=timedelta(days=body.ttl_days))
        return IssuedTokenOut(**TokenOut.of(issued.token).model_dump(), token=issued.secret)

    @router.delete("/{account_id}/tokens/{token_id}")
    def account_revoke_token(account_id: str, token_id: str, principal: Admin, request: Request) -> TokenOut:
        with transaction(services_of(request).sessions) as s:
            token = get_token_row(s, token_id)
            if token.account_id != account_id:
                raise NotFound("TOKEN_NOT_FOUND", "no such token", "令牌不存在")
            return TokenOut.of(revoke_token(s, token_id))

    return router


def _check_organisation(services: Any, body: AccountIn) -> None:
    from api._accounts import _CODE, ROLE_ORG_KIND

    if not _CODE.match(body.org_code):
        raise BadInput("ORG_CODE_INVALID", "organisation code is malformed", "机构代码格式错误")
    store = services.need("policy_store")
    org = store.organisation(body.org_code)  # 404 ORGANISATION_UNKNOWN
    want = ROLE_ORG_KIND[body.role].value
    if org.kind.value.lower() != want:
        kind_zh = {"county": "县", "department": "县直部门", "township": "乡镇"}[want]
        raise BadInput(
            "ORG_KIND_MISMATCH",
            f"a {body.role.value} belongs to a {want}, {body.org_code} is a {org.kind.value.lower()}",
            f"该角色须属于{kind_zh}",
        )
    if body.service_centre is not None and org.service_centre and body.service_centre != org.service_centre:
        raise BadInput(
            "SERVICE_CENTRE_MISMATCH",
            f"{body.org_code}'s service centre is {org.service_centre}",
            f"{body.org_code} 的便民服务中心为 {org.service_centre}",
        )
