"""The ledger for auditors and the county: audit, checkpoints, entries, the usage ledger (台账)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api._authz import Permission, Principal, ServicesDep, require
from api._json import JsonObject, JsonValue
from api._views import MONTH, jsonable, month_bounds
from core.errors import BadInput
from core.settings import Settings

Reader = Annotated[Principal, Depends(require(Permission.LEDGER_READ))]
Checkpointer = Annotated[Principal, Depends(require(Permission.LEDGER_CHECKPOINT))]
Reports = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]

#: Bound on indices and sizes: SQLite and PostgreSQL integers are 64-bit.
MAX_INDEX = 2**62


def router_for(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

    @router.get("/audit")
    def audit(
        principal: Reader, services: ServicesDep, from_index: Annotated[int, Query(ge=0, le=MAX_INDEX)] = 0
    ) -> JsonObject:
        """Recompute chain and tree from the stored entries and check every checkpoint (read-only)."""
        report = services.need_ledger().audit(from_index)
        return dict(report.to_dict())

    @router.post("/checkpoint")
    def checkpoint(principal: Checkpointer, services: ServicesDep) -> JsonObject:
        ledger = services.need_ledger()
        if ledger.signer is None:
            from core.errors import Unavailable

            raise Unavailable(
                "LOG_KEY_UNAVAILABLE", "this server holds no log key", "服务器未配置日志签名密钥"
            )
        from api._journal import forward

        # A checkpoint covers every seal lifecycle and policy change so far (api/_journal.py).
        forward(services)
        cp = ledger.checkpoint()
        return {"origin": cp.origin, "size": cp.size, "root": cp.root.hex(), "note": cp.note}

    @router.get("/size")
    def size(principal: Reader, services: ServicesDep) -> dict[str, int]:
        return {"size": int(services.need_ledger().size())}

    @router.get("/entries/{index}")
    def entry(
        index: Annotated[int, Path(ge=0, le=MAX_INDEX)], principal: Reader, services: ServicesDep
    ) -> JsonObject:
        if index < 0:
            raise BadInput("INDEX_INVALID", "index must be >= 0", "序号须为非负数")
        found = services.need_ledger().get(index)
        out = jsonable(found)
        return out if isinstance(out, dict) else {"entry": out}

    @router.get("/usage")
    def usage(
        principal: Reports,
        services: ServicesDep,
        seal_id: Annotated[str, Query(min_length=1, max_length=64)],
        month: Annotated[str, Query(pattern=MONTH)],
    ) -> list[JsonValue]:
        """The usage ledger (使用登记台账) of one seal for one month (YYYY-MM)."""
        from api._usage_scope import usage_in_scope

        month_bounds(month, UTC)  # refuses years a datetime cannot hold, before the ledger parses it
        # a county department reads the lines of the matters it entrusts or supervises (000 四（三）)
        rows = usage_in_scope(services, principal, seal_id, month)
        return list(jsonable(rows))

    return router
