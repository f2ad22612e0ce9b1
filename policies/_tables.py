"""The stage -> document-kind table: data, not code. Standard library only."""

from __future__ import annotations

import json
from importlib import resources
from types import MappingProxyType
from typing import Any

from policies._model import DocumentKind, Stage, StageKindTable

FORMAT = "yizhang.stage_kinds/1"


class StageTableError(ValueError):
    """The table is malformed; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_stage_kinds(data: Any) -> StageKindTable:
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


def stage_kinds_to_json(table: StageKindTable) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "stages": {s.value: sorted(k.value for k in table[s]) for s in Stage if s in table},
    }


def default_stage_kinds_json() -> dict[str, Any]:
    text = resources.files("policies").joinpath("stage_kinds.default.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def default_stage_kinds() -> StageKindTable:
    return parse_stage_kinds(default_stage_kinds_json())
