"""The supervision outbox insert rides in the signer's settle (the ledger's round trip): it is one statement
built once, with each event's values apart, so SQLAlchemy walks it for its cache key once, not per signing
(a multi-VALUES list had no cache key at all, and the whole settle statement was compiled per signing)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy.dialects import postgresql

from api._signing import SupervisionRoute, _outbox_events


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


def test_one_statement_object_serves_every_request() -> None:
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    for route in (
        SupervisionRoute(("360732-W",), "SUPERVISING_DEPARTMENT"),
        SupervisionRoute((), "UNROUTED"),
    ):
        [(a, va)] = _outbox_events(_row("r1"), "DECISION_ISSUED", now, route)
        [(b, vb)] = _outbox_events(_row("r2"), "DECISION_ISSUED", now, route)
        assert a is b  # built once: its cache key is memoized on the object
        assert a._generate_cache_key() is not None
        compiled = a.compile(dialect=postgresql.dialect())
        assert set(va) == set(compiled.params)  # every bind parameter gets a value
        assert va["request_id"] == "r1" and vb["request_id"] == "r2"
        assert va["supervising_code"] == (route.codes or (None,))[0]


def test_several_organisations_still_get_one_row_each() -> None:
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    route = SupervisionRoute(("A", "B"), "ENTRUSTING_DEPARTMENT")
    events = _outbox_events(_row("r1"), "DECISION_ISSUED", now, route)
    assert sorted(str(v["supervising_code"]) for _, v in events) == ["A", "B"]


def test_the_sealed_mark_binds_every_value_a_sealed_request_gets() -> None:
    """The request's SEALED mark (also in the settle's round trip) is built once from column names: each value
    of ``_sealed_values`` must have its bind parameter, or the settle fails in the database."""
    from api._signing import _MARK_SEALED, _sealed_values
    from signer import SealedDocument

    doc = SealedDocument(
        idempotency_key="k",
        seal_id="s",
        document_number="n",
        sha256="ab" * 32,
        level="B-T",
        ledger_index=3,
        pdf=b"%PDF",
    )
    values = {"rq_id": "r1", **_sealed_values(doc, datetime(2026, 12, 6, 9, 0, tzinfo=UTC))}
    assert set(_MARK_SEALED.compile(dialect=postgresql.dialect()).params) == set(values)
