"""Public endpoints (no login): CA certificates, CRLs, the log's public key, checkpoints, proofs, verify;
and the county TSA, which is *not* public.

Everything public here is what an office in another county needs to check a document without trusting this
service; none of it is secret. The expensive one (verify) is rate-limited per client address.

The time-stamping authority answers only an authenticated account that seals (``SIGNING_SUBMIT``: the
township clerks). An open TSA is an oracle: anyone could get this county's own timestamp for an overlay
added to a sealed document after the fact (issue 18). The service's own sealing does not use the route (it
asks the county TSA in process), and an office checking a document needs the TSA's certificate and CRLs,
which stay public, never a fresh token.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from api._authz import Permission, ServicesDep, public, require
from api._json import JsonObject
from core.errors import BadInput, NotFound, PermissionDenied, SealServiceError, Unavailable
from core.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from api._services import Services
    from verifier import Evidence, EvidenceRouter, LedgerFinding, LedgerQuery, TrustList


log = logging.getLogger("yizhang.api")
CERT_TYPE = "application/pkix-cert"
CRL_TYPE = "application/pkix-crl"
PUBLIC = [Depends(public())]
MAX_INDEX = 2**62  # SQLite and PostgreSQL integers are 64-bit
PUBLIC_LIMITED = [Depends(public(rate_limited=True))]
SEALERS = [Depends(require(Permission.SIGNING_SUBMIT))]  # accounts that seal; rate-limited per account


def _published(settings: Settings, relative: str, what_zh: str) -> bytes:
    path = settings.home_dir / "pki" / relative
    try:
        return path.read_bytes()
    except OSError:
        raise NotFound("NOT_PUBLISHED", f"{relative} is not published yet", f"{what_zh}尚未发布") from None


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["public"])

    # -- county PKI: the paths the certificates' CRL distribution points name ----------------------------
    @router.get("/pki/crl/{issuer}.crl", dependencies=PUBLIC, response_class=Response)
    def crl(issuer: str, services: ServicesDep) -> Response:
        """The current CRL of ``issuing`` or ``root`` (DER). One due for republishing (older than the
        schedule allows, or its nextUpdate near) is published first, when the token is at hand."""
        if issuer not in {"issuing", "root"}:
            raise NotFound("CA_UNKNOWN", "no such CA", "无此证书颁发机构")
        if services.county_pki is not None:
            try:
                services.county_pki.ensure_current_crls()
            except SealServiceError as exc:  # the token is away: serve what was published, serve keeps trying
                log.warning("CRL not republished before serving: %s", exc.code, extra={"code": exc.code})
        data = _published(services.settings, f"crl/{issuer}.crl", "证书吊销列表")
        return Response(data, media_type=CRL_TYPE, headers={"Cache-Control": "public, max-age=300"})

    @router.get("/pki/{name}.crt", dependencies=PUBLIC, response_class=Response)
    def ca_cert(name: str, services: ServicesDep) -> Response:
        """The county root (trust anchor) or issuing CA certificate (DER)."""
        if name not in {"issuing", "root"}:
            raise NotFound("CA_UNKNOWN", "no such CA", "无此证书颁发机构")
        data = _published(services.settings, f"{name}.crt", "证书")
        return Response(data, media_type=CERT_TYPE, headers={"Cache-Control": "public, max-age=3600"})

    @router.get("/pki/status", dependencies=PUBLIC, response_class=Response)
    def status_list(services: ServicesDep) -> Response:
        """The county's decision status list (C2SP signed note by the log key; docs/verification.md,
        "Decision status"). One older than the republishing interval is signed again first, when the log
        key is at hand."""
        from api._status_list import current_for_serving

        data = current_for_serving(services)
        return Response(
            data, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "public, max-age=300"}
        )

    @router.get("/pki/trust-bundle.json", dependencies=PUBLIC, response_class=Response)
    def trust_bundle(services: ServicesDep) -> Response:
        """This county's trust bundle (roots, CRLs, log key, checkpoint, status list, nextUpdate), signed by
        the county root: what ``yizhang trust add URL`` and ``trust refresh`` fetch. Signed again when older
        than an hour or its CRLs or status list changed."""
        from api._trust_store import current_for_serving as bundle_for_serving

        data = bundle_for_serving(services)
        return Response(data, media_type="application/json", headers={"Cache-Control": "public, max-age=300"})

    # -- the ledger: key, checkpoints, proofs -------------------------------------------------------------
    @router.get("/v1/public/log-key", dependencies=PUBLIC, response_class=Response)
    def log_key(services: ServicesDep) -> Response:
        """The log's verifier key (signed-note vkey line)."""
        from ledger import vkey_path

        path = vkey_path(services.settings)
        if not path.is_file():
            raise NotFound("LOG_KEY_NOT_PUBLISHED", "the log key is not published", "日志公钥尚未发布")
        return Response(path.read_text(encoding="utf-8"), media_type="text/plain; charset=utf-8")

    @router.get("/v1/public/checkpoint", dependencies=PUBLIC, response_class=Response)
    def checkpoint(services: ServicesDep) -> Response:
        """The latest signed checkpoint (C2SP tlog-checkpoint signed note)."""
        ledger = services.need_ledger()
        cp = ledger.latest_checkpoint()
        if cp is None:
            raise NotFound("NO_CHECKPOINT", "no checkpoint yet", "尚无检查点")
        return Response(cp.note, media_type="text/plain; charset=utf-8")

    @router.get("/v1/public/proofs/{index}", dependencies=PUBLIC, response_class=Response)
    def proof(
        index: Annotated[int, Path(ge=0, le=MAX_INDEX)],
        services: ServicesDep,
        evidence: Annotated[bool, Query(description="the evidence record (JSON) instead")] = False,
    ) -> Response:
        """Receipt for entry ``index`` (C2SP tlog-proof: the entry, its inclusion proof, the checkpoint).

        With ``?evidence=1`` the entry's evidence record (``yizhang-evidence-record/1``,
        docs/ledger-format.md): the tlog-proof against the first timestamped checkpoint that contains it and
        that timestamp's renewal chain with certificates and CRLs, what proves an untouched original after
        its own certificates expired. ``404 LEDGER_EVIDENCE_PENDING`` until a stamped checkpoint covers it.

        The entry's people and free text are salted commitments (docs/ledger-format.md, "Personal data"),
        so the receipt shows hashes and public facts only. An entry logged before that holds them in clear
        and is refused here (``LEDGER_ENTRY_NOT_PUBLIC``): its bytes cannot change without breaking the
        chain; the issuing centre still hands its receipt out with the document."""
        ledger = services.need_ledger()
        if index < 0:
            raise BadInput("INDEX_INVALID", "index must be >= 0", "序号须为非负数")
        if ledger.get(index).names_people:
            raise PermissionDenied(
                "LEDGER_ENTRY_NOT_PUBLIC",
                "this entry predates salted personal fields; ask the issuing centre for its receipt",
                "该条目早于个人信息加盐保护，不公开提供；请向出具单位索取回执",
            )
        if evidence:
            from signer import evidence_record_text

            return Response(evidence_record_text(ledger, index), media_type="application/json")
        return Response(ledger.receipt(index).to_text(), media_type="text/plain; charset=utf-8")

    @router.get("/v1/public/consistency", dependencies=PUBLIC)
    def consistency(
        services: ServicesDep,
        first: Annotated[int, Query(ge=0, le=MAX_INDEX)],
        second: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    ) -> JsonObject:
        """RFC 9162 consistency proof between two tree sizes (hashes base64)."""
        ledger = services.need_ledger()
        if first > second:
            raise BadInput("SIZE_ORDER_INVALID", "first must not exceed second", "first 不得大于 second")
        hashes = ledger.consistency_proof(first, second)
        return {"first": first, "second": second, "proof": [base64.b64encode(h).decode() for h in hashes]}

    # -- time-stamping (RFC 3161): for accounts that seal, not the public -----------------------------
    @router.post(
        "/v1/tsa",
        dependencies=SEALERS,
        tags=["timestamping"],
        response_class=Response,
        openapi_extra={
            "requestBody": {"content": {"application/timestamp-query": {"schema": {"type": "string"}}}}
        },
    )
    async def tsa(request: Request, services: ServicesDep) -> Response:
        """The county's time-stamping authority, for an account that seals (a township clerk's bearer
        token): DER TimeStampReq in, DER TimeStampResp out (RFC 3161 over HTTP, §3.4); ``openssl ts -query``
        / ``-verify`` work against it. Anonymous: 401 ``UNAUTHENTICATED``; another role: 403
        ``ROLE_FORBIDDEN``."""
        import anyio

        if request.headers.get("content-type", "").split(";")[0].strip() != "application/timestamp-query":
            raise BadInput(
                "CONTENT_TYPE_INVALID",
                "send application/timestamp-query",
                "请以 application/timestamp-query 提交",
            )
        body = await request.body()
        if not body or len(body) > 16 * 1024:
            raise BadInput(
                "TSA_REQUEST_INVALID", "empty or oversized time-stamp request", "时间戳请求为空或过大"
            )
        county_tsa = await anyio.to_thread.run_sync(lambda: services.county_tsa())
        reply = await anyio.to_thread.run_sync(lambda: county_tsa.respond(body))
        return Response(reply, media_type="application/timestamp-reply")

    # -- verification ------------------------------------------------------------------------------------
    @router.post("/v1/verify", dependencies=PUBLIC_LIMITED)
    def verify(
        request: Request,
        services: ServicesDep,
        file: Annotated[UploadFile, File(description="the PDF to verify")],
    ) -> JSONResponse:
        """Verify a sealed PDF (strict): the report as JSON. Unreadable input is a report, not an error."""
        from api._verify_gate import PUBLIC_TIMEOUT_S, client_of, gate_of
        from verifier import VerifyLimits, verify_document

        limits = VerifyLimits(max_bytes=services.settings.max_pdf_bytes, timeout_s=PUBLIC_TIMEOUT_S)
        data = file.file.read(limits.max_bytes + 1)
        if len(data) > limits.max_bytes:
            raise BadInput("PDF_TOO_LARGE", "the PDF is over the size limit", "PDF 超过大小上限")
        try:
            trust, evidence = trust_and_evidence(services)
        except BadInput as exc:
            raise Unavailable("TRUST_NOT_CONFIGURED", exc.message_en, exc.message_zh) from exc
        # one verification in flight per client address (429 VERIFY_BUSY), a shorter wall time than the CLI
        with gate_of(request.app).admit(client_of(request)):
            report = verify_document(data, trust, now=datetime.now(UTC), limits=limits, evidence=evidence)
        return JSONResponse(report.to_dict())

    return router


