"""Catalog importers: the Shanxi township catalog, the Xingguo list, and a county's own CSV/JSON format.

Parsing is all or nothing: the first bad row raises a :class:`core.errors.BadInput` naming the row and the
field, and nothing is returned (storage then writes nothing). The formats are described in
docs/catalog-format.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

from core.errors import BadInput
from policies._model import HandlingMode, Matter, PowerType, mode_from_scope, normalise_code

SHANXI_HEADER = ("no", "matter", "power_type", "level", "township_scope")
XINGGUO_HEADER = (
    "no",
    "matter",
    "sub_item",
    "power_type",
    "entrusting_dept",
    "supervising_dept",
    "mode",
    "note",
)
NO2_HEADER = ("no", "township", "seal_name_pattern", "suffix")
COUNTY_REQUIRED = ("code", "name", "power_type", "mode")
COUNTY_FIELDS = (
    "code",
    "name",
    "sub_item",
    "power_type",
    "department",
    "supervising_department",
    "mode",
    "requires_admin_seal",
    "note",
    "level",
    "agency",
)
#: What separates departments in one supervising cell (``县卫健委、县民政局、县医保局、县乡村振兴局``).
DEPARTMENT_SEPARATORS = re.compile(r"[、，,；;/／\s]+")
JSON_FORMAT = "yizhang.catalog/1"


@dataclass(frozen=True, slots=True)
class ParsedCatalog:
    source: str  # "shanxi" | "xingguo" | "county"
    matters: tuple[Matter, ...]
    departments: tuple[tuple[str, str], ...]  # (code, name) of departments the import registers
    # (row, field, code, name) of each supervising department a row names that the import does not
    # register: storage refuses the file unless each is a registered department of the county
    # (CATALOG_DEPARTMENT_UNKNOWN)
    references: tuple[tuple[int, str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class No2Township:
    name: str
    number: int


def _row_error(
    row: int, field: str, message_en: str, message_zh: str, code: str = "CATALOG_ROW_INVALID"
) -> BadInput:
    return BadInput(
        code,
        f"row {row}, field {field}: {message_en}",
        f"第 {row} 行，字段 {field}：{message_zh}",
        details={"row": row, "field": field},
    )


def decode_catalog(data: bytes, encoding: str | None = None) -> str:
    """UTF-8 (with or without BOM) unless ``encoding`` says otherwise; GBK is detected and refused."""
    if encoding:
        try:
            return data.decode(encoding).removeprefix("\ufeff")
        except LookupError as exc:
            raise BadInput(
                "CATALOG_ENCODING",
                f"unknown encoding {encoding!r}",
                f"未知编码 {encoding!r}",
                details={"encoding": encoding},
            ) from exc
        except UnicodeDecodeError as exc:
            raise BadInput(
                "CATALOG_ENCODING",
                f"the file is not valid {encoding} (byte {exc.start})",
                f"文件不是有效的 {encoding} 编码（第 {exc.start} 字节）",
                details={"encoding": encoding, "byte": exc.start},
            ) from exc
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        looks_gbk = True
        try:
            data.decode("gb18030")
        except UnicodeDecodeError:
            looks_gbk = False
        hint_en = "it looks GBK-encoded; re-save it as UTF-8 or pass --encoding gbk" if looks_gbk else ""
        hint_zh = "疑似 GBK 编码；请另存为 UTF-8 或指定 --encoding gbk" if looks_gbk else ""
        raise BadInput(
            "CATALOG_ENCODING",
            f"the file is not UTF-8 (byte {exc.start}); {hint_en}".rstrip("; "),
            f"文件不是 UTF-8 编码（第 {exc.start} 字节）；{hint_zh}".rstrip("；"),
            details={"byte": exc.start, "looks_gbk": looks_gbk},
        ) from exc


def department_code(name: str, county_name: str | None) -> str:
    """A department's registry code from its name: the county's name prefix is written as 县.

    ``兴国县行政审批局`` and ``县行政审批局`` are the same department.
    """
    raw = normalise_code(name)
    if county_name and raw.startswith(county_name):
        raw = "县" + raw.removeprefix(county_name)
    return raw


def split_departments(text: str, county_name: str | None) -> tuple[tuple[str, str], ...]:
    """A department cell -> ((code, name), ...), in order, without repeats (issue 22, leak 16).

    ``兴国县卫健委、县民政局`` -> ``(("县卫健委", "兴国县卫健委"), ("县民政局", "县民政局"))``."""
    out: dict[str, str] = {}
    for piece in DEPARTMENT_SEPARATORS.split(normalise_code(text)):
        if piece:
            out.setdefault(department_code(piece, county_name), piece)
    return tuple(out.items())


def is_county_department(code: str) -> bool:
    """Whether a department code has this county's form (the county's name written as 县: ``县林业局``).

    ``新县民政局`` read in 兴国县 keeps its prefix: it is another county's department, never this one's."""
    return code.startswith("县") and len(code) > 1


def _rows(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise BadInput("CATALOG_ROW_INVALID", "the file is empty", "文件为空", details={"row": 1}) from None
    rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    return header, rows


def _cells(row_no: int, header: list[str], row: list[str]) -> dict[str, str]:
    if len(row) != len(header):
        raise _row_error(
            row_no,
            "*",
            f"expected {len(header)} fields, got {len(row)}",
            f"应有 {len(header)} 个字段，实有 {len(row)} 个",
        )
    return {h: c.strip() for h, c in zip(header, row, strict=True)}


def _power(row_no: int, field: str, text: str) -> tuple[PowerType, str | None]:
    try:
        return PowerType.parse(text)
    except ValueError:
        raise _row_error(row_no, field, f"unknown power type {text!r}", f"未知权力类型 {text!r}") from None


def _no(row_no: int, text: str, seen: dict[int, int]) -> int:
    try:
        no = int(text)
    except ValueError:
        raise _row_error(row_no, "no", f"not a number: {text!r}", f"序号不是数字：{text!r}") from None
    if no in seen:
        raise _row_error(
            row_no,
            "no",
            f"number {no} repeats row {seen[no]}",
            f"序号 {no} 与第 {seen[no]} 行重复",
            code="CATALOG_DUPLICATE_ROW",
        )
    seen[no] = row_no
    return no


#: 办理层级 (002 附件1): the Shanxi catalog lists township-level (乡级) matters only; 县级 and 村级 are
#: the other levels a county's own catalog may give.
LEVELS = frozenset({"乡级", "县级", "村级"})


def _level(row_no: int, text: str) -> str | None:
    if text and text not in LEVELS:
        raise _row_error(row_no, "level", f"unknown level {text!r}", f"未知办理层级 {text!r}")
    return text or None


def _check_duplicate(row_no: int, key: tuple[object, ...], seen: dict[tuple[object, ...], int]) -> None:
    # compared as NFKC: a full-width look-alike of a name already listed is the same matter (issue 22)
    key = tuple(normalise_code(k) if isinstance(k, str) else k for k in key)
    if key in seen:
        raise _row_error(
            row_no,
            "matter",
            f"the same matter is already on row {seen[key]}",
            f"与第 {seen[key]} 行事项重复",
            code="CATALOG_DUPLICATE_ROW",
        )
    seen[key] = row_no


def parse_shanxi(text: str, *, prefix: str = "SX") -> ParsedCatalog:
    header, rows = _rows(text)
    if tuple(header) != SHANXI_HEADER:
        raise _row_error(1, "header", f"expected {','.join(SHANXI_HEADER)}", "表头不符")
    matters: list[Matter] = []
    seen_no: dict[int, int] = {}
    seen: dict[tuple[object, ...], int] = {}
    for row_no, row in rows:
        c = _cells(row_no, header, row)
        no = _no(row_no, c["no"], seen_no)
        if not c["matter"]:
            raise _row_error(row_no, "matter", "empty matter name", "事项名称为空")
        power, sub = _power(row_no, "power_type", c["power_type"])
        level = _level(row_no, c["level"])
        try:
            mode = mode_from_scope(c["township_scope"])
        except ValueError:
            raise _row_error(
                row_no,
                "township_scope",
                f"unknown scope {c['township_scope']!r}",
                f"未知办理范围 {c['township_scope']!r}",
            ) from None
        _check_duplicate(row_no, (c["matter"], power, sub), seen)
        matters.append(
            Matter(
                code=f"{prefix}-{no:03d}",
                name=c["matter"],
                power_type=power,
                power_subkind=sub,
                mode=mode,
                level=level,
            )
        )
    return ParsedCatalog("shanxi", tuple(matters), ())


def parse_xingguo(text: str, *, county_name: str = "兴国县", prefix: str = "XG") -> ParsedCatalog:
    header, rows = _rows(text)
    if tuple(header) != XINGGUO_HEADER:
        raise _row_error(1, "header", f"expected {','.join(XINGGUO_HEADER)}", "表头不符")
    matters: list[Matter] = []
    departments: dict[str, str] = {}
    references: list[tuple[int, str, str, str]] = []
    seen_no: dict[int, int] = {}
    seen: dict[tuple[object, ...], int] = {}
    for row_no, row in rows:
        c = _cells(row_no, header, row)
        no = _no(row_no, c["no"], seen_no)
        if not c["matter"]:
            raise _row_error(row_no, "matter", "empty matter name", "事项名称为空")
        power, sub = _power(row_no, "power_type", c["power_type"])
        # 004 附件2 names each matter's 业务主管部门: the county's list registers those of this county; any
        # other name must already be registered (storage checks the references)
        supervisors = split_departments(c["supervising_dept"], county_name)
        for code, name in supervisors:
            if is_county_department(code):
                departments.setdefault(code, name)
            else:
                references.append((row_no, "supervising_dept", code, name))
        try:
            mode = HandlingMode(c["mode"])
        except ValueError:
            raise _row_error(
                row_no, "mode", f"unknown handling mode {c['mode']!r}", f"未知办理方式 {c['mode']!r}"
            ) from None
        if mode not in {HandlingMode.NO2_SEAL, HandlingMode.ASSIST_PROXY, HandlingMode.SYSTEM_EXTENSION}:
            raise _row_error(row_no, "mode", "not a Xingguo handling mode", "不是兴国县办理方式")
        if not c["entrusting_dept"]:
            raise _row_error(row_no, "entrusting_dept", "empty department", "委托部门为空")
        dept = department_code(c["entrusting_dept"], county_name)
        departments.setdefault(dept, c["entrusting_dept"])
        _check_duplicate(row_no, (c["matter"], c["sub_item"], power, sub), seen)
        matters.append(
            Matter(
                code=f"{prefix}-{no:02d}",
                name=c["matter"],
                sub_item=c["sub_item"] or None,
                power_type=power,
                power_subkind=sub,
                department_code=dept,
                supervising_department=c["supervising_dept"] or None,
                supervising_codes=tuple(code for code, _ in supervisors),
                mode=mode,
                note=c["note"] or None,
            )
        )
    return ParsedCatalog("xingguo", tuple(matters), tuple(sorted(departments.items())), tuple(references))


def _county_matter(row_no: int, c: dict[str, str], county_name: str | None) -> Matter:
    for f in COUNTY_REQUIRED:
        if f != "mode" and not c.get(f):
            raise _row_error(row_no, f, "required field is empty", "必填字段为空")
    power, sub = _power(row_no, "power_type", c["power_type"])
    mode_text = c.get("mode", "")
    try:
        mode = (
            HandlingMode(mode_text)
            if mode_text in HandlingMode._value2member_map_
            else mode_from_scope(mode_text)
        )
    except ValueError:
        raise _row_error(
            row_no, "mode", f"unknown handling mode {mode_text!r}", f"未知办理方式 {mode_text!r}"
        ) from None
    flag = c.get("requires_admin_seal", "").lower()
    if flag not in {"", "0", "1", "true", "false", "yes", "no", "是", "否"}:
        raise _row_error(
            row_no, "requires_admin_seal", f"not a yes/no value: {flag!r}", f"不是“是/否”：{flag!r}"
        )
    dept = c.get("department") or None
    if mode is HandlingMode.NO2_SEAL and not dept:
        raise _row_error(
            row_no, "department", "a 2号章 matter needs its entrusting department", "2号章事项须填写委托部门"
        )
    agency = c.get("agency") or None
    if agency is not None and mode is HandlingMode.NO2_SEAL:
        raise _row_error(
            row_no,
            "agency",
            "a 2号章 matter is handled in the department's name, not a dispatched agency's",
            "2号章事项以委托部门名义办理，不能由派出机构实施",
        )
    supervisors = split_departments(c.get("supervising_department", ""), county_name)
    return Matter(
        code=normalise_code(c["code"]),
        name=c["name"],
        sub_item=c.get("sub_item") or None,
        power_type=power,
        power_subkind=sub,
        department_code=department_code(dept, county_name) if dept else None,
        supervising_department=c.get("supervising_department") or None,
        supervising_codes=tuple(code for code, _ in supervisors),
        mode=mode,
        requires_admin_seal=flag in {"1", "true", "yes", "是"},
        note=c.get("note") or None,
        level=_level(row_no, c.get("level", "")),
        agency=agency,
    )


def parse_county(text: str, *, county_name: str | None = None) -> ParsedCatalog:
    """The documented county format: CSV with a header, or JSON ``{"format": "yizhang.catalog/1", ...}``."""
    records: list[tuple[int, dict[str, str]]] = []
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _row_error(exc.lineno, "json", exc.msg, "JSON 格式错误") from exc
        if doc.get("format") != JSON_FORMAT or not isinstance(doc.get("matters"), list):
            raise _row_error(
                0, "format", f"expected format {JSON_FORMAT} with a matters list", "格式标识或 matters 缺失"
            )
        for i, item in enumerate(doc["matters"], start=1):
            if not isinstance(item, dict):
                raise _row_error(i, "*", "expected an object", "应为对象")
            unknown = set(item) - set(COUNTY_FIELDS)
            if unknown:
                raise _row_error(i, sorted(unknown)[0], "unknown field", "未知字段")
            records.append((i, {k: ("" if v is None else str(v)).strip() for k, v in item.items()}))
    else:
        header, rows = _rows(text)
        missing = [f for f in COUNTY_REQUIRED if f not in header]
        extra = [h for h in header if h not in COUNTY_FIELDS]
        if missing or extra:
            raise _row_error(
                1, (missing or extra)[0], "header: missing or unknown column", "表头缺少或含未知列"
            )
        records = [(row_no, _cells(row_no, header, row)) for row_no, row in rows]
    matters: list[Matter] = []
    departments: dict[str, str] = {}
    references: list[tuple[int, str, str, str]] = []
    seen_code: dict[str, int] = {}
    seen_matter: dict[tuple[object, ...], int] = {}
    for row_no, c in records:
        m = _county_matter(row_no, c, county_name)
        # the code is compared NFKC-normalised: `YY-001` and `ＹＹ-001` are one code, listed twice
        if m.code in seen_code:
            raise _row_error(
                row_no,
                "code",
                f"code {m.code} repeats row {seen_code[m.code]}",
                f"编码 {m.code} 与第 {seen_code[m.code]} 行重复",
                code="CATALOG_DUPLICATE_ROW",
            )
        seen_code[m.code] = row_no
        _check_duplicate(row_no, (m.name, m.sub_item or "", m.power_type, m.power_subkind), seen_matter)
        if m.department_code:
            departments.setdefault(m.department_code, c.get("department", m.department_code))
        # a supervising department is never registered by its mention: a typo (县民正局) would route the
        # 审管联动 push to no one, so it must be registered, or be a department this file registers
        references.extend(
            (row_no, "supervising_department", code, name)
            for code, name in split_departments(c.get("supervising_department", ""), county_name)
        )
        matters.append(m)
    return ParsedCatalog("county", tuple(matters), tuple(sorted(departments.items())), tuple(references))


def detect_and_parse(text: str, *, county_name: str | None = None, fmt: str | None = None) -> ParsedCatalog:
    """Parse by ``fmt`` (shanxi | xingguo | county) or by the header line."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if fmt is None:
        if first.startswith("{"):
            fmt = "county"
        else:
            cols = tuple(h.strip() for h in first.split(","))
            fmt = {SHANXI_HEADER: "shanxi", XINGGUO_HEADER: "xingguo"}.get(cols, "county")
    if fmt == "shanxi":
        return parse_shanxi(text)
    if fmt == "xingguo":
        return parse_xingguo(text, county_name=county_name or "兴国县")
    if fmt == "county":
        return parse_county(text, county_name=county_name)
    raise BadInput("CATALOG_FORMAT_UNKNOWN", f"unknown catalog format {fmt!r}", f"未知目录格式 {fmt!r}")


