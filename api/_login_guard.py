"""Backoff for password logins, per account name and per client address (issue 21, finding 7).

Before this, 100 wrong passwords and then the right one logged in. Now:

* **Per account name**: the ``ACCOUNT_FREE_FAILURES``-th wrong password in a row locks the name for
  ``BASE_LOCK``; each further failure after a lock doubles it, at most ``MAX_LOCK``. While
  locked, *every* attempt for that name is refused at once with 429 ``LOGIN_THROTTLED`` and ``Retry-After``
  — the right password too, and without running argon2. Unknown names are counted exactly like known ones
  (a lockout tells nobody whether an account exists). A successful login clears the name's count.
* **Per client address**: the same with ``ADDRESS_FREE_FAILURES`` failures over all names (one address
  spraying many names).
* Counts are forgotten ``FORGET_AFTER`` after the last failure.

The state is a table (``api_login_failures``), so every serve worker sees it; keys are SHA-256 digests of
the name or address, never the name itself. A locked-out person waits (or an administrator resets the
password, which does not unlock early — the lock is on the name, deliberately cheap to reason about).
Counting happens in its own transaction, so a failed login's rollback does not undo its count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from api._accounts import aware, utcnow
from api._errors import RateLimited, Unauthenticated
from api._storage import LoginFailureRow
from core.db import transaction

ACCOUNT_FREE_FAILURES = 5
ADDRESS_FREE_FAILURES = 20
BASE_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)

_T = TypeVar("_T")


def _key(kind: str, value: str) -> str:
    return f"{kind}:" + hashlib.sha256(value.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()


def client_address(request: Request) -> str | None:
    """The address the backoff counts under: the peer as the server sees it (behind the nginx example,
    uvicorn's proxy-headers handling has already put the client's address there)."""
    return request.client.host if request.client else None


def keys_for(username: str, address: str | None) -> list[tuple[str, int]]:
    """The (key, free failures) pairs a login attempt is counted under."""
    keys = [(_key("acct", username), ACCOUNT_FREE_FAILURES)]
    if address:
        keys.append((_key("addr", address), ADDRESS_FREE_FAILURES))
    return keys


def lock_for(failures: int, free: int) -> timedelta | None:
    """How long a key is locked after its ``failures``-th failure (None: not yet)."""
    over = failures - free
    if over < 0:
        return None
    return min(MAX_LOCK, BASE_LOCK * (2 ** min(over, 16)))


def refuse(wait_s: float) -> RateLimited:
    retry = max(1, int(wait_s + 0.999))
    return RateLimited(
        "LOGIN_THROTTLED",
        f"too many failed logins for this account or from this address; try again in {retry} s",
        f"登录失败次数过多，请 {retry} 秒后再试（如忘记密码，请联系县行政审批局管理员重置）",
        details={"retry_after_s": retry},
    )


def remaining_lock(s: Session, keys: list[tuple[str, int]], now: datetime) -> float:
    """Seconds until every key is unlocked (0: none is locked)."""
    rows = s.scalars(select(LoginFailureRow).where(LoginFailureRow.key.in_([k for k, _ in keys]))).all()
    wait = 0.0
    for row in rows:
        if row.locked_until is not None:
            wait = max(wait, (aware(row.locked_until) - now).total_seconds())
    return wait


def _insert_first(sessions: sessionmaker[Session], key: str, now: datetime) -> bool:
    """A key's first failure; False when another worker inserted the row first."""
    try:
        with transaction(sessions) as s:
            s.add(LoginFailureRow(key=key, failures=1, last_failure_at=now, locked_until=None))
        return True
    except IntegrityError:
        return False


def record_failure(sessions: sessionmaker[Session], keys: list[tuple[str, int]], now: datetime) -> None:
    """Counts one failure under every key; each key's lock follows from its new count."""
    for key, free in keys:
        with transaction(sessions) as s:
            exists = s.get(LoginFailureRow, key) is not None
        if not exists and _insert_first(sessions, key, now):
            if (lock := lock_for(1, free)) is not None:
                with transaction(sessions) as s:
                    s.execute(
                        update(LoginFailureRow)
                        .where(LoginFailureRow.key == key)
                        .values(locked_until=now + lock)
                    )
            continue
        with transaction(sessions) as s:
            cutoff = now - FORGET_AFTER
            # One atomic increment (two workers failing at once both count); a stale count starts over.
            s.execute(
                update(LoginFailureRow)
                .where(LoginFailureRow.key == key)
                .values(
                    failures=case(
                        (LoginFailureRow.last_failure_at < cutoff, 1), else_=LoginFailureRow.failures + 1
                    ),
                    last_failure_at=now,
                )
            )
            failures = s.scalar(select(LoginFailureRow.failures).where(LoginFailureRow.key == key)) or 1
            lock = lock_for(failures, free)
            s.execute(
                update(LoginFailureRow)
                .where(LoginFailureRow.key == key)
                .values(locked_until=now + lock if lock is not None else None)
            )


def guarded(
    sessions: sessionmaker[Session],
    username: str,
    address: str | None,
    attempt: Callable[[], _T],
    *,
    now: Callable[[], datetime] = utcnow,
) -> _T:
    """Runs ``attempt`` (which checks the password) unless the name or the address is locked out; counts a
    ``LOGIN_FAILED`` it raises, clears the name's count when it succeeds."""
    keys = keys_for(username, address)
    with transaction(sessions) as s:
        wait = remaining_lock(s, keys, now())
    if wait > 0:
        raise refuse(wait)
    try:
        result = attempt()
    except Unauthenticated as exc:
        if exc.code == "LOGIN_FAILED":
            record_failure(sessions, keys, now())
        raise
    with transaction(sessions) as s:
        s.execute(delete(LoginFailureRow).where(LoginFailureRow.key == keys[0][0]))
    return result
