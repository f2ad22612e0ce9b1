"""The decision: may this seal be applied to this document, by this operator, now?

Standard library only; no clock (``now`` is passed in) and no I/O. Every rule is a pure function
``(request, facts, now) -> tuple[Reason, ...]`` that returns the reasons it denies for; :func:`decide` runs
*every* rule and returns *every* reason, sorted into a canonical order so that the order of the rules never
changes the result. A request is allowed only when no rule denies **and** a positive grant exists (a
township power covering matter and stage, or an agreement in force covering them): deny by default, and
empty facts fail closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from policies._model import (
    DEFAULT_APPROVAL_STAGES,
    NO_SEAL_MODES,
    SEAL_USER_ROLES,
    Agreement,
    AgreementStatus,
    Decision,
    DecisionVersions,
    HandlingMode,
    PolicyFacts,
    Reason,
    Role,
    SealKindFact,
    SealStatusFact,
    SigningRequest,
)

# code -> (English, Chinese). The order here is the canonical order of reasons in a Decision.
MESSAGES: dict[str, tuple[str, str]] = {
    "SEAL_NOT_ACTIVE": ("the seal is not active", "印章未处于启用状态"),
    "SEAL_SUSPENDED": ("the seal is suspended", "印章已暂停使用"),
    "SEAL_CANCELLED": ("the seal is cancelled", "印章已注销"),
    "SEAL_RETIRED": ("the seal is retired and sealed away", "印章已停用封存"),
    "SEAL_NOT_YET_VALID": ("the seal's certificate is not yet valid", "印章证书尚未生效"),
    "SEAL_EXPIRED": ("the seal's certificate has expired", "印章证书已过期"),
    "TOWNSHIP_MERGED": (
        "the seal's township was merged into another; its powers and seal use passed to that township "
        "(002: seals of abolished bodies are collected and sealed away)",
        "印章所属乡镇已并入其他乡镇，职权和用章由承继乡镇行使（002：机构撤销的印章收回封存）",
    ),
    "TOWNSHIP_RETIRED": (
        "the seal's township has been abolished; its seals are sealed away (002)",
        "印章所属乡镇已撤销，其印章收回封存（002）",
    ),
    "SEAL_KIND_MISMATCH": (
        "this kind of seal (or this department's seal) cannot be used for this matter",
        "该类印章（或该部门印章）不能用于此事项",
    ),
    "MATTER_UNKNOWN": ("the matter is not in the catalog", "事项不在目录中"),
    "MATTER_REQUIRES_ADMIN_SEAL": (
        "this matter needs the township's administrative seal, not the approval seal",
        "该事项须使用乡镇行政公章，不适用行政审批专用章",
    ),
    "MATTER_REQUIRES_AGENCY_SEAL": (
        "this matter is implemented by the dispatched agency {agency} in its own name: it takes the seal of "
        "{agency}, not the township's approval seal nor its administrative seal",
        "该事项由派出机构（{agency}）以自身名义实施，须加盖{agency}的印章，不适用乡镇行政审批服务专用章或乡镇行政公章",
    ),
    "MODE_FORBIDS_SEAL": (
        "the matter's handling mode (assist/proxy or system extension) gives the township no seal use",
        "该事项办理方式（帮办代办或业务系统延伸办）不允许乡镇用章",
    ),
    "MATTER_NOT_HELD": ("the matter is not on this township's list of powers", "该事项不在本乡镇职权清单内"),
    "STAGE_NOT_DELEGATED": ("this stage is not delegated to the township", "该环节未下放至本乡镇"),
    "DOCUMENT_KIND_NOT_ALLOWED": (
        "this document kind may not be sealed at this stage",
        "该环节不允许对此类文书用章",
    ),
    "AGREEMENT_MISSING": ("no entrustment agreement covers this seal", "无该印章的委托协议"),
    "AGREEMENT_NOT_IN_FORCE": ("the agreement is not yet in force", "委托协议尚未生效"),
    "AGREEMENT_EXPIRED": ("the agreement has expired", "委托协议已到期"),
    "AGREEMENT_SUSPENDED": ("the agreement is suspended", "委托协议已暂停"),
    "AGREEMENT_REVOKED": ("the agreement has been revoked", "委托协议已被撤销"),
    "MATTER_NOT_IN_AGREEMENT": ("the agreement does not cover this matter", "委托协议不包含该事项"),
    "STAGE_NOT_IN_AGREEMENT": ("the agreement does not cover this stage", "委托协议未授权该环节"),
    "OPERATOR_WRONG_TOWNSHIP": (
        "the operator does not belong to the seal's township",
        "用章人不属于印章所属乡镇",
    ),
    "OPERATOR_WRONG_SERVICE_CENTRE": (
        "the seal may only be used at its township's service centre (no use elsewhere)",
        "印章只能在本乡镇便民服务中心使用，不得异地使用",
    ),
    "OPERATOR_ROLE_NOT_ALLOWED": ("the operator's role may not apply the seal", "用章人角色无权用章"),
    "OPERATOR_ACCOUNT_DISABLED": (
        "the seal user's account is disabled (left the window or moved away): their requests are no longer "
        "sealed (002 window staff are filed and re-filed when replaced; 004 二.2 the seal user applies)",
        "用章人账号已停用（离岗或调离），其用章申请不再盖章"
        "（002 窗口人员备案、更换动态调整；004 二.2 用章人员申请）",
    ),
    "APPROVAL_MISSING": ("this use needs the principal's approval", "本次用章须经主要负责人批准"),
    "SELF_APPROVAL": ("the approver must not be the seal user", "批准人与用章人不得为同一人"),
    "APPROVER_NOT_PRINCIPAL": (
        "the approver is not a principal of the seal's township",
        "批准人不是本乡镇主要负责人",
    ),
    "NO_GRANT": ("nothing grants this use (deny by default)", "无任何授权（默认拒绝）"),
}
_ORDER = {code: i for i, code in enumerate(MESSAGES)}


def reason(code: str) -> Reason:
    en, zh = MESSAGES[code]
    return Reason(code, en, zh)


_R = {code: reason(code) for code in MESSAGES}


def _utc(moment: datetime) -> datetime:
    # Storage and callers should pass aware datetimes; a naive one is read as UTC rather than crash.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Rule = Callable[[SigningRequest, PolicyFacts, datetime], tuple[Reason, ...]]


def rule_seal_status(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    status = req.seal.status
    if status is SealStatusFact.ACTIVE:
        return ()
    specific = {
        SealStatusFact.SUSPENDED: "SEAL_SUSPENDED",
        SealStatusFact.CANCELLED: "SEAL_CANCELLED",
        SealStatusFact.RETIRED: "SEAL_RETIRED",
    }.get(status)
    return (_R["SEAL_NOT_ACTIVE"],) + ((_R[specific],) if specific else ())


def rule_seal_validity(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    t = _utc(now)
    if t < _utc(req.seal.not_before):
        return (_R["SEAL_NOT_YET_VALID"],)
    if t >= _utc(req.seal.not_after):
        return (_R["SEAL_EXPIRED"],)
    return ()


def rule_seal_kind(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    seal = req.seal
    if seal.kind is SealKindFact.TOWNSHIP_APPROVAL:
        malformed = seal.department_code is not None or not seal.township_code
    else:
        malformed = seal.department_code is None or seal.number is None or not seal.township_code
    if malformed:
        return (_R["SEAL_KIND_MISMATCH"],)
    matter = facts.matters.get(req.matter_code)
    if matter is None:
        return ()
    if seal.kind is SealKindFact.DEPARTMENT_NO2:
        # A department's numbered seal serves only that department's 2号章 matters.
        if matter.mode is not HandlingMode.NO2_SEAL or matter.department_code != seal.department_code:
            return (_R["SEAL_KIND_MISMATCH"],)
    elif matter.mode is HandlingMode.NO2_SEAL:
        # 2号章 matters are finalised in the department's name, never with the township's own seal.
        return (_R["SEAL_KIND_MISMATCH"],)
    return ()


def rule_matter(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    matter = facts.matters.get(req.matter_code)
    if matter is None:
        return (_R["MATTER_UNKNOWN"],)
    out: tuple[Reason, ...] = ()
    if matter.agency:
        # 001 四（三）: a 派出机构's matters are handled at the centre but in the agency's name, under its
        # seal; naming the township's 行政公章 here would send the clerk to the wrong seal (issue 22, leak 19)
        en, zh = MESSAGES["MATTER_REQUIRES_AGENCY_SEAL"]
        out += (
            Reason(
                "MATTER_REQUIRES_AGENCY_SEAL",
                en.format(agency=matter.agency),
                zh.format(agency=matter.agency),
            ),
        )
    elif matter.requires_admin_seal:
        out += (_R["MATTER_REQUIRES_ADMIN_SEAL"],)
    if matter.mode in NO_SEAL_MODES:
        out += (_R["MODE_FORBIDS_SEAL"],)
    return out


def rule_township_power(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    if req.seal.kind is not SealKindFact.TOWNSHIP_APPROVAL:
        return ()  # a No. 2 seal is granted by its agreement, checked below
    power = facts.powers.get((req.seal.township_code, req.matter_code))
    if power is None or not power.stages:
        return (_R["MATTER_NOT_HELD"],)
    matter = facts.matters.get(req.matter_code)
    # The power can never reach beyond the scope the catalog gives the matter.
    scope = power.stages if matter is None else power.stages & matter.mode.stages
    if req.stage not in scope:
        return (_R["STAGE_NOT_DELEGATED"],)
    return ()


def rule_document_kind(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    if req.document_kind not in facts.stage_kinds.get(req.stage, frozenset()):
        return (_R["DOCUMENT_KIND_NOT_ALLOWED"],)
    return ()


def _candidate_agreements(req: SigningRequest, facts: PolicyFacts) -> list[Agreement]:
    seal = req.seal
    found = [
        a
        for a in facts.agreements
        if a.department_code == seal.department_code
        and a.township_code == seal.township_code
        and a.seal_number == seal.number
    ]
    return sorted(found, key=lambda a: (a.agreement_id, a.version))


def _agreement_problems(agreement: Agreement, req: SigningRequest, now: datetime) -> tuple[Reason, ...]:
    out: tuple[Reason, ...] = ()
    if agreement.status is AgreementStatus.SUSPENDED:
        out += (_R["AGREEMENT_SUSPENDED"],)
    elif agreement.status is AgreementStatus.REVOKED:
        out += (_R["AGREEMENT_REVOKED"],)
    t = _utc(now)
    if t < _utc(agreement.starts_at):
        out += (_R["AGREEMENT_NOT_IN_FORCE"],)
    elif agreement.ends_at is not None and t >= _utc(agreement.ends_at):
        out += (_R["AGREEMENT_EXPIRED"],)
    if req.matter_code not in agreement.matters:
        out += (_R["MATTER_NOT_IN_AGREEMENT"],)
    if req.stage not in agreement.stages:
        out += (_R["STAGE_NOT_IN_AGREEMENT"],)
    return out


def rule_agreement(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    if req.seal.kind is not SealKindFact.DEPARTMENT_NO2:
        return ()
    candidates = _candidate_agreements(req, facts)
    if not candidates:
        return (_R["AGREEMENT_MISSING"],)
    problems = [(_agreement_problems(a, req, now), a.agreement_id, a.version) for a in candidates]
    # No agreement grants it: report the one closest to granting (fewest problems; ties by id), not the
    # accumulated faults of long-revoked predecessors. Storage forbids overlaps, so usually there is one.
    best = min(problems, key=lambda p: (len(p[0]), p[1], p[2]))
    return best[0]


def rule_operator(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    op, seal = req.operator, req.seal
    out: tuple[Reason, ...] = ()
    if op.org_code != seal.township_code:
        out += (_R["OPERATOR_WRONG_TOWNSHIP"],)
    centre = facts.service_centres.get(seal.township_code)
    if centre is None or op.service_centre != centre:
        out += (_R["OPERATOR_WRONG_SERVICE_CENTRE"],)
    if op.role not in SEAL_USER_ROLES:
        out += (_R["OPERATOR_ROLE_NOT_ALLOWED"],)
    if not op.active:
        out += (_R["OPERATOR_ACCOUNT_DISABLED"],)
    return out


def approval_required(req: SigningRequest, facts: PolicyFacts) -> bool:
    """Every No. 2 seal use needs the principal's approval (004); township seals as the county configures,
    per stage: by default every stage but 受理, whose notice window staff issue themselves (003)."""
    if req.seal.kind is SealKindFact.DEPARTMENT_NO2:
        return True
    if not facts.township_seal_requires_approval:
        return False
    stages = DEFAULT_APPROVAL_STAGES if facts.approval_stages is None else facts.approval_stages
    return req.stage in stages


def rule_approval(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    approver = req.approver
    if approver is None:
        return (_R["APPROVAL_MISSING"],) if approval_required(req, facts) else ()
    out: tuple[Reason, ...] = ()
    same_person = approver.person_id is not None and approver.person_id == req.operator.person_id
    if approver.user_id == req.operator.user_id or same_person:
        out += (_R["SELF_APPROVAL"],)
    if approver.role is not Role.TOWNSHIP_PRINCIPAL or approver.org_code != req.seal.township_code:
        out += (_R["APPROVER_NOT_PRINCIPAL"],)
    return out


def rule_township_exists(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[Reason, ...]:
    """A merged or abolished township seals nothing more (issue 22, leak 7)."""
    if facts.township_closed == "MERGED":
        return (_R["TOWNSHIP_MERGED"],)
    if facts.township_closed == "RETIRED":
        return (_R["TOWNSHIP_RETIRED"],)
    return ()


RULES: tuple[Rule, ...] = (
    rule_seal_status,
    rule_township_exists,
    rule_seal_validity,
    rule_seal_kind,
    rule_matter,
    rule_township_power,
    rule_document_kind,
    rule_agreement,
    rule_operator,
    rule_approval,
)


def _grant(req: SigningRequest, facts: PolicyFacts, now: datetime) -> tuple[str | None, DecisionVersions]:
    """The positive grant, independent of the deny rules, and the versions it read."""
    power_v: tuple[str, str, int] | None = None
    agreements_v: tuple[tuple[str, int], ...] = ()
    grant: str | None = None
    matter = facts.matters.get(req.matter_code)
    if req.seal.kind is SealKindFact.TOWNSHIP_APPROVAL:
        power = facts.powers.get((req.seal.township_code, req.matter_code))
        if power is not None:
            power_v = (power.township_code, power.matter_code, power.version)
            if matter is not None and req.stage in power.stages and req.stage in matter.mode.stages:
                grant = f"power:{power.township_code}/{power.matter_code}"
    else:
        candidates = _candidate_agreements(req, facts)
        agreements_v = tuple((a.agreement_id, a.version) for a in candidates)
        for a in candidates:
            if not _agreement_problems(a, req, now) and matter is not None:
                grant = f"agreement:{a.agreement_id}"
                break
    versions = DecisionVersions(
        revision=facts.revision,
        catalog_version=facts.catalog_version,
        stage_table_version=facts.stage_table_version,
        power=power_v,
        agreements=agreements_v,
    )
    return grant, versions


def decide(
    request: SigningRequest, facts: PolicyFacts, now: datetime, *, rules: Sequence[Rule] = RULES
) -> Decision:
    """Evaluate every rule; allow only when none denies and a positive grant exists."""
    found: dict[str, Reason] = {}
    for rule in rules:
        for r in rule(request, facts, now):
            found.setdefault(r.code, r)
    grant, versions = _grant(request, facts, now)
    if grant is None and not found:
        found["NO_GRANT"] = _R["NO_GRANT"]
    reasons = tuple(sorted(found.values(), key=lambda r: _ORDER.get(r.code, len(_ORDER))))
    return Decision(
        allowed=not reasons and grant is not None,
        reasons=reasons,
        versions=versions,
        requires_approval=approval_required(request, facts),
        decided_at=now,
        grant=grant,
    )
