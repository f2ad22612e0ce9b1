"""``yizhang verify`` and ``yizhang verify-bundle``: check a sealed PDF; export what a remote office needs.

Exit codes: 0 only for TOTAL_PASSED; 1 for INDETERMINATE or TOTAL_FAILED; 2 for unreadable input (not a
PDF, over a limit, unreadable file or trust material).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from api._json import JsonObject
from api.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_ERROR,
    HomeOpt,
    JsonOpt,
    beijing_iso,
    cli_errors,
    settings_for,
)
from core.errors import BadInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.settings import Settings
    from verifier import (
        BindingFacts,
        Evidence,
        EvidenceRecord,
        EvidenceRouter,
        LedgerReceipt,
        StatusAnswer,
        TrustList,
        VerificationReport,
    )


BUNDLE_FORMAT = "yizhang-verify-bundle/1"


def _human(report: VerificationReport) -> str:
    lines = [
        f"verdict 结论: {report.indication.value}"
        + (f" ({report.sub_indication.value})" if report.sub_indication else "")
    ]
    f = report.facts
    for label, value in (
        ("seal 印章", f.seal_name),
        ("county 县", f.county),
        ("township 乡镇/部门", f.township),
        ("seal id 印章编号", f.seal_id),
        ("kind 类型", f.kind),
        ("number 编号", f.number),
        ("matter 事项", f.matter),
        ("document number 文号", f.document_number),
        (
            "signed at 盖章时间",
            (
                beijing_iso(f.signing_time)
                + ("" if f.signing_time_proven else " (claimed 自称, not proven 未经证明)")
            )
            if f.signing_time
            else None,
        ),
        ("ledger index 台账序号", f.ledger_index),
        ("status 状态", f.status),
    ):
        if value is not None:
            lines.append(f"  {label}: {value}")
    # County attestation (书面认证): each department seal that attested the document, on a line of its own.
    for name in f.attested_by:
        lines.append(f"  认证：{name}  (attested by a county department)")
    for s in report.signatures:
        lines.append(f"  [{s.field_name}] {s.kind} {s.indication.value} cross-check={s.cross_check}")
        for r in s.reasons:
            lines.append(f"    - {r.code}: {r.message_zh} / {r.message_en}")
    for r in report.reasons:
        lines.append(f"  - {r.code}: {r.message_zh} / {r.message_en}")
        if r.code == "TRUST_BUNDLE_STALE" and r.detail:  # how old, and where to refresh it
            lines.append(f"      {r.detail}")
    return "\n".join(lines)


def _load_bundle(path: Path) -> JsonObject:
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput("BUNDLE_INVALID", f"cannot read bundle {path}", f"无法读取验证包 {path}") from exc
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise BadInput("BUNDLE_INVALID", "not a yizhang verify bundle", "不是一章验证包")
    return bundle


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        file: Annotated[Path, typer.Argument(help="the sealed PDF")],
        trust: Annotated[
            list[str] | None,
            typer.Option("--trust", help="trusted root(s): PEM/DER file or https URL; repeatable"),
        ] = None,
        bundle: Annotated[Path | None, typer.Option("--bundle", help="offline verify bundle (JSON)")] = None,
        receipt: Annotated[
            Path | None,
            typer.Option(
                "--receipt",
                help="ledger receipt: c2sp tlog-proof text or JSON, or the evidence record "
                "(yizhang-evidence-record/1) that proves an untouched original after its certificates "
                "expired",
            ),
        ] = None,
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Verify a sealed PDF: integrity, strict change rules, trust, revocation, ledger evidence."""
        from verifier import Evidence, LedgerReceipt, TrustList, VerifyLimits, verify_document

        report = None
        with cli_errors(as_json):
            settings = settings_for(home)
            trust_list = TrustList.empty()
            evidence: Evidence | EvidenceRouter = Evidence()
            for item in trust or []:
                if item.startswith(("https://", "http://")):
                    trust_list = trust_list.merged(TrustList.from_url(item))
                else:
                    trust_list = trust_list.merged(TrustList.from_files([item]))
            if bundle is not None:
                b = _load_bundle(bundle)
                bundle_trust = TrustList.from_bundle(b)
                trust_list = trust_list.merged(bundle_trust)
                evidence = _bundle_router(b, bundle_trust, bundle)
            if not trust and bundle is None:  # this county, and the counties of its trust store
                from api._trust_store import evidence_router

                router = evidence_router(settings, _home_evidence(settings))
                trust_list = router.trust_list(TrustList.for_home(settings.home_dir))
                evidence = router
            if receipt is not None:
                from verifier import EvidenceRecord

                archive = None
                try:
                    raw = receipt.read_bytes()
                    if EvidenceRecord.looks_like(raw):  # the evidence record: the receipt and its timestamps
                        archive = EvidenceRecord.parse(raw)
                        rec = archive.receipt
                    else:
                        rec = LedgerReceipt.parse(raw)
                except (OSError, ValueError, TypeError) as exc:
                    raise BadInput("RECEIPT_INVALID", "cannot read the receipt", "无法读取台账回执") from exc
                evidence = _with_receipt(evidence, rec, archive)
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise BadInput("FILE_UNREADABLE", f"cannot read {file}", f"无法读取 {file}") from exc
            limits = VerifyLimits(max_bytes=settings.max_pdf_bytes)
            report = verify_document(
                data, trust_list, now=datetime.now(UTC), limits=limits, evidence=evidence
            )
        assert report is not None
        if as_json:
            typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, sort_keys=True))
        else:
            typer.echo(_human(report))
        if report.unreadable:
            raise typer.Exit(EXIT_BAD_INPUT)
        if not report.passed:
            raise typer.Exit(EXIT_ERROR)

    @app.command("verify-bundle")
    def verify_bundle(
        out: Annotated[Path, typer.Option("--out", help="where to write the bundle (JSON)")],
        home: HomeOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Export what a remote office needs to verify offline: roots, CRLs, log key, latest checkpoint and
        the decision status list (signed first when it is missing or due and the log key is at hand); the
        bundle is signed by the county root (``yizhang trust add`` on the other side checks it)."""
        from api._trust_store import make_bundle, sign_with_home_token

        with cli_errors(as_json):
            settings = settings_for(home)
            # the same bundle as GET /pki/trust-bundle.json, signed by the county root when the token opens
            bundle = make_bundle(
                settings,
                status_list=_current_status_list(settings),
                checkpoint=_latest_checkpoint(settings),
            )
            bundle, unsigned = sign_with_home_token(settings, bundle)
            out.write_text(json.dumps(bundle, ensure_ascii=False, indent=2), encoding="utf-8")
        summary = {
            "out": str(out),
            "roots": len(bundle["roots"]),
            "crls": len(bundle["crls"]),
            "log_vkey": bundle["log_vkey"] is not None,
            "checkpoint": bundle["checkpoint"] is not None,
            "status_list": bundle["status_list"] is not None,
            "status_list_next_update": _next_update(bundle["status_list"]),
            "signed": "signature" in bundle,  # by the county root: what `trust add` elsewhere requires
            "unsigned_because": unsigned,
        }
        if as_json:
            typer.echo(json.dumps(summary))
        else:
            typer.echo("  ".join(f"{k}={v}" for k, v in summary.items()))
            if unsigned:
                typer.echo(f"bundle not signed ({unsigned}): `trust add` will refuse it", err=True)


def _with_receipt(
    evidence: Evidence | EvidenceRouter, receipt: LedgerReceipt, archive: EvidenceRecord | None = None
) -> Evidence | EvidenceRouter:
    """``--receipt``: beside the evidence at hand, or beside the evidence of every county a router holds;
    an evidence record (``archive``) goes with its receipt."""
    from verifier import EvidenceRouter

    if isinstance(evidence, EvidenceRouter):
        return EvidenceRouter(
            home=replace(evidence.home, receipt=receipt, archive=archive),
            counties=tuple(
                replace(c, evidence=replace(c.evidence, receipt=receipt, archive=archive))
                for c in evidence.counties
            ),
        )
    return replace(evidence, receipt=receipt, archive=archive)


def _home_evidence(settings: Settings) -> Evidence:
    """Ledger evidence, delegation and decision status from this deployment's database and published log
    key, when there is one."""
    from verifier import Evidence

    url = settings.effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return Evidence()
    from dataclasses import replace

    from api._local_evidence import local_evidence, policy_delegation_lookup
    from api._status_list import decision_status_lookup
    from core.db import make_engine
    from policies import PolicyStore

    engine = make_engine(url)
    evidence = local_evidence(engine, settings.home_dir / "ledger" / "log.vkey")
    return replace(
        evidence,
        delegation_lookup=policy_delegation_lookup(PolicyStore(engine)),
        status_lookup=decision_status_lookup(engine),  # the county's records: 变更、撤回、撤销、注销
    )


def _current_status_list(settings: Settings) -> str | None:
    """The published decision status list; signed again first when it is missing, due or out of date with
    the records and the log key can be had (a key file, or the token with its PIN source). Without the key,
    what was published (the verifier then judges its age)."""
    from api._status_list import publish_status_list, status_list_path
    from core.db import make_engine
    from core.errors import SealServiceError

    url = settings.effective_database_url
    if not (url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file()):
        from sqlalchemy.exc import SQLAlchemyError

        from api.cli._common import token_log_signer
        from ledger import key_file_signer

        engine = make_engine(url)
        try:
            signer = (
                key_file_signer(settings)
                if settings.log_key_source.startswith("file")
                else token_log_signer(settings)
            )
            publish_status_list(settings, engine, signer, force=False)
        except (SealServiceError, SQLAlchemyError, OSError):
            pass  # the key is away: the published list goes in, and the summary says until when it is good
        finally:
            engine.dispose()
    path = status_list_path(settings)
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _next_update(note: str | None) -> str | None:
    """Until when the bundle's status list is good (read, not verified: it is this county's own file)."""
    from verifier import StatusList

    if not note:
        return None
    try:
        return beijing_iso(StatusList.parse_body(note.partition("\n\n")[0] + "\n").next_update)
    except (ValueError, KeyError, TypeError):
        return None


def _latest_checkpoint(settings: Settings) -> tuple[str | None, datetime | None]:
    """The ledger's latest signed checkpoint and when it was signed, read (never signed) from the
    deployment's database. A verifier holding the bundle knows that a document sealed after that time
    cannot be in it (``LEDGER_ENTRY_PENDING``)."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.db import make_engine

    try:
        from ledger import Ledger, origin_for
    except ImportError:
        return None, None
    database_url = settings.effective_database_url
    if database_url.startswith("sqlite:///"):
        from pathlib import Path as _P

        if not _P(database_url.removeprefix("sqlite:///")).is_file():
            return None, None
    engine = make_engine(database_url)
    try:
        latest = Ledger(engine, None, origin=origin_for(settings)).latest_checkpoint_signed()
    except SQLAlchemyError:
        return None, None  # no ledger tables in this deployment yet
    finally:
        engine.dispose()
    if latest is None:
        return None, None
    checkpoint, at = latest
    return checkpoint.note, at


