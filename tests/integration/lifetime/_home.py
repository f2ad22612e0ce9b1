"""A demo-like county home for the lifetime tests, built in its own process (own SoftHSM token, as
``yizhang demo`` makes one): county init, the demo's policies and seals, one B-LTA acceptance notice sealed
through the service's wiring (``build_services``: the objects ``yizhang serve`` runs on), the journal
forwarded and a checkpoint signed. No accounts: the document is what the tests need.

    python -m tests.integration.lifetime._home HOME OUT.pdf [IDEMPOTENCY_KEY]

Prints the sealed document's summary (JSON). Run again on the same home with another key to seal another
document (e.g. after YIZHANG_PUBLIC_BASE_URL changed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _catalogs() -> Path:
    from tests.conftest import CATALOGS  # the catalogs shipped in the package (issue 20)

    return Path(CATALOGS)


def build(home: Path, out: Path, key: str) -> dict[str, object]:
    from api._journal import forward
    from api._services import build_services
    from api.cli._common import ensure_log_key, settings_for
    from core.db import migrate
    from core.errors import NotFound
    from keystore import init_county
    from policies import Actor, Role
    from signer import SealRequest
    from tests._fixtures.keystore import COUNTY_CODE, COUNTY_NAME, issue_township_seal
    from tests._fixtures.policies import load_xingguo
    from tests._fixtures.signer import ACCEPTANCE_DATA, XINGJIANG

    settings = settings_for(home)
    init_county(settings, COUNTY_CODE, COUNTY_NAME)
    migrate(settings.effective_database_url)
    ensure_log_key(settings)
    services = build_services(settings)
    try:
        store, registry = services.need_policy_store(), services.need_seal_registry()
        try:
            store.organisation(COUNTY_CODE)
        except NotFound:
            load_xingguo(store, _catalogs())
            store.grant_powers(XINGJIANG, None, actor="admin")
        seal = next((s for s in registry.list(township_code=XINGJIANG)), None)
        if seal is None:
            seal = issue_township_seal(registry, township="兴江乡", code=XINGJIANG)
            registry.activate(seal.seal_id, actor="县行政审批局-张三", approved_by="王乡长")
        centre = store.organisation(XINGJIANG).service_centre
        clerk = Actor(user_id="xj.clerk", role=Role.TOWNSHIP_CLERK, org_code=XINGJIANG, service_centre=centre)
        done = services.need_signer().apply_seal(
            SealRequest(
                seal_id=seal.seal_id,
                matter_code="SX-002",
                stage="受理",
                document_kind="受理通知书",
                idempotency_key=key,
                operator=clerk,
                reason="受理临时救助申请",
                template="acceptance_notice",
                template_data=ACCEPTANCE_DATA,
                level="B-LTA",
                verify_qr=True,
            )
        )
        out.write_bytes(done.pdf)
        forward(services)
        services.need_ledger().checkpoint()
        return {"file": str(out), "level": done.level, "number": done.document_number}
    finally:
        services.close()


if __name__ == "__main__":
    summary = build(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "lifetime-1")
    print(json.dumps(summary, ensure_ascii=False))
