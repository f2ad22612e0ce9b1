"""Issue 22, leak 9 (the report half): the monthly report counts a use in the county's month.

A document sealed 2027-01-01 03:00 Beijing time (2026-12-31 19:00 UTC) belongs to January 2027 in the 台账
and in the monthly report alike; before, the report read the month in UTC and put it in December."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from api._reports import build_monthly_report
from api._storage import Base, SigningRequestRow
from core.db import transaction


def _row(at: datetime, matter: str) -> SigningRequestRow:
    return SigningRequestRow(
        request_id=str(uuid.uuid4()),
        submitted_by="clerk",
        idempotency_key=str(uuid.uuid4()),
        payload_sha256="0" * 64,
        seal_id="SEAL-1",
        township_code="360732-11",
        matter_code=matter,
        stage="审批",
        document_kind="许可证及其附件",
        reason="",
        source="template",
        status="SEALED",
        reason_codes="[]",
        created_at=at,
        updated_at=at,
    )


def test_a_use_at_3_am_beijing_on_new_year_is_januarys(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'api.db'}")
    Base.metadata.create_all(engine, tables=[SigningRequestRow.__table__])
    sessions = sessionmaker(bind=engine)
    with transaction(sessions) as s:
        s.add(_row(datetime(2026, 12, 31, 19, 0, tzinfo=UTC), "NEW-YEAR"))  # 2027-01-01 03:00 Beijing
        s.add(_row(datetime(2026, 12, 31, 15, 59, tzinfo=UTC), "OLD-YEAR"))  # 2026-12-31 23:59 Beijing
    services = SimpleNamespace(sessions=sessions, policy_store=None, seal_registry=None)

    january = build_monthly_report(services, "2027-01")
    december = build_monthly_report(services, "2026-12")
    assert [line.matter_code for line in january.lines] == ["NEW-YEAR"], january.lines
    assert [line.matter_code for line in december.lines] == ["OLD-YEAR"], december.lines
