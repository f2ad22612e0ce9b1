"""RFC 7512 PKCS#11 URIs: ``pkcs11:token=yizhang;slot-id=0?module-path=/usr/lib/x.so&pin-source=file:/p``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from core.errors import BadInput

_PATH_ATTRS = frozenset(
    {
        "token",
        "manufacturer",
        "serial",
        "model",
        "library-manufacturer",
        "library-description",
        "library-version",
        "slot-description",
        "slot-manufacturer",
        "slot-id",
        "object",
        "type",
        "id",
    }
)
_QUERY_ATTRS = frozenset({"pin-source", "pin-value", "module-name", "module-path"})
# RFC 7512 section 2.3: pchar without the separators, plus percent-escapes.
_UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
_PATH_EXTRA = frozenset(":[]@!$'()*+,=&")
_QUERY_EXTRA = frozenset("/?|:[]@!$'()*+,=")
_MODULE_DIRS = (
    Path("/usr/lib/x86_64-linux-gnu/pkcs11"),
    Path("/usr/lib/aarch64-linux-gnu/pkcs11"),
    Path("/usr/lib/pkcs11"),
    Path("/usr/lib/softhsm"),
    Path("/usr/local/lib/pkcs11"),
)


def _invalid(uri_reason: str) -> BadInput:
    return BadInput(
        "PKCS11_URI_INVALID",
        f"malformed PKCS#11 URI: {uri_reason}",
        f"PKCS#11 URI 格式错误：{uri_reason}",
        details={"reason": uri_reason},
    )


def _decode(raw: str, allowed_extra: frozenset[str]) -> str:
    for i, ch in enumerate(raw):
        if ch == "%":
            hexpart = raw[i + 1 : i + 3]
            if len(hexpart) != 2 or any(c not in "0123456789abcdefABCDEF" for c in hexpart):
                raise _invalid("bad percent-escape")
        elif ch not in _UNRESERVED and ch not in allowed_extra:
            raise _invalid(f"character {ch!r} must be percent-encoded")
    return unquote(raw, errors="strict")


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parsed URI. The PIN itself is never carried here: only a pin-source reference."""

    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, uri: str) -> Pkcs11Uri:
        if not isinstance(uri, str) or not uri.startswith("pkcs11:"):
            raise _invalid("the scheme must be 'pkcs11:'")
        rest = uri.removeprefix("pkcs11:")
        if "#" in rest:
            raise _invalid("a fragment is not allowed")
        path_part, _, query_part = rest.partition("?")
        path: dict[str, str] = {}
        query: dict[str, str] = {}
        for target, part, sep, known, extra in (
            (path, path_part, ";", _PATH_ATTRS, _PATH_EXTRA),
            (query, query_part, "&", _QUERY_ATTRS, _QUERY_EXTRA),
        ):
            if not part:
                continue
            for item in part.split(sep):
                name, eq, value = item.partition("=")
                if not eq or not name:
                    raise _invalid(f"attribute {item!r} is not name=value")
                if name not in known and not name.startswith("x-"):
                    raise _invalid(f"unknown attribute {name!r}")
                if name in target:
                    raise _invalid(f"attribute {name!r} given twice")
                target[name] = _decode(value, extra)
        if "slot-id" in path and not path["slot-id"].isdigit():
            raise _invalid("slot-id must be a decimal number")
        if "pin-value" in query:
            # A PIN in configuration is a PIN in logs and backups: name a source instead.
            raise _invalid("pin-value is not accepted; use pin-source or the pin_source setting")
        if "module-path" in query and "module-name" in query:
            raise _invalid("give module-path or module-name, not both")
        if not path.get("token") and "slot-id" not in path and "serial" not in path:
            raise _invalid("the URI must name the token (token=, serial= or slot-id=)")
        return cls(path=path, query=query)

    @property
    def token_label(self) -> str | None:
        return self.path.get("token")

    @property
    def token_serial(self) -> str | None:
        return self.path.get("serial")

    @property
    def slot_id(self) -> int | None:
        value = self.path.get("slot-id")
        return int(value) if value is not None else None

    @property
    def pin_source(self) -> str | None:
        """RFC 7512 pin-source is itself a URI; ``file:`` and our ``env:`` are understood."""
        src = self.query.get("pin-source")
        if src is None:
            return None
        if src.startswith("file://"):
            return "file:" + src.removeprefix("file://")
        return src

    def module_path(self, default: str) -> str:
        if "module-path" in self.query:
            return self.query["module-path"]
        name = self.query.get("module-name")
        if name is None:
            return default
        for directory in _MODULE_DIRS:
            for candidate in (directory / f"{name}.so", directory / f"lib{name}.so"):
                if candidate.exists():
                    return str(candidate)
        return name  # left to the loader, which reports PKCS11_MODULE_NOT_FOUND

    def describe(self) -> str:
        """A loggable form (no PIN can be in it: pin-value is refused at parse time)."""
        path = ";".join(f"{k}={v}" for k, v in self.path.items())
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return f"pkcs11:{path}" + (f"?{query}" if query else "")
