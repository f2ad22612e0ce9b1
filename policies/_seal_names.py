"""What a seal may be called: the naming patterns of the sources, checked before a seal is made (刻制).

Standard library only. A township approval seal is named for its township's government (000: “XX县XX乡
（镇）人民政府行政审批服务专用章”; 001 allows 融安's two variants); a No. 2 seal is the department's own
approval seal with the township's number (004: “兴国县XX局（委）行政审批专用章（11）”). Names are compared
NFKC-normalised, so full-width and half-width brackets are one name.
"""

from __future__ import annotations

from policies._model import SealKindFact, normalise_code

#: The township approval seal's name after ``<县名><乡镇名><人民政府|办事处>``: 000 (新县) names it
#: 行政审批服务专用章; 001 (融安) allows 行政审批（服务）专用章 or 政务服务专用章.
TOWNSHIP_SEAL_SUFFIXES = ("行政审批服务专用章", "行政审批（服务）专用章", "政务服务专用章")
#: A township's government (乡、镇) or a sub-district office (街道办事处) holds the seal.
GOVERNMENTS = ("人民政府", "办事处")


def township_seal_names(county_name: str, township_name: str) -> tuple[str, ...]:
    """Every name a township approval seal of this township may carry (000, 001)."""
    return tuple(
        f"{county_name}{township_name}{gov}{suffix}"
        for gov in GOVERNMENTS
        for suffix in TOWNSHIP_SEAL_SUFFIXES
    )


def no2_seal_name(county_name: str, department_code: str, number: int) -> str:
    """004's name of a department's No. 2 seal: ``兴国县行政审批局行政审批专用章（13）``.

    ``department_code`` is the registry code (the county's name written as 县: ``县行政审批局``)."""
    department = department_code.removeprefix("县")
    return f"{county_name}{department}行政审批专用章（{number}）"


def seal_name_allowed(
    kind: SealKindFact,
    name: str,
    *,
    county_name: str,
    township_name: str,
    department_code: str | None = None,
    number: int | None = None,
) -> tuple[bool, tuple[str, ...]]:
    """(allowed, the names that would be) for a seal of ``kind`` kept by the township ``township_name``."""
    if kind is SealKindFact.TOWNSHIP_APPROVAL:
        expected = township_seal_names(county_name, township_name)
    elif department_code is not None and number is not None:
        expected = (no2_seal_name(county_name, department_code, number),)
    else:
        return False, ()
    given = normalise_code(name)
    return any(given == normalise_code(e) for e in expected), expected
