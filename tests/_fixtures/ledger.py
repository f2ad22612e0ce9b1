"""Fixtures for the ledger package's tests (owned by that area)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest


class MemorySigner:
    """An Ed25519 note signer held in memory (a real key, real signatures; no file, no token)."""

    def __init__(self, name: str = "yizhang.test/ledger") -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self._key = Ed25519PrivateKey.generate()
        self._name = name
        self._public = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


BASE_TIME = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def seal_signed_body(n: int = 0, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "seal_id": "seal-360732-001",
        "matter": "最低生活保障审核确认",
        "stage": "APPROVE",
        "document_kind": "APPROVAL_FORM",
        "document_number": f"兴审批〔2026〕{n + 1}号",
        "document_sha256": f"{n:064x}",
        "operator": "clerk-li",
        "approver": "principal-wang",
        "reason": "办理低保审批",
        "count": 1,
        "cert_serial": 0x1234567890ABCDEF1234567890ABCDEF,
        "township_code": "360732101",
    }
    body.update(over)
    return body


@pytest.fixture
def ledger_signer() -> MemorySigner:
    return MemorySigner()


@pytest.fixture
def make_fields() -> Callable[..., Any]:
    from ledger import EntryFields, EntryKind

    def make(n: int = 0, kind: Any = None, body: dict[str, Any] | None = None, **personal: str) -> Any:
        return EntryFields(
            kind=kind or EntryKind.SEAL_SIGNED,
            at=BASE_TIME + timedelta(minutes=n),
            body=body if body is not None else seal_signed_body(n),
            personal=personal,
        )

    return make


@pytest.fixture
def ledger(engine, ledger_signer) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    from ledger import Ledger

    lg = Ledger(engine, ledger_signer)
    yield lg
    lg.close()


@pytest.fixture
def filled_ledger(ledger, engine, make_fields) -> Any:  # type: ignore[no-untyped-def]
    """20 entries; checkpoints signed at sizes 10 and 20."""
    from core.db import transaction

    for start in (0, 10):
        with transaction(engine) as s:
            ledger.append_many(s, [(make_fields(i), f"key-{i}") for i in range(start, start + 10)])
        ledger.checkpoint()
    return ledger
