"""Who reads which lines of a seal's usage ledger (使用登记台账): by organisation, deny by default.

000 四（三）: the 台账 is kept "便于乡镇（区、街道）、县直相关部门和纪检监察机关核查"; 004 二.4 and 三（一）1:
the entrusting department supervises the township's use of its seal. So (issue 22, leak 17):

1. county-wide accounts (administrator, auditor / discipline inspector) read every line;
2. the seal's township reads its seal's lines, a department its own No. 2 seals' lines;
3. a county department reads, on any seal of its county, the lines of the matters it is responsible for:
   the matter's entrusting department or one of its supervising departments (by code);
4. anyone else, and a department responsible for none of the township's matters, is refused
   (``OTHER_ORGANISATION``); a department never sees the lines of another department's matters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from api._authz import Principal
from api._services import Services
from core.errors import PermissionDenied, SealServiceError
from policies import Role

if TYPE_CHECKING:
    from ledger import UsageRow


def _refused() -> PermissionDenied:
    return PermissionDenied(
        "OTHER_ORGANISATION",
        "this belongs to another organisation",
        "无权访问其他单位的资源",
        details={"source": "000 四（三）"},
    )


def department_matters(services: Services, township_code: str, department_code: str) -> frozenset[str]:
    """Codes of the matters in the township's county catalog the department entrusts or supervises."""
    store = services.policy_store
    if store is None:
        return frozenset()
    try:
        county = store.organisation(township_code).county_code
        department = store.organisation(department_code)
    except SealServiceError:
        return frozenset()
    if county is None or department.county_code != county:
        return frozenset()  # department codes (县民政局) are per county: another county's is not this one's
    return frozenset(
        m.code
        for m in store.matters(county)
        if m.department_code == department_code or department_code in m.supervising_codes
    )


def usage_in_scope(services: Services, principal: Principal, seal_id: str, month: str) -> list[UsageRow]:
    """The usage ledger of ``seal_id`` for ``month`` (``YYYY-MM``, Beijing), as far as ``principal`` may
    read it (steps 1-4 of the module's plan)."""
    seal = services.need_seal_registry().get(seal_id)
    ledger = services.need_ledger()
    if principal.in_scope(township_code=seal.township_code, department_code=seal.department_code):
        return list(ledger.usage(seal_id, month))
    if principal.role is not Role.DEPARTMENT_OFFICER:
        raise _refused()
    mine = department_matters(services, seal.township_code, principal.org_code)
    if not mine:
        raise _refused()
    return [row for row in ledger.usage(seal_id, month) if row.matter in mine]
