"""A new signing request's row and its uploaded PDF are written as one unit (SQLite and PostgreSQL): on
PostgreSQL one statement in autocommit, found in SQLAlchemy's statement cache after its first use."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40


def _row(key: str, **kw: Any) -> Any:
    from api._signing import Status
    from api._storage import SigningRequestRow

    values: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "submitted_by": "acct-1",
        "idempotency_key": key,
        "payload_sha256": "0" * 64,
        "seal_id": "360732-11-aa",
        "township_code": "360732-11",
        "matter_code": "SX-002",
        "stage": "受理",
        "document_kind": "受理通知书",
        "reason": "办理",
        "applicant": "张三",
        "source": "upload",
        "status": Status.APPROVED,
        "reason_codes": "[]",
        "requires_approval": False,
        "decision_status": "VALID",
        "operator_org": "360732-11",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(kw)
    return SigningRequestRow(**values)


@pytest.fixture
def workflow(api_settings: Any, engine: Any) -> Any:
    from api._services import Services
    from api._signing import SigningWorkflow
    from core.db import session_factory

    return SigningWorkflow(Services(settings=api_settings, engine=engine, sessions=session_factory(engine)))


def _stored(engine: Any, request_id: str) -> tuple[Any, list[tuple[str, str, bytes]]]:
    from api._storage import DocumentRow, SigningRequestRow
    from core.db import transaction

    with transaction(engine) as s:
        row = s.get(SigningRequestRow, request_id)
        docs = s.execute(
            select(DocumentRow.role, DocumentRow.sha256, DocumentRow.data).where(
                DocumentRow.request_id == request_id
            )
        ).all()
        return row, [tuple(d) for d in docs]


def test_request_and_source_document_are_written_together(workflow: Any, engine: Any) -> None:
    from api._signing import Status

    seen: list[Any] = []

    @event.listens_for(engine, "after_cursor_execute")
    def record(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "api_signing_requests" in statement.split("(", 1)[0] or statement.lstrip().startswith("WITH"):
            seen.append(context.cache_hit)

    rows = [_row(f"k-{i}", template_data='{"a": 1}' if i == 3 else None) for i in range(5)]
    for i, row in enumerate(rows):
        workflow._insert(row, PDF if i != 4 else None, NOW, Status.APPROVED, "clerk", set())
    event.remove(engine, "after_cursor_execute", record)
    for i, row in enumerate(rows):
        stored, docs = _stored(engine, row.request_id)
        assert stored is not None and stored.idempotency_key == f"k-{i}" and stored.applicant == "张三"
        assert stored.template_data == ('{"a": 1}' if i == 3 else None)
        assert stored.decision_status == "VALID" and stored.department_code is None
        if i == 4:
            assert docs == []  # a template request: no upload
        else:
            assert docs == [("source", hashlib.sha256(PDF).hexdigest(), PDF)]
    dialect = engine.dialect
    assert len(seen) == 5 and dialect.NO_CACHE_KEY not in seen
    if dialect.name == "postgresql":  # one statement per request: new shapes (i = 0, 3, 4) compile once
        assert seen.count(dialect.CACHE_HIT) >= 2, seen

    # The same idempotency key again: refused by the unique index, and nothing of it is written.
    twin = _row("k-0")
    with pytest.raises(IntegrityError):
        workflow._insert(twin, PDF + b"%twin", NOW, Status.APPROVED, "clerk", set())
    assert _stored(engine, twin.request_id) == (None, [])
