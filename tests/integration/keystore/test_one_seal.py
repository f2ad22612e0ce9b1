"""Issue 22, leak 3: one approval seal per township (一枚印章管审批, 000/001/002), one No. 2 seal per township
and department (004). Fails on the code before it: a second live seal was issued."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import Conflict
from tests._fixtures.keystore import issue_township_seal

pytestmark = pytest.mark.softhsm


def test_a_second_township_approval_seal_is_refused(seal_registry: Any) -> None:
    first = issue_township_seal(seal_registry)
    seal_registry.activate(first.seal_id, actor="a", approved_by="王乡长")
    with pytest.raises(Conflict) as err:
        issue_township_seal(seal_registry, name="兴国县兴江乡人民政府政务服务专用章")
    assert err.value.code == "SEAL_ONE_PER_TOWNSHIP"
    assert err.value.details["existing_seal_id"] == first.seal_id
    # another township is not affected; once the first is cancelled a new one may be made
    issue_township_seal(seal_registry, township="梅窖镇", code="360732102")
    seal_registry.cancel(first.seal_id, actor="a", approved_by="王乡长", reason="遗失")
    issue_township_seal(seal_registry, name="兴国县兴江乡人民政府政务服务专用章")


def test_one_no2_seal_per_township_and_department(seal_registry: Any) -> None:
    from keystore import SealKind

    def no2(department: str, number: int = 11) -> Any:
        return issue_township_seal(
            seal_registry,
            name=f"兴国县{department.removeprefix('兴国县')}行政审批专用章（{number}）",
            kind=SealKind.DEPARTMENT_NO2,
            number=number,
            department=department,
            department_code="县" + department.removeprefix("兴国县"),
        )

    no2("兴国县民政局")
    no2("兴国县林业局")  # another department's seal at the same township
    issue_township_seal(seal_registry)  # and the township's own
    with pytest.raises(Conflict) as err:
        no2("兴国县民政局", 12)  # another name, the same department: still its one seal at this township
    assert err.value.code == "SEAL_ONE_PER_TOWNSHIP"
