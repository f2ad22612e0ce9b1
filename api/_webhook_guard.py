"""Where a webhook may post (issue 21, finding 3): public addresses only, unless the operator names the host.

A webhook URL is chosen by whoever registers it, and the service posts to it from inside the county's
network; without a check it reaches the database port, the metadata service or any intranet host, and its
``last_error`` tells open from closed ports. So:

  1. the URL is http(s), with a host and no user part; a host spelled as a number in any other form than
     the dotted quad (``0x7f000001``, ``2130706433``, ``0177.0.0.1``, ``127.1``) is refused outright;
  2. the host is resolved, and *every* address it resolves to is classified (:func:`address_refusal`):
     loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT), documentation, and
     IPv6 forms that carry such an IPv4 address (IPv4-mapped, 6to4, NAT64, Teredo, IPv4-compatible) are
     refused — one bad address refuses the destination;
  3. a host named in ``YIZHANG_WEBHOOK_ALLOW_HOSTS`` skips step 2 (an on-premises receiver);
  4. the connection goes to an address just checked (:func:`pinned`), with the URL's host kept in the
     ``Host`` header and as the TLS server name, so a name that resolves differently a moment later (DNS
     rebinding) is never looked up again for the connection.

This runs at registration and again before every delivery. The owner of a hook learns only "refused" or
"failed"; which check refused, or what answered, goes to the operator's log.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from core.errors import BadInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host, port -> the addresses it resolves to (as text). Tests put a loopback-only one in its place.
Resolver = Callable[[str, int], list[str]]

# Not global, though Python's ``is_global`` (3.11) or ``is_private`` miss some of them.
_V4_REFUSED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix: the last 32 bits are an IPv4 address
_V6_REFUSED = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # IPv4-compatible (deprecated) and the unspecified/loopback addresses
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/32",  # Teredo
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fec0::/10",  # site-local (deprecated)
    )
)
_NUMERIC_HOST = re.compile(r"^[0-9a-fA-FxX.]+$")


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


#: The resolver every check uses unless one is passed; the test suite replaces it (no DNS from tests).
RESOLVE: Resolver = system_resolve


class DestinationRefused(BadInput):
    """The webhook's destination may not be posted to. The message says only that (no oracle)."""

    def __init__(self, why: str) -> None:
        super().__init__(
            "WEBHOOK_DESTINATION_REFUSED",
            "the webhook destination is refused: it must resolve to public addresses only",
            "回调地址被拒绝：只允许解析为公网地址的目标",
        )
        self.why = why  # for the operator's log, never for the hook's owner


def _loose_ipv4_part(part: str) -> int | None:
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part, 8)
        return int(part, 10)
    except ValueError:
        return None


def loose_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a numeric host means to ``inet_aton`` (and so to most resolvers): hex, octal, a
    single 32-bit number, or fewer than four parts (``127.1``); ``None`` if it is not numeric."""
    text = host.rstrip(".")
    if not text or not _NUMERIC_HOST.match(text):
        return None
    parts = text.split(".")
    if len(parts) > 4:
        return None
    values = [_loose_ipv4_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    nums = [v for v in values if v is not None]
    *head, last = nums
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for v in head:
        value = value << 8 | v
    value = value << (8 * (4 - len(head))) | last
    return ipaddress.IPv4Address(value)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries to a gateway: IPv4-mapped, 6to4, NAT64, Teredo."""
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip in _NAT64:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.teredo is not None:
        out.extend(ip.teredo)
    return out


def address_refusal(ip: Address) -> str | None:
    """Why a webhook may not post to ``ip`` (a short reason for the operator's log), or ``None``."""
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for why, hit in checks:
        if hit:
            return why
    if isinstance(ip, ipaddress.IPv4Address):
        if any(ip in net for net in _V4_REFUSED):
            return "special-purpose"
    else:
        if ip.scope_id:
            return "scoped"
        for inner in embedded_ipv4(ip):
            inner_why = address_refusal(inner)
            if inner_why is not None:
                return f"{inner_why} (embedded in IPv6)"
        if any(ip in net for net in _V6_REFUSED):
            return "special-purpose"
    if not ip.is_global:
        return "not global"
    return None


def parse_allow_hosts(setting: str | None) -> frozenset[str]:
    """``YIZHANG_WEBHOOK_ALLOW_HOSTS``: comma-separated host names or IP addresses, as the URL names them."""
    return frozenset(_host_key(h) for h in (setting or "").split(",") if h.strip())


def _host_key(host: str) -> str:
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


@dataclass(frozen=True)
class Destination:
    """A checked destination: the URL, its host as written, and the addresses that may be connected to."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]
    allow_listed: bool


def _split(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        host, port = None, None
    if parts.scheme not in {"https", "http"} or not host or "@" in parts.netloc or len(url) > 500:
        raise BadInput(
            "WEBHOOK_URL_INVALID",
            "the webhook URL must be http(s)://host/... (no user part)",
            "回调地址须为 http(s) URL，且不得含用户信息",
        )
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def check_destination(url: str, allow_hosts: Iterable[str], resolve: Resolver | None = None) -> Destination:
    """The destination of ``url`` with its addresses, or :class:`DestinationRefused` (see the plan above)."""
    _, host, port = _split(url)
    key = _host_key(host)
    allowed = key in frozenset(allow_hosts)
    literal: Address | None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is None and loose_ipv4(host) is not None:
        raise DestinationRefused("numeric host in a non-canonical form")
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = (resolve or RESOLVE)(host, port)
        except (OSError, UnicodeError) as exc:
            raise DestinationRefused(f"does not resolve ({type(exc).__name__})") from None
    if not addresses:
        raise DestinationRefused("does not resolve")
    checked: list[str] = []
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise DestinationRefused("resolver answered something that is not an address") from None
        if not allowed:
            why = address_refusal(ip)
            if why is not None:
                raise DestinationRefused(f"resolves to a {why} address")
        checked.append(str(ip))
    return Destination(url, host, port, tuple(dict.fromkeys(checked)), allowed)


def pinned(destination: Destination) -> tuple[httpx.URL, dict[str, str], dict[str, object]]:
    """(URL, extra headers, request extensions) that connect to the destination's first checked address
    and present its host name in ``Host`` and as the TLS server name (certificates are checked for it)."""
    url = httpx.URL(destination.url)
    extensions: dict[str, object] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = destination.host
    return url.copy_with(host=destination.addresses[0]), {"Host": url.netloc.decode("ascii")}, extensions
