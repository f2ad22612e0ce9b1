"""The supervision outbox insert rides in the signer's settle statement: it must be cacheable by SQLAlchemy
(a multi-VALUES list has no cache key, and the whole settle statement was then compiled per signing)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy.dialects import postgresql

from api._signing import SupervisionRoute, _outbox_insert


def _row(request_id: str) -> SimpleNamespace:
    return SimpleNamespace(
        request_id=request_id,
        document_number="兴江乡审字〔2026〕第1号",
        seal_id="s",
        matter_code="SX-002",
        stage="受理",
        document_kind="受理通知书",
        township_code="360732-11",
        decision_status="IN_FORCE",
        ledger_index=7,
        sealed_sha256="ab" * 32,
    )


def test_one_organisation_event_has_a_cache_key_shared_between_requests() -> None:
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    for route in (
        SupervisionRoute(("360732-W",), "SUPERVISING_DEPARTMENT"),
        SupervisionRoute((), "UNROUTED"),
    ):
        a = _outbox_insert(_row("r1"), "DECISION_ISSUED", now, route)
        b = _outbox_insert(_row("r2"), "DECISION_ISSUED", now, route)
        key_a, key_b = a._generate_cache_key(), b._generate_cache_key()
        assert key_a is not None
        assert key_a == key_b  # the same compiled statement serves both
        params = a.compile(dialect=postgresql.dialect()).params
        assert params["request_id"] == "r1" and params["supervising_code"] == (route.codes or (None,))[0]


def test_several_organisations_still_get_one_row_each() -> None:
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    route = SupervisionRoute(("A", "B"), "ENTRUSTING_DEPARTMENT")
    params = (
        _outbox_insert(_row("r1"), "DECISION_ISSUED", now, route).compile(dialect=postgresql.dialect()).params
    )
    assert sorted(v for k, v in params.items() if k.startswith("supervising_code")) == ["A", "B"]
