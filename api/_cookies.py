"""The console's cookies: one place sets their flags (issue 21 finding 14).

Every cookie is HttpOnly. ``Secure`` is on unless ``YIZHANG_COOKIE_SECURE`` says otherwise or, when that is
unset, the public URL is plain ``http://`` on a loopback address (``yizhang demo`` and a developer's
``serve`` on 127.0.0.1, where there is no TLS to require). A deployment reached over the network gets
``Secure`` even if its public URL was written ``http://`` by mistake; the browser then refuses to send the
session over plain HTTP rather than leak it.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from starlette.responses import Response

from api._accounts import SESSION_TTL
from core.settings import Settings

SESSION_COOKIE = "yz_session"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_secure(settings: Settings) -> bool:
    """Whether cookies carry ``Secure`` (see the module docstring)."""
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    url = urlsplit(settings.public_base_url)
    if url.scheme == "https":
        return True
    return not _loopback(url.hostname or "")


def set_cookie(
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
    samesite: Literal["strict", "lax"] = "strict",
) -> None:
    """Set one console cookie: HttpOnly, ``samesite``, Secure per :func:`cookie_secure`."""
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite=samesite,
        secure=cookie_secure(settings),
        path=path,
        max_age=max_age,
    )


def set_session_cookie(response: Response, settings: Settings, value: str) -> None:
    """The console session's cookie (password login, API login, OpenID Connect login): SameSite=Strict, for
    as long as the session lives."""
    set_cookie(response, settings, SESSION_COOKIE, value, max_age=int(SESSION_TTL.total_seconds()))


def clear_session_cookie(response: Response) -> None:
    """Forget the session's cookie (logout, a password changed, a session expired)."""
    response.delete_cookie(SESSION_COOKIE, path="/")