def _bundle_router(bundle: JsonObject, trust: TrustList, path: Path) -> EvidenceRouter:
    """``--bundle FILE``: the bundle's county judged the way the trust store judges one (the evidence of the
    county whose CA issued the seal, and ``TRUST_BUNDLE_STALE`` once the bundle is past its own
    ``next_update``: its CRLs and status list may miss a revocation made since). A seal its CAs did not
    issue (a root given with ``--trust``) still gets the bundle's evidence, as before."""
    from verifier import EvidenceRouter, ForeignCounty

    evidence = _bundle_evidence(bundle)
    found = bundle.get("county")
    county = found.get("name") if isinstance(found, dict) else None
    where = bundle.get("url")
    hint = "get a new bundle from that county" + (
        f" ({where})" if where else " (`yizhang verify-bundle` there)"
    )
    return EvidenceRouter(
        home=evidence,
        counties=(
            ForeignCounty(
                name=str(county or path.name),
                trust=trust,
                evidence=evidence,
                next_update=_bundle_time(bundle.get("next_update"), "next update"),
                source=str(path),
                created_at=_bundle_time(bundle.get("created_at"), "creation time"),
                refresh_hint=hint,
            ),
        ),
    )


def _bundle_evidence(bundle: JsonObject) -> Evidence:
    """The log key from a bundle's C2SP vkey (name+hash+base64(0x01 || key)), its latest checkpoint and its
    decision status list."""
    import base64

    from verifier import Evidence

    vkey = bundle.get("log_vkey")
    if not vkey:
        return Evidence()
    try:
        name, _hash, b64 = str(vkey).split("+", 2)
        raw = base64.b64decode(b64)
    except ValueError as exc:
        raise BadInput(
            "BUNDLE_INVALID", "bundle log_vkey is malformed", "验证包中的台账公钥格式错误"
        ) from exc
    if len(raw) != 33 or raw[0] != 1:
        raise BadInput(
            "BUNDLE_INVALID", "bundle log_vkey is not an Ed25519 key", "验证包中的台账公钥不是Ed25519"
        )
    checkpoint = bundle.get("checkpoint")
    return Evidence(
        log_public_key=raw[1:],
        log_key_name=name,
        checkpoint=str(checkpoint).encode() if checkpoint else None,
        checkpoint_at=_bundle_time(bundle.get("checkpoint_at") or bundle.get("created_at"))
        if checkpoint
        else None,
        status_lookup=_bundle_status(bundle.get("status_list"), raw[1:], name),
    )


def _bundle_status(
    note: object, key: bytes, name: str
) -> Callable[[BindingFacts], StatusAnswer | None] | None:
    """The decision status lookup of a bundle: its status list, checked once against the bundle's log key
    (a list that fails is STATUS_LIST_INVALID for every document, never silently ignored); ``None`` for a
    bundle made before status lists (nothing said about status)."""
    from verifier import StatusList, StatusListError

    if not note:
        return None
    try:
        status_list = StatusList.open(str(note), key, name)
    except StatusListError as exc:
        error = exc

        def refuse(_binding: BindingFacts) -> NoReturn:
            raise error

        return refuse
    return status_list.answer


_WHAT_ZH = {"checkpoint time": "检查点时间", "next update": "下次更新时间", "creation time": "生成时间"}


def _bundle_time(value: object, what: str = "checkpoint time") -> datetime | None:
    """A time the bundle states: when its checkpoint was signed (``checkpoint_at``; older bundles:
    ``created_at``, a bound from above: the checkpoint was signed before the bundle was made), when it was
    made, until when it is good (``next_update``)."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise BadInput(
            "BUNDLE_INVALID", f"bundle {what} is malformed", f"验证包中的{_WHAT_ZH.get(what, '时间')}格式错误"
        ) from exc
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
