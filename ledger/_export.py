"""Export the ledger as plain files and check such an export offline, with only the log's public key.

Layout of an export directory::

    manifest.json          {"format": "yizhang-ledger-export/v1", "origin", "size", "root", "vkey"}
    entries.jsonl          one line per entry: {"index": i, "entry": base64(canonical bytes)}
    checkpoints/<size>.checkpoint   each signed checkpoint note, as published
    log.vkey               the log's verifier key (for reference: a verifier brings its own copy)
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import TypedDict

from core.errors import BadInput, VerificationError
from ledger._audit import AuditReport, ChainChecker
from ledger._note import NoteVerifier, verify_checkpoint
from ledger._service import Ledger

FORMAT = "yizhang-ledger-export/v1"


class ExportManifest(TypedDict):
    """``manifest.json`` of an export."""

    format: str
    origin: str
    size: int
    checkpoints: list[int]
    vkeys: list[str]


class ExportSummary(ExportManifest):
    """What :func:`export_ledger` returns: the manifest and where it was written."""

    directory: str


def export_ledger(ledger: Ledger, directory: Path) -> ExportSummary:
    """Write entries, checkpoints and the public key to ``directory`` (streaming, read-only)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "checkpoints").mkdir(exist_ok=True)
    size = 0
    with ledger.read_engine.connect() as c, (directory / "entries.jsonl").open("w", encoding="ascii") as out:
        for idx, encoded, _, _ in ledger.stream_rows(c, 0):
            out.write(json.dumps({"index": idx, "entry": base64.b64encode(encoded).decode()}) + "\n")
            size += 1
    checkpoints = ledger.checkpoints()
    for cp in checkpoints:
        (directory / "checkpoints" / f"{cp.size:012d}.checkpoint").write_text(cp.note, encoding="utf-8")
    vkeys = [v.vkey for v in ledger.verifiers]
    (directory / "log.vkey").write_text("\n".join(vkeys) + "\n", encoding="utf-8")
    manifest: ExportManifest = {
        "format": FORMAT,
        "origin": ledger.origin,
        "size": size,
        "checkpoints": [cp.size for cp in checkpoints],
        "vkeys": vkeys,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {"directory": str(directory), **manifest}


def verify_export(directory: Path, verifiers: list[NoteVerifier], origin: str | None = None) -> AuditReport:
    """Check an export offline: the chain, the tree, and every checkpoint (signature and root).

    1. read the manifest (origin, unless the caller pins one);
    2. verify each checkpoint's signature with the caller's keys (never the export's own copy);
    3. stream entries.jsonl through the same checks as the database audit, comparing recomputed roots
       at every checkpoint size; the export must reach the largest checkpoint.
    """
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput("LEDGER_EXPORT_INVALID", f"no readable manifest in {directory}") from exc
    if manifest.get("format") != FORMAT:
        raise BadInput("LEDGER_EXPORT_INVALID", "unknown export format")
    origin = origin or manifest.get("origin")
    cps: list[tuple[int, bytes]] = []
    sig_problems: list[tuple[str, int, str]] = []
    files = sorted((directory / "checkpoints").glob("*.checkpoint"))
    for f in files:
        try:
            cp = verify_checkpoint(f.read_text(encoding="utf-8"), verifiers, origin)
        except VerificationError as exc:
            sig_problems.append((exc.code, int(f.stem) if f.stem.isdigit() else -1, exc.message_en))
            continue
        cps.append((cp.size, cp.root))
    checker = ChainChecker(cps)
    for code, idx, msg in sig_problems:
        checker.bad(code, idx, msg)
    with (directory / "entries.jsonl").open(encoding="ascii") as fh:
        for n, line in enumerate(fh):
            try:
                item = json.loads(line)
                idx = int(item["index"])
                encoded = base64.b64decode(item["entry"], validate=True)
            except (ValueError, KeyError, TypeError, binascii.Error):
                checker.bad("LEDGER_ENTRY_MALFORMED", n, f"line {n + 1} of entries.jsonl is not an entry")
                continue
            checker.row(idx, encoded, None, None)
    for size, _ in cps:
        if size > checker.cr.size:
            checker.bad("LEDGER_TRUNCATED", checker.cr.size, f"export stops before checkpoint {size}")
    return checker.report(0, len(files))
