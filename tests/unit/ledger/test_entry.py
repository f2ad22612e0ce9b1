"""Canonical entry encoding: stable bytes, canonical-only decoding, personal data only as commitments."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import _entry, _merkle
from ledger._entry import DecisionStatus, EntryError, EntryKind
from tests._fixtures.ledger import seal_signed_body

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
PREV = b"\x11" * 32

# Pinned: if this changes, every deployed log breaks. Bump the version byte instead.
GOLDEN_PAYLOAD = (
    '{"at":"2026-03-01T09:30:00.000000Z","body":{"actor":"principal-wang","document_number":"兴审批〔2026〕8号",'
    '"reason":"申请人以欺骗手段取得","refers_to_index":3,"status":"REVOKED"},"kind":"DECISION_STATUS_CHANGED",'
    '"personal":{"applicant_name":"hmac-sha256:11d94cae736cb2884ba01daaf6800f7c9e6447c80268c0cd0498cf554dcb7516"}}'
)
GOLDEN_LEAF = "008d0781843ea50ce582c991c246ee1ac76f09e8642c730a51602e6c4265e9ac"


def _golden() -> bytes:
    return _entry.encode(
        7,
        PREV,
        EntryKind.DECISION_STATUS_CHANGED,
        AT,
        {
            "status": DecisionStatus.REVOKED,
            "reason": "申请人以欺骗手段取得",
            "document_number": "兴审批〔2026〕8号",
            "actor": "principal-wang",
            "refers_to_index": 3,
        },
        {"applicant_name": _entry.commit_personal(b"s" * 16, "张三")},
    )


def test_golden_encoding_is_stable() -> None:
    enc = _golden()
    assert enc[:1] == b"\x01"
    assert enc[1:9] == (7).to_bytes(8, "big")
    assert enc[9:41] == PREV
    assert enc[41:].decode("utf-8") == GOLDEN_PAYLOAD
    assert _merkle.leaf_hash(enc).hex() == GOLDEN_LEAF


def test_decode_round_trip_and_reencode() -> None:
    enc = _golden()
    d = _entry.decode(enc)
    assert (d.index, d.prev, d.kind, d.at) == (7, PREV, EntryKind.DECISION_STATUS_CHANGED, AT)
    assert _entry.encode(d.index, d.prev, d.kind, d.at, d.body, d.personal) == enc


def test_time_zone_and_key_order_do_not_change_bytes() -> None:
    cst = timezone(timedelta(hours=8))
    body = seal_signed_body(1)
    a = _entry.encode(0, _entry.ZERO_HASH, EntryKind.SEAL_SIGNED, AT, body, {})
    b = _entry.encode(
        0, _entry.ZERO_HASH, EntryKind.SEAL_SIGNED, AT.astimezone(cst), dict(reversed(body.items())), {}
    )
    assert a == b


def test_nfc_normalisation() -> None:
    body = seal_signed_body(1, reason="Cafe\u0301")
    nfc = seal_signed_body(1, reason="Caf\u00e9")
    a = _entry.encode(0, _entry.ZERO_HASH, EntryKind.SEAL_SIGNED, AT, body, {})
    assert a == _entry.encode(0, _entry.ZERO_HASH, EntryKind.SEAL_SIGNED, AT, nfc, {})


def test_big_certificate_serial_is_a_decimal_string() -> None:
    enc = _entry.encode(0, _entry.ZERO_HASH, EntryKind.SEAL_SIGNED, AT, seal_signed_body(0), {})
    assert _entry.decode(enc).body["cert_serial"] == str(0x1234567890ABCDEF1234567890ABCDEF)


@pytest.mark.parametrize(
    ("kind", "body", "personal"),
    [
        (EntryKind.SEAL_SIGNED, {**seal_signed_body(0), "matter": ""}, {}),
        (EntryKind.SEAL_SIGNED, {**seal_signed_body(0), "count": 0}, {}),
        (EntryKind.SEAL_SIGNED, {**seal_signed_body(0), "ratio": 0.5}, {}),
        (EntryKind.SEAL_SIGNED, {**seal_signed_body(0), "big": 2**60}, {}),
        (EntryKind.SEAL_SIGNED, {**seal_signed_body(0), "Bad-Key": 1}, {}),
        (EntryKind.SEAL_SIGNED, {**seal_signed_body(0), "applicant_name": "张三"}, {}),
        (EntryKind.SEAL_SIGNED, seal_signed_body(0), {"applicant_name": "张三"}),
        (
            EntryKind.SIGNING_REFUSED,
            {"seal_id": "s", "matter": "m", "operator": "o", "reason_codes": "X"},
            {},
        ),
        (
            EntryKind.DECISION_STATUS_CHANGED,
            {"document_number": "n", "status": "LOST", "reason": "r", "actor": "a"},
            {},
        ),
    ],
)
def test_invalid_entries_are_refused(kind: EntryKind, body: dict, personal: dict) -> None:
    with pytest.raises(EntryError) as exc:
        _entry.encode(0, _entry.ZERO_HASH, kind, AT, body, personal)
    assert exc.value.code == "LEDGER_ENTRY_INVALID"


def test_naive_time_is_refused() -> None:
    with pytest.raises(EntryError) as exc:
        _entry.encode(
            0, _entry.ZERO_HASH, EntryKind.SEAL_SIGNED, AT.replace(tzinfo=None), seal_signed_body(0), {}
        )
    assert exc.value.code == "LEDGER_ENTRY_INVALID"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda e: e[:-1],  # truncated JSON
        lambda e: b"\x02" + e[1:],  # unknown version
        lambda e: e[:41] + e[41:].replace(b'","', b'", "', 1),  # whitespace: not canonical
        lambda e: e[:41] + e[41:].replace(b"REVOKED", b"LOST"),  # unknown status
        lambda e: e[:10],  # too short
        lambda e: e[:41] + b'{"at":1}',
    ],
)
def test_non_canonical_or_garbage_is_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EntryError) as exc:
        _entry.decode(mangle(_golden()))
    assert exc.value.code == "LEDGER_ENTRY_MALFORMED"


def test_personal_commitment_is_salted_hmac() -> None:
    salt = b"\x07" * 16
    got = _entry.commit_personal(salt, "张三")
    assert got == "hmac-sha256:" + hmac.new(salt, "张三".encode(), hashlib.sha256).hexdigest()
    assert _entry.commit_personal(b"\x08" * 16, "张三") != got
    with pytest.raises(EntryError):
        _entry.commit_personal(b"short", "张三")


@settings(max_examples=50, deadline=None)
@given(
    text=st.text(min_size=1, max_size=40),
    count=st.integers(1, 10_000),
    index=st.integers(0, 2**40),
)
def test_any_valid_entry_round_trips(text: str, count: int, index: int) -> None:
    body = seal_signed_body(0, reason=text, count=count, extra={"note": text, "list": [text, 1, None, True]})
    enc = _entry.encode(index, PREV, EntryKind.SEAL_SIGNED, AT, body, {})
    d = _entry.decode(enc)
    assert _entry.encode(d.index, d.prev, d.kind, d.at, d.body, d.personal) == enc
