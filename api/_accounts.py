"""Accounts, roles, bearer tokens, passwords and console sessions (library functions; no HTTP here).

Secrets are never stored: a bearer token is kept as its SHA-256, a password as an argon2id hash, a session
cookie as its SHA-256. Every credential check takes the account's current state (disabled accounts fail
even with a valid token).

Separation of duties (issue 21, docs/security.md): an account belongs to a person (``person_id``; accounts
of one person share it, and the approval rule compares people, not accounts). A password reset, a password
change and disabling an account end every session and token of the account for good (re-enabling revives
none); a reset also forces a change at the next login. Every administration act is logged in the ledger
with its actor (:func:`record_account_change`), in the transaction that makes it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, Row, Table, bindparam, select, update
from sqlalchemy.orm import Session

from api._errors import Unauthenticated
from api._json import JsonObject
from api._storage import AccountRow, SessionRow, TokenRow
from core.db import execute_alone, reading_connection
from core.errors import BadInput, Conflict, NotFound, PermissionDenied, Unavailable
from policies import Role

if TYPE_CHECKING:
    from ledger import Ledger, LedgerEntry


class AccountChange(StrEnum):
    """What an ``ACCOUNT_CHANGED`` ledger entry records."""

    CREATED = "CREATED"
    ROLE_CHANGED = "ROLE_CHANGED"
    ORGANISATION_CHANGED = "ORGANISATION_CHANGED"
    PERSON_LINKED = "PERSON_LINKED"  # the account now belongs to the person of another account
    # By an administrator: the person must change it at the next login.
    PASSWORD_RESET = "PASSWORD_RESET"  # noqa: S105 - a change's name
    PASSWORD_CHANGED = "PASSWORD_CHANGED"  # noqa: S105 - by the person
    DISABLED = "DISABLED"
    ENABLED = "ENABLED"
    TOKEN_ISSUED = "TOKEN_ISSUED"  # noqa: S105 - a change's name
    TOKEN_REVOKED = "TOKEN_REVOKED"  # noqa: S105 - a change's name
    OIDC_BOUND = "OIDC_BOUND"  # the first OpenID Connect login bound the account to (issuer, subject)


# Window staff work at one service centre; the policy engine checks it against the seal's centre.
WINDOW_ROLES = frozenset({Role.TOWNSHIP_CLERK, Role.TOWNSHIP_PRINCIPAL})

TOKEN_PREFIX = "yz_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOKEN_TTL = timedelta(days=90)
MAX_TOKEN_TTL = timedelta(days=366)
SESSION_TTL = timedelta(hours=8)
# last_used_at is written at most this often per token, so reads do not turn into writes.
LAST_USED_GRANULARITY = timedelta(minutes=1)
MIN_PASSWORD_LEN = 12

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_CODE = re.compile(r"^[^\s/\\]{1,64}$")  # codes may be Chinese names (县行政审批局)
_hasher = PasswordHasher()
_T = TypeVar("_T")


class HashingPool:
    """At most ``limit`` argon2 computations at once in this process; a few more wait briefly, the rest are
    refused (503 ``LOGIN_BUSY`` with Retry-After).

    argon2 is slow and memory-hard on purpose; unbounded, a handful of parallel logins took every core and
    another township's signing went from 0.04 s to 9.9 s (issue 21, finding 7). A waiting login also holds a
    thread of the worker's pool, so the queue is short (``max_waiting``) and the wait bounded
    (``wait_s``): signing keeps its threads. ``peak`` and ``peak_waiting`` are the high-water marks since
    :meth:`reset_marks` (the tests' seam, and a figure for an operator)."""

    def __init__(self, limit: int = 1, *, max_waiting: int = 4, wait_s: float = 5.0) -> None:
        self.limit, self.max_waiting, self.wait_s = limit, max_waiting, wait_s
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.running = self.waiting = self.peak = self.peak_waiting = 0

    def reset_marks(self) -> None:
        with self._lock:
            self.peak, self.peak_waiting = self.running, self.waiting

    def run(self, fn: Callable[[], _T]) -> _T:
        busy = Unavailable(
            "LOGIN_BUSY",
            "too many logins at this moment; try again in a few seconds",
            "当前登录人数过多，请几秒后重试",
            details={"retry_after_s": 2},
        )
        with self._lock:
            if self.waiting >= self.max_waiting:
                raise busy
            self.waiting += 1
            self.peak_waiting = max(self.peak_waiting, self.waiting)
        try:
            acquired = self._slots.acquire(timeout=self.wait_s)
        finally:
            with self._lock:
                self.waiting -= 1
        if not acquired:
            raise busy
        try:
            with self._lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
            return fn()
        finally:
            with self._lock:
                self.running -= 1
            self._slots.release()


#: Every password hash and verification of this process goes through here (one at a time per worker).
PASSWORD_HASHING = HashingPool(limit=1)


@dataclass(frozen=True)
class Account:
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
    person_id: str = ""
    must_change_password: bool = False

    @classmethod
    def from_row(cls, row: AccountRow | Row[*tuple[Any, ...]]) -> Account:
        """From an ORM row, or a Core row with the account's columns by name."""
        return cls(
            account_id=row.account_id,
            username=row.username,
            display_name=row.display_name,
            role=Role(row.role),
            org_code=row.org_code,
            service_centre=row.service_centre,
            disabled=row.disabled,
            has_password=row.password_hash is not None,
            created_at=aware(row.created_at),
            created_by=row.created_by,
            person_id=row.person_id,
            must_change_password=bool(row.must_change_password),
        )


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    account_id: str
    name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: TokenRow) -> ApiToken:
        return cls(
            token_id=row.token_id,
            account_id=row.account_id,
            name=row.name,
            created_at=aware(row.created_at),
            expires_at=aware(row.expires_at),
            revoked_at=aware(row.revoked_at) if row.revoked_at else None,
            last_used_at=aware(row.last_used_at) if row.last_used_at else None,
        )


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``secret`` is shown once and never stored."""

    token: ApiToken
    secret: str


@dataclass(frozen=True)
class ConsoleSession:
    account: Account
    csrf_token: str
    expires_at: datetime


def aware(dt: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# --- accounts -----------------------------------------------------------------------------------------------


def create_account(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: Role | str,
    org_code: str,
    service_centre: str | None = None,
    password: str | None = None,
    created_by: str,
    same_person_as: str | None = None,
    must_change_password: bool = False,
    now: datetime | None = None,
) -> Account:
    """A new account. ``same_person_as`` names (by id) an account of the same person: the new account
    shares its ``person_id`` (one person's clerk and principal accounts); otherwise it is a new person.
    ``must_change_password``: the password was set by someone else (an administrator)."""
    now = now or utcnow()
    try:
        role = Role(role)
    except ValueError:
        raise BadInput(
            "ROLE_UNKNOWN",
            f"unknown role {role!r}",
            f"未知角色 {role!r}",
            details={"roles": [r.value for r in Role]},
        ) from None
    if not _USERNAME.match(username):
        raise BadInput(
            "USERNAME_INVALID",
            "username: 3-64 characters, lower-case letters, digits, '.', '_' or '-'",
            "用户名须为 3–64 位小写字母、数字、'.'、'_' 或 '-'",
        )
    if not _CODE.match(org_code):
        raise BadInput("ORG_CODE_INVALID", "organisation code is malformed", "机构代码格式错误")
    if service_centre is not None and not _CODE.match(service_centre):
        raise BadInput("SERVICE_CENTRE_INVALID", "service centre code is malformed", "服务中心代码格式错误")
    if role in WINDOW_ROLES and not service_centre:
        raise BadInput(
            "SERVICE_CENTRE_REQUIRED",
            f"a {role.value} account must be bound to a service centre",
            "窗口人员账号须绑定便民服务中心",
        )
    if not display_name.strip() or len(display_name) > 128:
        raise BadInput("DISPLAY_NAME_INVALID", "display name is empty or too long", "姓名为空或过长")
    if session.scalar(select(AccountRow.account_id).where(AccountRow.username == username)):
        raise Conflict("USERNAME_TAKEN", f"username {username} is taken", f"用户名 {username} 已存在")
    account_id = str(uuid.uuid4())
    person_id = _person_of(session, same_person_as) if same_person_as is not None else account_id
    row = AccountRow(
        account_id=account_id,
        username=username,
        display_name=display_name.strip(),
        role=role.value,
        org_code=org_code,
        service_centre=service_centre,
        password_hash=_hash_password(password) if password is not None else None,
        disabled=False,
        created_at=now,
        created_by=created_by,
        updated_at=now,
        person_id=person_id,
        must_change_password=must_change_password and password is not None,
    )
    session.add(row)
    session.flush()
    return Account.from_row(row)


def _row(session: Session, account_id: str) -> AccountRow:
    row = session.get(AccountRow, account_id)
    if row is None:
        raise NotFound("ACCOUNT_NOT_FOUND", "no such account", "账号不存在")
    return row


def _person_of(session: Session, account_id: str) -> str:
    row = session.get(AccountRow, account_id)
    if row is None:
        raise NotFound(
            "SAME_PERSON_ACCOUNT_NOT_FOUND", "same_person_as names no account", "所指同一人账号不存在"
        )
    return row.person_id


def link_person(
    session: Session, account_id: str, same_person_as: str, *, now: datetime | None = None
) -> Account:
    """Bind an account to the person of another account (two accounts of one person found afterwards)."""
    row = _row(session, account_id)
    row.person_id = _person_of(session, same_person_as)
    row.updated_at = now or utcnow()
    session.flush()
    return Account.from_row(row)


def change_role(
    session: Session,
    account_id: str,
    *,
    role: Role | str,
    org_code: str,
    service_centre: str | None,
    now: datetime | None = None,
) -> Account:
    """Move an account to another role and/or organisation (the caller checked the organisation exists)."""
    try:
        role = Role(role)
    except ValueError:
        raise BadInput("ROLE_UNKNOWN", f"unknown role {role!r}", f"未知角色 {role!r}") from None
    if not _CODE.match(org_code):
        raise BadInput("ORG_CODE_INVALID", "organisation code is malformed", "机构代码格式错误")
    if service_centre is not None and not _CODE.match(service_centre):
        raise BadInput("SERVICE_CENTRE_INVALID", "service centre code is malformed", "服务中心代码格式错误")
    if role in WINDOW_ROLES and not service_centre:
        raise BadInput(
            "SERVICE_CENTRE_REQUIRED",
            f"a {role.value} account must be bound to a service centre",
            "窗口人员账号须绑定便民服务中心",
        )
    row = _row(session, account_id)
    row.role = role.value
    row.org_code = org_code
    row.service_centre = service_centre if role in WINDOW_ROLES else None
    row.updated_at = now or utcnow()
    session.flush()
    return Account.from_row(row)


def end_credentials(session: Session, account_id: str, *, now: datetime | None = None) -> None:
    """Revoke every console session and API token of an account, for good (nothing un-revokes them)."""
    now = now or utcnow()
    session.execute(
        update(SessionRow)
        .where(SessionRow.account_id == account_id, SessionRow.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(TokenRow)
        .where(TokenRow.account_id == account_id, TokenRow.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def record_account_change(
    session: Session,
    ledger: Ledger,
    account: Account,
    change: AccountChange,
    *,
    actor: str,
    via: str,
    details: JsonObject | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Log one account-administration act in the ledger, in the caller's transaction (so the act and its
    entry commit together). The account's id and username are salted commitments (``personal``), like the
    other personal data; the body holds what changed, who did it (``actor``) and through what (``via``)."""
    from ledger import EntryFields, EntryKind

    body: JsonObject = {"change": change.value, "actor": actor, "via": via}
    body.update(details or {})
    return ledger.append(
        session,
        EntryFields(
            kind=EntryKind.ACCOUNT_CHANGED,
            at=now or utcnow(),
            body=body,
            personal={"account_id": account.account_id, "username": account.username},
        ),
        f"account:{change.value.lower()}:{uuid.uuid4()}",
    )


def get_account(session: Session, account_id: str) -> Account:
    return Account.from_row(_row(session, account_id))


def account_for_oidc(session: Session, issuer: str, subject: str, username: str) -> tuple[Account, bool]:
    """The account an OpenID Provider identity opens, and whether this login bound it (issue 21, finding 15).

    An account is bound to one (issuer, subject) pair. A pair already bound opens its account whatever the
    username claim says now (people get renamed at the provider). An unbound pair may bind only an account
    named by the username claim that is not bound yet; the first login records the pair (trust on first
    use, in the ledger as ``OIDC_BOUND``). Another subject claiming a bound account's username is refused
    (``OIDC_SUBJECT_MISMATCH``): the username claim alone never opens an account that has been bound."""
    row = session.scalar(
        select(AccountRow).where(AccountRow.oidc_issuer == issuer, AccountRow.oidc_subject == subject)
    )
    if row is not None:
        return Account.from_row(row), False
    row = session.scalar(select(AccountRow).where(AccountRow.username == username))
    if row is None:
        raise NotFound("ACCOUNT_NOT_FOUND", "no such account", "账号不存在")
    if row.oidc_subject is not None:
        raise PermissionDenied(
            "OIDC_SUBJECT_MISMATCH",
            "this account is bound to another identity at the provider; ask the county administrator",
            "该账号已绑定统一身份认证中的另一身份，不能以此身份登录，请联系县行政审批局管理员",
        )
    row.oidc_issuer, row.oidc_subject = issuer, subject
    row.updated_at = utcnow()
    session.flush()
    return Account.from_row(row), True


def get_account_by_username(session: Session, username: str) -> Account:
    row = session.scalar(select(AccountRow).where(AccountRow.username == username))
    if row is None:
        raise NotFound("ACCOUNT_NOT_FOUND", "no such account", "账号不存在")
    return Account.from_row(row)


def list_accounts(
    session: Session, *, org_code: str | None = None, role: Role | None = None
) -> list[Account]:
    stmt = select(AccountRow).order_by(AccountRow.username)
    if org_code is not None:
        stmt = stmt.where(AccountRow.org_code == org_code)
    if role is not None:
        stmt = stmt.where(AccountRow.role == role.value)
    return [Account.from_row(r) for r in session.scalars(stmt)]


def set_disabled(
    session: Session, account_id: str, disabled: bool, *, now: datetime | None = None
) -> Account:
    """Disable (or re-enable) an account; disabling ends its sessions and tokens for good, so re-enabling
    revives none of them (the person logs in again and makes new tokens)."""
    now = now or utcnow()
    row = _row(session, account_id)
    row.disabled = disabled
    row.updated_at = now
    if disabled:
        end_credentials(session, account_id, now=now)
    session.flush()
    return Account.from_row(row)


def _hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LEN:
        raise BadInput(
            "PASSWORD_TOO_SHORT",
            f"a password needs at least {MIN_PASSWORD_LEN} characters",
            f"密码至少 {MIN_PASSWORD_LEN} 位",
        )
    if len(password) > 1024:
        raise BadInput("PASSWORD_TOO_LONG", "password too long", "密码过长")
    return PASSWORD_HASHING.run(lambda: _hasher.hash(password))


def set_password(
    session: Session, account_id: str, password: str, *, reset: bool = False, now: datetime | None = None
) -> None:
    """A new password. ``reset``: set by someone else (an administrator), so the person must change it at
    the next login; the person's own change clears that. Either ends every session and token of the
    account: whoever held the old password (or a token made with it) holds nothing now."""
    now = now or utcnow()
    row = _row(session, account_id)
    row.password_hash = _hash_password(password)
    row.must_change_password = reset
    row.updated_at = now
    end_credentials(session, account_id, now=now)
    session.flush()


# A dummy hash so an unknown username costs the same argon2 work as a wrong password (no user probing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password(session: Session, username: str, password: str) -> Account:
    """The account for a username and password; one error for every failure (no account probing)."""
    row = session.scalar(select(AccountRow).where(AccountRow.username == username))
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        PASSWORD_HASHING.run(lambda: _hasher.verify(stored, password))
        ok = row is not None and row.password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None:
        raise Unauthenticated("LOGIN_FAILED", "wrong username or password", "用户名或密码错误")
    if row.disabled:
        raise PermissionDenied("ACCOUNT_DISABLED", "this account is disabled", "该账号已停用")
    if _hasher.check_needs_rehash(row.password_hash or ""):
        row.password_hash = PASSWORD_HASHING.run(lambda: _hasher.hash(password))
    return Account.from_row(row)


def password_change_required() -> PermissionDenied:
    return PermissionDenied(
        "PASSWORD_CHANGE_REQUIRED",
        "the password was reset by an administrator: change it first (POST /v1/me/password)",
        "密码已由管理员重置，请先修改密码",
    )


# --- bearer tokens ------------------------------------------------------------------------------------------


def issue_token(
    session: Session,
    account_id: str,
    *,
    name: str,
    ttl: timedelta = DEFAULT_TOKEN_TTL,
    now: datetime | None = None,
) -> IssuedToken:
    now = now or utcnow()
    if ttl <= timedelta(0) or ttl > MAX_TOKEN_TTL:
        raise BadInput(
            "TOKEN_TTL_INVALID",
            f"token lifetime must be between 1 second and {MAX_TOKEN_TTL.days} days",
            f"令牌有效期须在 1 秒至 {MAX_TOKEN_TTL.days} 天之间",
        )
    if not name.strip() or len(name) > 128:
        raise BadInput("TOKEN_NAME_INVALID", "token name is empty or too long", "令牌名称为空或过长")
    account = _row(session, account_id)
    if account.disabled:
        raise PermissionDenied("ACCOUNT_DISABLED", "this account is disabled", "该账号已停用")
    if account.must_change_password:
        raise password_change_required()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = TokenRow(
        token_id=str(uuid.uuid4()),
        account_id=account_id,
        token_sha256=sha256_hex(secret),
        name=name.strip(),
        created_at=now,
        expires_at=now + ttl,
        revoked_at=None,
        last_used_at=None,
    )
    session.add(row)
    session.flush()
    return IssuedToken(ApiToken.from_row(row), secret)


def list_tokens(session: Session, account_id: str) -> list[ApiToken]:
    rows = session.scalars(
        select(TokenRow).where(TokenRow.account_id == account_id).order_by(TokenRow.created_at)
    )
    return [ApiToken.from_row(r) for r in rows]


def get_token(session: Session, token_id: str) -> ApiToken:
    row = session.get(TokenRow, token_id)
    if row is None:
        raise NotFound("TOKEN_NOT_FOUND", "no such token", "令牌不存在")
    return ApiToken.from_row(row)


def revoke_token(session: Session, token_id: str, *, now: datetime | None = None) -> ApiToken:
    row = session.get(TokenRow, token_id)
    if row is None:
        raise NotFound("TOKEN_NOT_FOUND", "no such token", "令牌不存在")
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
        session.flush()
    return ApiToken.from_row(row)


_tokens_t = cast(Table, TokenRow.__table__)
_accounts_t = cast(Table, AccountRow.__table__)
#: A token by its hash, with its account: read on every API call, so built once (its cache key memoized) and
#: read as Core rows on an autocommit connection (no BEGIN/COMMIT, no ORM identity map). The account columns
#: keep their names, so :meth:`Account.from_row` reads the row as it reads an ``AccountRow``.
_TOKEN_BY_HASH = (
    select(
        _tokens_t.c.token_id,
        _tokens_t.c.expires_at,
        _tokens_t.c.revoked_at,
        _tokens_t.c.last_used_at,
        *(
            _accounts_t.c[name]
            for name in (
                "account_id",
                "username",
                "display_name",
                "role",
                "org_code",
                "service_centre",
                "disabled",
                "password_hash",
                "created_at",
                "created_by",
                "person_id",
                "must_change_password",
            )
        ),
    )
    .join_from(_tokens_t, _accounts_t, _accounts_t.c.account_id == _tokens_t.c.account_id)
    .where(_tokens_t.c.token_sha256 == bindparam("token_sha256"))
)
_TOKEN_USED = (
    update(_tokens_t)
    .where(_tokens_t.c.token_id == bindparam("token"))
    .values(last_used_at=bindparam("used_at"))
)


def authenticate_token(engine: Engine, secret: str, *, now: datetime | None = None) -> Account:
    """The account behind a bearer token; ``401`` for unknown, expired or revoked, ``403`` if disabled.

    Read afresh on every call (a revocation, an expiry or a disabled account takes effect at once), on a
    :func:`core.db.reading_connection`: one row by key, no snapshot needed. ``last_used_at`` is written by
    a statement of its own (:func:`core.db.execute_alone`), at most once per :data:`LAST_USED_GRANULARITY`.
    """
    now = now or utcnow()
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        raise Unauthenticated("TOKEN_INVALID", "unknown API token", "无效的访问令牌")
    with reading_connection(engine) as conn:  # the token and its account in one round trip
        found = conn.execute(_TOKEN_BY_HASH, {"token_sha256": sha256_hex(secret)}).first()
    if found is None:
        raise Unauthenticated("TOKEN_INVALID", "unknown API token", "无效的访问令牌")
    if found.disabled:  # said first: disabling also revoked the token, but this is what the holder needs
        raise PermissionDenied("ACCOUNT_DISABLED", "this account is disabled", "该账号已停用")
    if found.revoked_at is not None:
        raise Unauthenticated("TOKEN_REVOKED", "this API token was revoked", "访问令牌已吊销")
    if aware(found.expires_at) <= now:
        raise Unauthenticated("TOKEN_EXPIRED", "this API token has expired", "访问令牌已过期")
    if found.last_used_at is None or aware(found.last_used_at) + LAST_USED_GRANULARITY <= now:
        execute_alone(engine, _TOKEN_USED, {"token": found.token_id, "used_at": now})
    return Account.from_row(found)


# --- console sessions ---------------------------------------------------------------------------------------


def open_session(session: Session, account: Account, *, now: datetime | None = None) -> tuple[str, str]:
    """A new console session: returns (cookie secret, CSRF token). Only the cookie's hash is stored."""
    now = now or utcnow()
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        SessionRow(
            session_sha256=sha256_hex(cookie),
            account_id=account.account_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_TTL,
            revoked_at=None,
        )
    )
    session.flush()
    return cookie, csrf


def resolve_session(session: Session, cookie: str, *, now: datetime | None = None) -> ConsoleSession:
    now = now or utcnow()
    if len(cookie) > 200:
        raise Unauthenticated("SESSION_INVALID", "no valid console session", "登录已失效，请重新登录")
    row = session.get(SessionRow, sha256_hex(cookie))
    if row is None or row.revoked_at is not None or aware(row.expires_at) <= now:
        raise Unauthenticated("SESSION_INVALID", "no valid console session", "登录已失效，请重新登录")
    account = _row(session, row.account_id)
    if account.disabled:
        raise PermissionDenied("ACCOUNT_DISABLED", "this account is disabled", "该账号已停用")
    return ConsoleSession(Account.from_row(account), row.csrf_token, aware(row.expires_at))


def close_session(session: Session, cookie: str, *, now: datetime | None = None) -> None:
    row = session.get(SessionRow, sha256_hex(cookie))
    if row is not None and row.revoked_at is None:
        row.revoked_at = now or utcnow()
        session.flush()


def csrf_matches(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())