def trust_and_evidence(services: Services) -> tuple[TrustList, EvidenceRouter]:
    """What public verification trusts: this county (its roots, CRLs, records) and the counties of its trust
    store (``yizhang trust add``), each county's documents judged with that county's evidence."""
    from api._trust_store import evidence_router
    from verifier import TrustList

    router = evidence_router(services.settings, _evidence(services))
    return router.trust_list(TrustList.for_home(services.settings.home_dir)), router


def _evidence(services: Services) -> Evidence:
    """What this server knows beyond the document: ledger receipts (checked against the published log key,
    never trusted as such) and the decision's current status (变更、撤回、撤销、注销) from its records."""
    import dataclasses

    from ledger import vkey_path
    from verifier import Evidence

    try:
        from api._local_evidence import local_evidence
    except ImportError:
        evidence = Evidence()
    else:
        evidence = local_evidence(services.engine, vkey_path(services.settings))
    if evidence.ledger_lookup is not None:
        evidence = dataclasses.replace(evidence, ledger_lookup=_covering(services, evidence.ledger_lookup))

    from api._status_list import decision_status_lookup

    return dataclasses.replace(evidence, status_lookup=decision_status_lookup(services.engine))


def _covering(
    services: Services, lookup: Callable[[LedgerQuery], LedgerFinding | None]
) -> Callable[[LedgerQuery], LedgerFinding | None]:
    """The ledger lookup of this service, which owns the log: an entry no signed checkpoint covers yet
    (sealed since the serve loop's last one) gets one, as ``/v1/public/proofs`` does, and is then proven
    like any other. The checkpoint is signed by the ledger (one signature per growth of the tree, never two
    that disagree); the verifier still only reads and checks. Where the log key is not at hand the answer
    stays PENDING (INDETERMINATE, TRY_LATER)."""
    from verifier import LedgerAnswer

    def covering(query: LedgerQuery) -> LedgerFinding | None:
        finding = lookup(query)
        if finding is None or finding.answer is not LedgerAnswer.PENDING:
            return finding
        try:
            services.need_ledger().checkpoint()
        except SealServiceError:
            return finding
        return lookup(query)

    return covering
