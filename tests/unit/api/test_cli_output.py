"""The CLI prints times in Beijing time, as the console shows them (issue 23)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from api.cli._common import beijing_iso, emit, to_jsonable


@dataclass(frozen=True)
class _Seal:
    name: str
    not_after: datetime
    issued: date


NEW_YEAR_UTC = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)  # already 2027 in Beijing


def test_json_and_human_output_in_beijing_time(capsys: pytest.CaptureFixture[str]) -> None:
    emit(_Seal("兴江乡", NEW_YEAR_UTC, date(2026, 12, 31)), True)
    shown = json.loads(capsys.readouterr().out)
    assert shown["not_after"] == "2027-01-01T01:30:00+08:00" and shown["issued"] == "2026-12-31"
    emit({"at": NEW_YEAR_UTC}, False)
    assert capsys.readouterr().out == "at: 2027-01-01T01:30:00+08:00\n"
    assert beijing_iso(NEW_YEAR_UTC) == "2027-01-01T01:30:00+08:00"


def test_the_api_keeps_its_own_serialisation() -> None:
    # to_jsonable without a zone is what the HTTP API uses: the instant as it was given
    assert to_jsonable({"at": NEW_YEAR_UTC}) == {"at": "2026-12-31T17:30:00+00:00"}
