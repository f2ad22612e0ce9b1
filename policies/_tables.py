"""The stage -> document-kind table: data, not code. Standard library only."""

from __future__ import annotations

import json
from importlib import resources
from types import MappingProxyType
from typing import TypedDict

from policies._model import DocumentKind, Stage, StageKindTable

FORMAT = "yizhang.stage_kinds/1"


class StageKindsJson(TypedDict):
    """The table as JSON (policies/stage_kinds.default.json)."""

    format: str
    stages: dict[str, list[str]]


class StageTableError(ValueError):
    """The table is malformed; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_stage_kinds(data: object) -> StageKindTable:
    """Validate a decoded JSON table (``{"stages": {"受理": ["受理通知书", ...], ...}}``)."""
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        raise StageTableError("stages", "expected an object {stage: [document kinds]}")
    out: dict[Stage, frozenset[DocumentKind]] = {}
    for raw_stage, kinds in data["stages"].items():
        try:
            stage = Stage.parse(str(raw_stage))
        except (KeyError, ValueError) as exc:
            raise StageTableError(f"stages.{raw_stage}", "unknown stage") from exc
        if stage in out:
            raise StageTableError(f"stages.{raw_stage}", "stage listed twice")
        if not isinstance(kinds, list):
            raise StageTableError(f"stages.{raw_stage}", "expected a list of document kinds")
        parsed: set[DocumentKind] = set()
        for i, kind in enumerate(kinds):
            try:
                parsed.add(DocumentKind.parse(str(kind)))
            except (KeyError, ValueError) as exc:
                raise StageTableError(f"stages.{raw_stage}[{i}]", f"unknown document kind {kind!r}") from exc
        out[stage] = frozenset(parsed)
    return MappingProxyType(out)


def stage_kinds_to_json(table: StageKindTable) -> StageKindsJson:
    return {
        "format": FORMAT,
        "stages": {s.value: sorted(k.value for k in table[s]) for s in Stage if s in table},
    }


def default_stage_kinds_json() -> object:
    """The default table as decoded JSON (:func:`parse_stage_kinds` checks it)."""
    text = resources.files("policies").joinpath("stage_kinds.default.json").read_text(encoding="utf-8")
    data: object = json.loads(text)
    return data


def default_stage_kinds() -> StageKindTable:
    return parse_stage_kinds(default_stage_kinds_json())