def parse_no2_seals(text: str) -> tuple[No2Township, ...]:
    """xingguo_no2_seals.csv: township -> No. 2 seal number (11..35)."""
    header, rows = _rows(text)
    if tuple(header) != NO2_HEADER:
        raise _row_error(1, "header", f"expected {','.join(NO2_HEADER)}", "表头不符")
    out: list[No2Township] = []
    seen_no: dict[int, int] = {}
    numbers: dict[int, int] = {}
    names: dict[str, int] = {}
    for row_no, row in rows:
        c = _cells(row_no, header, row)
        _no(row_no, c["no"], seen_no)
        try:
            number = int(c["suffix"])
        except ValueError:
            raise _row_error(row_no, "suffix", "not a number", "编号不是数字") from None
        if not 1 <= number <= 99:
            raise _row_error(row_no, "suffix", "seal number out of range", "印章编号超出范围")
        if number in numbers or c["township"] in names:
            raise _row_error(
                row_no, "suffix", "township or number repeats", "乡镇或编号重复", code="CATALOG_DUPLICATE_ROW"
            )
        if not c["township"]:
            raise _row_error(row_no, "township", "empty township", "乡镇为空")
        numbers[number] = row_no
        names[c["township"]] = row_no
        out.append(No2Township(c["township"], number))
    return tuple(out)
