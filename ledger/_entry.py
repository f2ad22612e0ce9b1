"""Canonical, versioned byte encoding of ledger entries (standard library only).

Format v1 (docs/ledger-format.md)::

    0x01                      version byte
    index                     8 bytes, unsigned big-endian: the entry's position in the log
    prev                      32 bytes: entry hash (RFC 6962 leaf hash) of entry index-1; zeros for index 0
    payload                   canonical JSON, UTF-8: {"at", "body", "kind", "personal"}

The entry hash is the RFC 6962 leaf hash ``SHA-256(0x00 || encoded)``: the same 32 bytes are the chain link
the next entry commits to and the Merkle leaf. Canonical JSON: keys sorted by code point, no whitespace,
strings NFC-normalised and written as UTF-8 (not ``\\u`` escapes), integers only within ±(2**53 - 1), no
floats, ``at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC). A decoded entry re-encodes to the same bytes.

Personal data (applicant name, ID number) never enters an entry in clear: ``personal`` maps a field name to
``hmac-sha256:<hex>`` of the NFC value under a random per-field salt kept outside the log.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import struct
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeAlias

VERSION = 1
HEADER = struct.Struct(">BQ32s")
HEADER_SIZE = HEADER.size  # 41
ZERO_HASH = b"\x00" * 32
MAX_SAFE_INT = 2**53 - 1
MAX_ENTRY_BYTES = 64 * 1024
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TIME_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"

#: A value of an entry's canonical JSON (no floats: see the module docstring).
JsonValue: TypeAlias = "None | bool | int | str | list[JsonValue] | dict[str, JsonValue]"


class EntryError(ValueError):
    """An entry cannot be encoded or decoded; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class EntryKind(enum.StrEnum):
    SEAL_SIGNED = "SEAL_SIGNED"
    SIGNING_REFUSED = "SIGNING_REFUSED"
    DOCUMENT_NUMBER_VOIDED = "DOCUMENT_NUMBER_VOIDED"
    SEAL_LIFECYCLE = "SEAL_LIFECYCLE"
    AGREEMENT_CHANGED = "AGREEMENT_CHANGED"
    POWERS_CHANGED = "POWERS_CHANGED"
    DECISION_STATUS_CHANGED = "DECISION_STATUS_CHANGED"
    ACCOUNT_CHANGED = "ACCOUNT_CHANGED"  # an account-administration act (api._accounts.AccountChange)
    TOWNSHIP_CHANGED = "TOWNSHIP_CHANGED"  # a township renamed, merged or retired (issue 22, leak 7)


class DecisionStatus(enum.StrEnum):
    """Later changes of an approval decision (003): 变更、撤回、撤销、注销."""

    CHANGED = "CHANGED"
    WITHDRAWN = "WITHDRAWN"
    REVOKED = "REVOKED"
    CANCELLED = "CANCELLED"


#: After these a decision has no effect left to change (a changed decision may still be withdrawn etc.).
FINAL_DECISION_STATUSES = frozenset(
    {DecisionStatus.WITHDRAWN, DecisionStatus.REVOKED, DecisionStatus.CANCELLED}
)


# Fields each kind must carry in its body (others may be added; all are committed to).
REQUIRED: dict[EntryKind, tuple[str, ...]] = {
    EntryKind.SEAL_SIGNED: (
        "seal_id",
        "matter",
        "stage",
        "document_kind",
        "document_number",
        "document_sha256",
        "operator",
        "approver",
        "reason",
        "count",
        "cert_serial",
    ),
    EntryKind.SIGNING_REFUSED: ("seal_id", "matter", "operator", "reason_codes"),
    EntryKind.DOCUMENT_NUMBER_VOIDED: ("document_number", "operator", "reason"),
    EntryKind.SEAL_LIFECYCLE: ("seal_id", "event", "actor", "reason"),
    EntryKind.AGREEMENT_CHANGED: ("agreement_id", "change", "actor"),
    EntryKind.POWERS_CHANGED: ("township_code", "change", "actor"),
    EntryKind.DECISION_STATUS_CHANGED: ("document_number", "status", "reason", "actor"),
    # The account itself (id, username) is committed to in ``personal``; the body says what changed.
    EntryKind.ACCOUNT_CHANGED: ("change", "actor", "via"),
    EntryKind.TOWNSHIP_CHANGED: ("township_code", "change", "actor", "basis"),
}

