"""Properties of the decision over generated requests and facts (hypothesis)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import (
    RULES,
    Actor,
    Agreement,
    AgreementStatus,
    DocumentKind,
    PolicyFacts,
    Role,
    SealFacts,
    SealKindFact,
    SealStatusFact,
    SigningRequest,
    Stage,
    TownshipPower,
    decide,
    default_stage_kinds,
)
from tests._fixtures.policies import CENTRE1, CENTRE2, NOW, T1, T2, minimal_facts

TOWNSHIPS = st.sampled_from([T1, T2])
CENTRES = st.sampled_from([CENTRE1, CENTRE2, None])
DEPTS = st.sampled_from(["D1", "D2", None])
OFFSETS = st.integers(min_value=-400, max_value=400).map(lambda d: NOW + timedelta(days=d))
STAGE_SETS = st.frozensets(st.sampled_from(list(Stage)))
MATTER_CODES = ["M1", "M2", "N1", "N2", "A1", "S1", "ADM", "NOPE"]

seals = st.builds(
    SealFacts,
    seal_id=st.just("s"),
    kind=st.sampled_from(list(SealKindFact)),
    status=st.sampled_from(list(SealStatusFact)),
    township_code=TOWNSHIPS,
    not_before=OFFSETS,
    not_after=OFFSETS,
    number=st.sampled_from([13, 14, None]),
    department_code=DEPTS,
)
actors = st.builds(
    Actor,
    user_id=st.sampled_from(["u1", "u2"]),
    role=st.sampled_from(list(Role)),
    org_code=TOWNSHIPS,
    service_centre=CENTRES,
)
requests = st.builds(
    SigningRequest,
    seal=seals,
    operator=actors,
    matter_code=st.sampled_from(MATTER_CODES),
    stage=st.sampled_from(list(Stage)),
    document_kind=st.sampled_from(list(DocumentKind)),
    approver=st.none() | actors,
)
agreements = st.builds(
    Agreement,
    agreement_id=st.sampled_from(["A", "B"]),
    department_code=st.sampled_from(["D1", "D2"]),
    township_code=TOWNSHIPS,
    seal_number=st.sampled_from([13, 14]),
    matters=st.frozensets(st.sampled_from(MATTER_CODES)),
    stages=STAGE_SETS,
    starts_at=OFFSETS,
    ends_at=st.none() | OFFSETS,
    status=st.sampled_from(list(AgreementStatus)),
)
ALL_MATTERS = minimal_facts().matters


@st.composite
def facts(draw: st.DrawFn) -> PolicyFacts:
    codes = draw(st.frozensets(st.sampled_from(list(ALL_MATTERS))))
    power_keys = draw(st.frozensets(st.tuples(TOWNSHIPS, st.sampled_from(MATTER_CODES)), max_size=6))
    powers = {k: TownshipPower(k[0], k[1], draw(STAGE_SETS), 1) for k in power_keys}
    table = default_stage_kinds() if draw(st.booleans()) else {}
    centres = draw(st.sampled_from([{T1: CENTRE1, T2: CENTRE2}, {T1: CENTRE1}, {}]))
    return PolicyFacts(
        matters={c: ALL_MATTERS[c] for c in codes},
        powers=powers,
        agreements=tuple(draw(st.lists(agreements, max_size=3))),
        stage_kinds=table,
        service_centres=centres,
        township_seal_requires_approval=draw(st.booleans()),
    )


@settings(max_examples=400, deadline=None)
@given(req=requests, f=facts(), now=OFFSETS)
def test_never_allows_what_any_single_rule_forbids(req: SigningRequest, f: PolicyFacts, now: object) -> None:
    d = decide(req, f, now)  # type: ignore[arg-type]
    for rule in RULES:
        denied = rule(req, f, now)  # type: ignore[arg-type]
        if denied:
            assert not d.allowed
            assert {r.code for r in denied} <= set(d.codes)
    if d.allowed:
        assert d.reasons == () and d.grant is not None
    else:
        assert d.reasons


@settings(max_examples=300, deadline=None)
@given(req=requests, f=facts(), now=OFFSETS, order=st.permutations(list(RULES)))
def test_rule_order_does_not_change_the_result(
    req: SigningRequest, f: PolicyFacts, now: object, order: list[object]
) -> None:
    assert decide(req, f, now, rules=order) == decide(req, f, now)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(req=requests, now=OFFSETS)
def test_empty_facts_never_allow(req: SigningRequest, now: object) -> None:
    assert not decide(req, PolicyFacts.empty(), now).allowed  # type: ignore[arg-type]
