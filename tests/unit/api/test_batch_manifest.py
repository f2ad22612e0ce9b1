"""The sign-batch manifest (issue 23): CSV or JSON lines, every item checked before anything is sealed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli._batch import read_manifest
from core.errors import BadInput

ROW = {
    "seal": "s1",
    "matter": "SX-002",
    "stage": "受理",
    "kind": "受理通知书",
    "template": "acceptance_notice",
}


def test_csv_and_json_lines_read_alike(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(
        "seal,matter,stage,kind,template,data\ns1,SX-002,受理,受理通知书,acceptance_notice,{}\n"
    )
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(json.dumps({**ROW, "data": {}}, ensure_ascii=False) + "\n\n")
    a, b = read_manifest(csv_path), read_manifest(jsonl)
    assert len(a) == len(b) == 1 and a[0].line == b[0].line == 1
    assert a[0].fields["seal"] == b[0].fields["seal"] == "s1"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("", "MANIFEST_EMPTY"),
        ("seal,matter\ns1,SX-002\n", "MANIFEST_INVALID"),  # stage and kind missing
        (json.dumps({**ROW, "pdf": "a.pdf"}) + "\n", "MANIFEST_INVALID"),  # template and pdf both
        (json.dumps({**ROW, "colour": "red"}) + "\n", "MANIFEST_INVALID"),  # unknown field
        (json.dumps(ROW) + "\n{not json\n", "MANIFEST_INVALID"),
    ],
    ids=["empty", "missing", "both", "unknown", "broken-line"],
)
def test_bad_manifests_are_refused_with_a_code(tmp_path: Path, content: str, code: str) -> None:
    path = tmp_path / ("m.jsonl" if content.startswith("{") else "m.csv")
    path.write_text(content)
    with pytest.raises(BadInput) as err:
        read_manifest(path)
    assert err.value.code == code


def test_unreadable_manifest(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as err:
        read_manifest(tmp_path / "absent.csv")
    assert err.value.code == "MANIFEST_UNREADABLE"