# Fields that are personal data: refused in ``body``, accepted only through ``personal``.
PERSONAL_FIELDS = frozenset({"applicant_name", "applicant_id_number", "id_number", "phone"})

# Body fields that name a person (usernames, account ids, approvers) or carry free text (reasons, notes):
# ``Ledger.append`` moves them into ``personal`` as salted commitments, so the entry, which receipts and the
# public proofs show to anyone, holds hashes and public facts only (issue 21). A required field counts as
# present when it is committed to in ``personal``. Entries logged before this kept them in ``body``; their
# bytes never change. The placeholders "-" and "" stay in ``body``: "no approver" is a public fact.
SALTED_BODY_FIELDS = frozenset({"operator", "approver", "actor", "requested_by", "reason", "note", "comment"})
# Kinds where a field of that name holds a machine code, not free text: it stays in ``body``.
PUBLIC_CODE_FIELDS: dict[EntryKind, frozenset[str]] = {
    EntryKind.DOCUMENT_NUMBER_VOIDED: frozenset({"reason"})
}


def split_salted(kind: EntryKind, body: Mapping[str, object]) -> tuple[dict[str, object], dict[str, str]]:
    """(public body, fields to commit to) of a body about to be logged: see ``SALTED_BODY_FIELDS``."""
    keep = PUBLIC_CODE_FIELDS.get(kind, frozenset())
    public: dict[str, object] = {}
    salted: dict[str, str] = {}
    for k, v in body.items():
        if k in SALTED_BODY_FIELDS and k not in keep and isinstance(v, str) and v not in ("", "-"):
            salted[k] = v
        else:
            public[k] = v
    return public, salted


@dataclass(frozen=True)
class EntryFields:
    """What a caller logs: the kind, when it happened, its body, and personal data in clear (to be salted)."""

    kind: EntryKind
    at: datetime
    body: Mapping[str, object]
    personal: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DecodedEntry:
    version: int
    index: int
    prev: bytes
    kind: EntryKind
    at: datetime
    body: dict[str, JsonValue]
    personal: dict[str, str]


def commit_personal(salt: bytes, value: str) -> str:
    """The commitment to one personal value: HMAC-SHA256 under its own random salt."""
    if len(salt) < 16:
        raise EntryError("LEDGER_ENTRY_INVALID", "a personal-data salt must have at least 16 bytes")
    mac = hmac.new(salt, unicodedata.normalize("NFC", value).encode("utf-8"), hashlib.sha256)
    return "hmac-sha256:" + mac.hexdigest()


