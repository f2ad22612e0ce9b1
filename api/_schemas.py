"""Pydantic models of the HTTP API (they stay in api/; frozen dataclasses come in from the library)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api._accounts import Account, ApiToken
from policies import Role


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AccountOut(BaseModel):
    account_id: str
    username: str
    display_name: str
    role: Role
    org_code: str
    service_centre: str | None
    disabled: bool
    has_password: bool
    created_at: datetime
    created_by: str
    person_id: str = Field(description="the person behind the account; one person's accounts share it")
    must_change_password: bool = Field(description="reset by an administrator: change it first")

    @classmethod
    def of(cls, a: Account) -> AccountOut:
        return cls(**a.__dict__)


class AccountIn(_In):
    username: str = Field(min_length=3, max_length=64)
    display_name: str = Field(min_length=1, max_length=128)
    role: Role
    org_code: str = Field(min_length=1, max_length=64)
    service_centre: str | None = Field(default=None, max_length=64)
    password: str | None = Field(
        default=None, min_length=1, max_length=1024, description="initial; the person must change it"
    )
    same_person_as: str | None = Field(
        default=None,
        max_length=64,
        description="id of an account of the same person (e.g. the clerk account of a new principal account)",
    )


class AccountPatch(_In):
    disabled: bool | None = None
    password: str | None = Field(
        default=None, min_length=1, max_length=1024, description="a reset: the person must change it"
    )
    role: Role | None = None
    org_code: str | None = Field(default=None, min_length=1, max_length=64)
    service_centre: str | None = Field(default=None, max_length=64)
    same_person_as: str | None = Field(default=None, max_length=64)


class TokenOut(BaseModel):
    token_id: str
    account_id: str
    name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, t: ApiToken) -> TokenOut:
        return cls(**t.__dict__)


class TokenIn(_In):
    name: str = Field(min_length=1, max_length=128)
    ttl_days: float = Field(default=90, gt=0, le=366)


class IssuedTokenOut(TokenOut):
    token: str = Field(description="the secret; shown once, never stored")


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    account: AccountOut
    csrf_token: str
    expires_at: datetime | None = None


class PasswordIn(_In):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)
