"""``yizhang sign-batch MANIFEST``: seal many documents from one manifest, with a progress bar, resumable.

The manifest is CSV (a header row) or JSON lines (one object a line; chosen by the suffix ``.jsonl`` /
``.ndjson`` or by a first character ``{``). Each item names ``seal``, ``matter``, ``stage``, ``kind``, and
either ``template`` with ``data`` (a JSON object inline, or a path to a JSON file) or ``pdf`` (a path);
optional ``operator`` (default ``--operator``), ``approver``, ``reason``, ``key`` (the idempotency key).
Paths are relative to the manifest.

Resumable: every item carries an idempotency key (given, or derived from the item's content and the
manifest's position), so running the same manifest again after an interruption seals nothing twice: items
already sealed come back as they were (``replayed``), with the same document number. Each run writes the
sealed PDFs to ``--out`` (``NNNN.pdf``, the item's line) and one JSON line per item to the results file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from api._json import JsonObject
from api.cli._common import HomeOpt, JsonOpt, cli_errors, emit, settings_for
from core.errors import BadInput, SealServiceError

FIELDS = (
    "seal",
    "matter",
    "stage",
    "kind",
    "template",
    "data",
    "pdf",
    "operator",
    "approver",
    "reason",
    "key",
)
MAX_ITEMS = 100_000


@dataclass(frozen=True)
class Item:
    line: int  # 1-based position in the manifest (data rows only)
    fields: JsonObject


def _bad(line: int, message_en: str, message_zh: str) -> BadInput:
    return BadInput(
        "MANIFEST_INVALID",
        f"manifest item {line}: {message_en}",
        f"清单第 {line} 项：{message_zh}",
        details={"item": line},
    )


def read_manifest(path: Path) -> list[Item]:
    """The manifest's items, each checked for its required fields; a bad item refuses the whole manifest
    before anything is sealed."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput("MANIFEST_UNREADABLE", f"cannot read {path}: {exc}", f"无法读取清单 {path}") from exc
    raw: list[JsonObject] = []
    if path.suffix.lower() in (".jsonl", ".ndjson") or text.lstrip().startswith("{"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise _bad(len(raw) + 1, f"line {n} is not JSON", f"第 {n} 行不是 JSON") from exc
            if not isinstance(obj, dict):
                raise _bad(len(raw) + 1, "not a JSON object", "不是 JSON 对象")
            raw.append(obj)
    else:
        raw = [dict(row) for row in csv.DictReader(io.StringIO(text))]
    if not raw:
        raise BadInput("MANIFEST_EMPTY", f"{path} lists no documents", "清单中没有文书")
    if len(raw) > MAX_ITEMS:
        raise BadInput("MANIFEST_TOO_LARGE", f"at most {MAX_ITEMS} items", f"清单最多 {MAX_ITEMS} 项")
    items = []
    for i, obj in enumerate(raw, 1):
        fields = {k: v for k, v in obj.items() if k in FIELDS and v not in (None, "")}
        unknown = sorted(k for k in obj if k not in FIELDS)
        if unknown:
            raise _bad(i, f"unknown fields {unknown}", f"未知字段 {unknown}")
        missing = [k for k in ("seal", "matter", "stage", "kind") if k not in fields]
        if missing:
            raise _bad(i, f"missing {missing}", f"缺少 {missing}")
        if ("template" in fields) == ("pdf" in fields):
            raise _bad(i, "give template (with data) or pdf", "须给出 template（及 data）或 pdf 之一")
        items.append(Item(i, fields))
    return items


def _data(item: Item, base: Path) -> JsonObject | None:
    data = item.fields.get("data")
    if "template" not in item.fields:
        return None
    if data is None:
        return {}
    if isinstance(data, dict):
        return data
    text = str(data).strip()
    try:
        loaded = json.loads(text if text.startswith("{") else (base / text).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _bad(item.line, f"data {text[:60]!r} is neither JSON nor a JSON file", "data 无法读取") from exc
    if not isinstance(loaded, dict):
        raise _bad(item.line, "data must be a JSON object", "data 须为 JSON 对象")
    return loaded


def _key(manifest: Path, item: Item, data: JsonObject | None, pdf: bytes | None) -> str:
    if item.fields.get("key"):
        return str(item.fields["key"])
    content = [manifest.name, item.line, *(item.fields.get(k) for k in ("seal", "matter", "stage", "kind"))]
    content += [
        item.fields.get("operator"),
        item.fields.get("template"),
        data,
        hashlib.sha256(pdf or b"").hexdigest(),
    ]
    digest = hashlib.sha256(json.dumps(content, ensure_ascii=True, sort_keys=True, default=str).encode())
    return "batch-" + digest.hexdigest()[:32]


def register(app: typer.Typer) -> None:
    @app.command("sign-batch")
    def sign_batch(
        manifest: Annotated[Path, typer.Argument(help="CSV or JSON lines: one document a row")],
        out: Annotated[
            Path | None,
            typer.Option("--out", help="directory for the sealed PDFs (default: MANIFEST.sealed/)"),
        ] = None,
        results: Annotated[
            Path | None,
            typer.Option("--results", help="JSON lines, one per item (default: OUT/results.jsonl)"),
        ] = None,
        operator: Annotated[
            str | None, typer.Option("--operator", help="seal user for items that name none")
        ] = None,
        level: Annotated[str | None, typer.Option("--level", help="B-T | B-LT | B-LTA")] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Seal every document of a manifest: a progress bar, a summary table, a results file; run it
        again after an interruption and each document is sealed once (idempotency keys)."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Table

        from api._services import build_services
        from api.cli._sign import _approver
        from policies import Actor, Role
        from signer import SealRequest

        console = Console(stderr=True)
        with cli_errors(as_json):
            items = read_manifest(manifest)
            base = manifest.resolve().parent
            out_dir = out or manifest.with_name(manifest.name + ".sealed")
            out_dir.mkdir(parents=True, exist_ok=True)
            results_path = results or out_dir / "results.jsonl"
            # every item readable before the first seal: a typo on line 180 refuses the run, not half of it
            prepared = []
            for item in items:
                pdf = None
                if "pdf" in item.fields:
                    try:
                        pdf = (base / str(item.fields["pdf"])).read_bytes()
                    except OSError as exc:
                        raise _bad(item.line, f"cannot read {item.fields['pdf']}", "无法读取 PDF") from exc
                data = _data(item, base)
                if not (item.fields.get("operator") or operator):
                    raise _bad(item.line, "no operator (give --operator)", "缺少经办人（--operator）")
                prepared.append((item, data, pdf, _key(manifest, item, data, pdf)))
            services = build_services(settings_for(home))
            counts = {"sealed": 0, "replayed": 0, "refused": 0}
            started = time.monotonic()
            try:
                sealer = services.need_signer()
                registry = services.need_seal_registry()
                store = services.need_policy_store()
                centres: dict[str, str | None] = {}
                with (
                    results_path.open("w", encoding="utf-8") as sink,
                    Progress(
                        TextColumn("用印 sealing"),
                        BarColumn(),
                        MofNCompleteColumn(),
                        TextColumn("{task.fields[last]}"),
                        TimeElapsedColumn(),
                        TimeRemainingColumn(),
                        console=console,
                        disable=as_json,
                    ) as progress,
                ):
                    task = progress.add_task("batch", total=len(prepared), last="")
                    for item, data, pdf, key in prepared:
                        f = item.fields
                        row: JsonObject = {"item": item.line, "idempotency_key": key}
                        try:
                            seal = registry.get(str(f["seal"]))
                            org = seal.township_code
                            if org not in centres:
                                try:
                                    centres[org] = store.organisation(org).service_centre
                                except SealServiceError:
                                    centres[org] = None
                            who = str(f.get("operator") or operator)
                            actor = Actor(
                                user_id=who,
                                role=Role.TOWNSHIP_CLERK,
                                org_code=org,
                                service_centre=centres[org],
                            )
                            approver = (
                                _approver(services, str(f["approver"]), None) if f.get("approver") else None
                            )
                            done = sealer.seal(
                                SealRequest(
                                    seal_id=seal.seal_id,
                                    matter_code=str(f["matter"]),
                                    stage=str(f["stage"]),
                                    document_kind=str(f["kind"]),
                                    idempotency_key=key,
                                    operator=actor,
                                    approver=approver,
                                    reason=str(f.get("reason") or ""),
                                    unverified_pdf=pdf,
                                    template=f.get("template"),
                                    template_data=data,
                                    level=level,
                                )
                            )
                            target = out_dir / f"{item.line:04d}.pdf"
                            target.write_bytes(done.pdf)
                            counts["replayed" if done.replayed else "sealed"] += 1
                            row |= {
                                "status": "REPLAYED" if done.replayed else "SEALED",
                                "document_number": done.document_number,
                                "sha256": done.sha256,
                                "ledger_index": done.ledger_index,
                                "out": str(target),
                            }
                            last = done.document_number
                        except SealServiceError as exc:
                            counts["refused"] += 1
                            row |= {"status": "REFUSED", "code": exc.code, "message": exc.message_zh}
                            last = f"第 {item.line} 项未用印：{exc.code}"
                        sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                        sink.flush()
                        progress.update(task, advance=1, last=last)
                        if not console.is_terminal and not as_json:
                            # a log, not a screen: the bar is drawn only at the end, so one line an item
                            done_n = sum(counts.values())
                            console.print(f"[{done_n}/{len(prepared)}] {last}", markup=False, highlight=False)
            finally:
                services.close()
                services.engine.dispose()
            seconds = time.monotonic() - started
            summary = {
                "manifest": str(manifest),
                "items": len(prepared),
                **counts,
                "seconds": round(seconds, 1),
                "results": str(results_path),
                "out": str(out_dir),
            }
            if not as_json:
                table = Table(title=f"批量用印 {manifest.name}")
                for column in ("合计", "新用印", "已用印（重放）", "未用印", "用时（秒）"):
                    table.add_column(column, justify="right")
                table.add_row(
                    str(len(prepared)),
                    str(counts["sealed"]),
                    str(counts["replayed"]),
                    str(counts["refused"]),
                    f"{seconds:.1f}",
                )
                console.print(table)
                console.print(f"结果文件 results: {results_path}\n文书目录 out: {out_dir}")
            if as_json:
                emit(summary, True)
        if counts["refused"]:
            raise typer.Exit(1)