def format_time(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise EntryError("LEDGER_ENTRY_INVALID", "entry time must be timezone-aware")
    return at.astimezone(UTC).strftime(_TIME_FMT)


def parse_time(text: str) -> datetime:
    try:
        at = datetime.strptime(text, _TIME_FMT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise EntryError("LEDGER_ENTRY_MALFORMED", f"bad entry time {text!r}") from exc
    if format_time(at) != text:
        raise EntryError("LEDGER_ENTRY_MALFORMED", "entry time is not canonical")
    return at


def _canon(value: object, path: str) -> JsonValue:
    """A JSON value in canonical form, or EntryError; enums become their values, big ints refused."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise EntryError("LEDGER_ENTRY_INVALID", f"{path}: integer out of range; pass it as a string")
        return value
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list | tuple):
        return [_canon(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, JsonValue] = {}
        for k, v in value.items():
            if not isinstance(k, str) or not _KEY.match(k):
                raise EntryError("LEDGER_ENTRY_INVALID", f"{path}: bad field name {k!r}")
            out[k] = _canon(v, f"{path}.{k}")
        return out
    raise EntryError("LEDGER_ENTRY_INVALID", f"{path}: {type(value).__name__} is not allowed in an entry")


def _dumps(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def normalize_body(
    kind: EntryKind, body: Mapping[str, object], committed: Iterable[str] = ()
) -> dict[str, JsonValue]:
    """Check the body for its kind and bring it to canonical form (certificate serials as decimal strings).
    ``committed``: fields present as commitments in ``personal`` (they satisfy the kind's requirements)."""
    raw = dict(body)
    serial = raw.get("cert_serial")
    if isinstance(serial, int) and not isinstance(serial, bool):
        # X.509 serials run to 160 bits: beyond what every JSON reader keeps exactly.
        raw["cert_serial"] = str(raw["cert_serial"])
    canon = _canon(raw, "body")
    assert isinstance(canon, dict)  # a mapping canonicalises to a dict
    salted = set(committed)
    missing = [f for f in REQUIRED[kind] if canon.get(f) in (None, "") and f not in salted]
    if missing:
        raise EntryError("LEDGER_ENTRY_INVALID", f"{kind.value} needs {', '.join(missing)}")
    leaked = sorted(PERSONAL_FIELDS & canon.keys())
    if leaked:
        raise EntryError("LEDGER_ENTRY_INVALID", f"personal data {', '.join(leaked)} must go in 'personal'")
    if kind is EntryKind.DECISION_STATUS_CHANGED:
        try:
            DecisionStatus(str(canon["status"]))  # no str() of a non-string names a status either
        except ValueError as exc:
            raise EntryError("LEDGER_ENTRY_INVALID", f"unknown decision status {canon['status']!r}") from exc
    if kind is EntryKind.SIGNING_REFUSED and not (
        isinstance(canon["reason_codes"], list) and all(isinstance(c, str) for c in canon["reason_codes"])
    ):
        raise EntryError("LEDGER_ENTRY_INVALID", "reason_codes must be a list of codes")
    if kind is EntryKind.SEAL_SIGNED and not (isinstance(canon["count"], int) and canon["count"] >= 1):
        raise EntryError("LEDGER_ENTRY_INVALID", "count must be a positive integer")
    return canon


def encode(
    index: int,
    prev: bytes,
    kind: EntryKind,
    at: datetime,
    body: Mapping[str, object],
    personal: Mapping[str, str],
) -> bytes:
    """The canonical bytes of one entry. ``personal`` holds commitments (see :func:`commit_personal`)."""
    if not 0 <= index < 2**63:
        raise EntryError("LEDGER_ENTRY_INVALID", "index out of range")
    if len(prev) != 32:
        raise EntryError("LEDGER_ENTRY_INVALID", "prev must be a 32-byte hash")
    kind = EntryKind(kind)
    for k, v in personal.items():
        if not _KEY.match(k) or not isinstance(v, str) or not v.startswith("hmac-sha256:"):
            raise EntryError("LEDGER_ENTRY_INVALID", f"personal field {k!r} must be a commitment")
    payload = {
        "at": format_time(at),
        "body": normalize_body(kind, body, personal.keys()),
        "kind": kind.value,
        "personal": dict(personal),
    }
    out = HEADER.pack(VERSION, index, prev) + _dumps(payload)
    if len(out) > MAX_ENTRY_BYTES:
        raise EntryError("LEDGER_ENTRY_INVALID", f"entry exceeds {MAX_ENTRY_BYTES} bytes")
    return out


def read_header(encoded: bytes) -> tuple[int, int, bytes]:
    """(version, index, prev) without parsing the payload: what a streaming audit needs."""
    if len(encoded) < HEADER_SIZE + 2:
        raise EntryError("LEDGER_ENTRY_MALFORMED", "entry is too short")
    version, index, prev = HEADER.unpack_from(encoded)
    if version != VERSION:
        raise EntryError("LEDGER_ENTRY_MALFORMED", f"unknown entry version {version}")
    return version, index, prev


def decode(encoded: bytes) -> DecodedEntry:
    """Parse and check an entry; refuses anything that is not byte-for-byte canonical."""
    version, index, prev = read_header(encoded)
    try:
        payload = json.loads(encoded[HEADER_SIZE:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EntryError("LEDGER_ENTRY_MALFORMED", "entry payload is not UTF-8 JSON") from exc
    if not isinstance(payload, dict) or set(payload) != {"at", "body", "kind", "personal"}:
        raise EntryError("LEDGER_ENTRY_MALFORMED", "entry payload has the wrong fields")
    try:
        kind = EntryKind(payload["kind"])
        entry = DecodedEntry(
            version=version,
            index=index,
            prev=prev,
            kind=kind,
            at=parse_time(payload["at"]),
            body=dict(payload["body"]),
            personal=dict(payload["personal"]),
        )
        again = encode(index, prev, kind, entry.at, entry.body, entry.personal)
    except (EntryError, ValueError, TypeError) as exc:
        raise EntryError("LEDGER_ENTRY_MALFORMED", f"entry does not decode: {exc}") from exc
    if again != encoded:
        raise EntryError("LEDGER_ENTRY_MALFORMED", "entry is not in canonical form")
    return entry
