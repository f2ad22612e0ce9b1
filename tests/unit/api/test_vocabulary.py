"""One vocabulary per concept (issue 24): roles and organisation kinds are the policy register's, decision
statuses the ledger's; the API and the CLI spell them from there."""

from __future__ import annotations

from typing import get_args

import pytest

from api._signing import DECISION_STATUSES
from api.routes._signing import StatusIn
from ledger import FINAL_DECISION_STATUSES, DecisionStatus
from policies import ROLE_ORG_KIND, Role


def test_the_routes_status_choices_are_the_ledgers_decision_statuses() -> None:
    assert get_args(StatusIn.model_fields["status"].annotation) == tuple(s.value for s in DecisionStatus)
    assert DECISION_STATUSES == ("CHANGED", "WITHDRAWN", "REVOKED", "CANCELLED")
    assert DecisionStatus.CHANGED not in FINAL_DECISION_STATUSES  # a changed decision may still be withdrawn
    assert "REVOKED" in FINAL_DECISION_STATUSES  # the stored spelling is the member's value


def test_every_role_belongs_to_one_kind_of_organisation() -> None:
    assert set(ROLE_ORG_KIND) == set(Role)


@pytest.mark.parametrize(
    ("typed", "role"),
    [
        ("clerk", Role.TOWNSHIP_CLERK),  # the short names the policy and sign commands have always taken
        ("PRINCIPAL", Role.TOWNSHIP_PRINCIPAL),
        ("custodian", Role.SEAL_CUSTODIAN),
        ("bureau_admin", Role.COUNTY_ADMIN),
        ("department", Role.DEPARTMENT_OFFICER),
        ("auditor", Role.AUDITOR),
        ("township_clerk", Role.TOWNSHIP_CLERK),  # and the stored name
    ],
)
def test_a_role_typed_on_the_command_line(typed: str, role: Role) -> None:
    assert Role.parse(typed) is role


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError):
        Role.parse("mayor")
