"""Importers: the two real catalogs, the county format, and every bad-input code with its row and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BadInput
from policies import HandlingMode, PowerType, Stage
from policies._catalog import (
    decode_catalog,
    department_code,
    detect_and_parse,
    parse_county,
    parse_no2_seals,
    parse_shanxi,
    parse_xingguo,
)
from policies._tables import StageTableError, default_stage_kinds, parse_stage_kinds


def _text(domain_dir: Path, name: str) -> str:
    return decode_catalog((domain_dir / name).read_bytes())


def test_shanxi_catalog_imports_with_derived_stages(domain_dir: Path) -> None:
    cat = parse_shanxi(_text(domain_dir, "shanxi_township_catalog.csv"))
    assert len(cat.matters) == 114
    by_code = {m.code: m for m in cat.matters}
    relief = by_code["SX-002"]
    assert relief.name == "临时救助" and relief.power_type is PowerType.BENEFIT
    assert relief.mode is HandlingMode.SCOPE_ACCEPT_REVIEW
    assert relief.mode.stages == {Stage.ACCEPT, Stage.REVIEW}
    assert by_code["SX-010"].name == "临时救助" and by_code["SX-010"].mode.stages == {Stage.ACCEPT}
    modes = {m.mode for m in cat.matters}
    assert HandlingMode.SCOPE_COMPLETE in modes and HandlingMode.SCOPE_RECHECK in modes
    complete = [m for m in cat.matters if m.mode is HandlingMode.SCOPE_COMPLETE]
    assert len(complete) == 30 and all(Stage.APPROVE in m.mode.stages for m in complete)


def test_xingguo_list_imports_with_modes_and_departments(domain_dir: Path) -> None:
    cat = parse_xingguo(_text(domain_dir, "xingguo_county_township_catalog.csv"))
    assert len(cat.matters) == 26
    counts: dict[HandlingMode, int] = {}
    for m in cat.matters:
        counts[m.mode] = counts.get(m.mode, 0) + 1
    # The source (004) says: 15 “2号章”委托办, 5 乡镇帮办代办, 6 业务系统延伸办.
    assert counts == {
        HandlingMode.NO2_SEAL: 15,
        HandlingMode.ASSIST_PROXY: 5,
        HandlingMode.SYSTEM_EXTENSION: 6,
    }
    by_code = {m.code: m for m in cat.matters}
    first = by_code["XG-14"]
    assert first.sub_item == "公共场所卫生许可（首次）" and first.department_code == "县行政审批局"
    assert first.supervising_department == "县卫健委"
    inspection = by_code["XG-25"]
    assert inspection.power_type is PowerType.OTHER and inspection.power_subkind == "年检"
    assert inspection.power_label == "其他行政权力－年检"
    assert by_code["XG-07"].department_code == "县残疾人联合会"
    assert ("县行政审批局", "县行政审批局") in cat.departments


def test_no2_seal_numbers(domain_dir: Path) -> None:
    towns = parse_no2_seals(_text(domain_dir, "xingguo_no2_seals.csv"))
    assert len(towns) == 25
    assert [t.number for t in towns] == list(range(11, 36))
    assert {t.name: t.number for t in towns}["梅窖镇"] == 13


def test_detect_by_header(domain_dir: Path) -> None:
    assert detect_and_parse(_text(domain_dir, "shanxi_township_catalog.csv")).source == "shanxi"
    assert detect_and_parse(_text(domain_dir, "xingguo_county_township_catalog.csv")).source == "xingguo"


def test_department_code_folds_the_county_name() -> None:
    assert department_code("兴国县行政审批局", "兴国县") == "县行政审批局"
    assert department_code("县林业局", "兴国县") == "县林业局"


def _err(fn: object, *args: object, **kw: object) -> BadInput:
    with pytest.raises(BadInput) as info:
        fn(*args, **kw)  # type: ignore[operator]
    return info.value


SHANXI_HEAD = "no,matter,power_type,level,township_scope\n"


def test_row_invalid_names_row_and_field() -> None:
    e = _err(parse_shanxi, SHANXI_HEAD + "1,甲,公共服务,乡级,乡级负责受理\n2,乙,行政魔法,乡级,\n")
    assert e.code == "CATALOG_ROW_INVALID" and e.details == {"row": 3, "field": "power_type"}
    e = _err(parse_shanxi, SHANXI_HEAD + "1,甲,公共服务,乡级,乡级负责盖章\n")
    assert e.code == "CATALOG_ROW_INVALID" and e.details["field"] == "township_scope"
    e = _err(parse_shanxi, SHANXI_HEAD + "1,甲,公共服务,乡级\n")
    assert e.code == "CATALOG_ROW_INVALID" and e.details["row"] == 2
    e = _err(parse_shanxi, SHANXI_HEAD + "x,甲,公共服务,乡级,\n")
    assert e.code == "CATALOG_ROW_INVALID" and e.details["field"] == "no"
    e = _err(parse_shanxi, "a,b\n1,2\n")
    assert e.code == "CATALOG_ROW_INVALID" and e.details["field"] == "header"


def test_duplicate_rows() -> None:
    e = _err(parse_shanxi, SHANXI_HEAD + "1,甲,公共服务,乡级,\n1,乙,公共服务,乡级,\n")
    assert e.code == "CATALOG_DUPLICATE_ROW" and e.details == {"row": 3, "field": "no"}
    e = _err(parse_shanxi, SHANXI_HEAD + "1,甲,公共服务,乡级,\n2,甲,公共服务,乡级,乡级负责受理\n")
    assert e.code == "CATALOG_DUPLICATE_ROW" and e.details == {"row": 3, "field": "matter"}
    e = _err(parse_county, "code,name,power_type,mode\nC1,甲,公共服务,\nC1,乙,公共服务,\n")
    assert e.code == "CATALOG_DUPLICATE_ROW" and e.details["field"] == "code"


def test_xingguo_mode_must_be_known() -> None:
    head = "no,matter,sub_item,power_type,entrusting_dept,supervising_dept,mode,note\n"
    e = _err(parse_xingguo, head + "1,甲,,行政许可,县林业局,县林业局,乡镇自办,\n")
    assert e.code == "CATALOG_ROW_INVALID" and e.details == {"row": 2, "field": "mode"}


def test_gbk_is_detected_and_refused_or_decoded(domain_dir: Path) -> None:
    utf8 = (domain_dir / "shanxi_township_catalog.csv").read_bytes()
    gbk = utf8.decode("utf-8").encode("gbk")
    e = _err(decode_catalog, gbk)
    assert e.code == "CATALOG_ENCODING" and e.details["looks_gbk"] is True
    assert "--encoding gbk" in e.message_en
    assert len(parse_shanxi(decode_catalog(gbk, "gbk")).matters) == 114
    assert _err(decode_catalog, utf8, "ascii").code == "CATALOG_ENCODING"
    assert _err(decode_catalog, utf8, "no-such-codec").code == "CATALOG_ENCODING"
    assert decode_catalog(b"\xef\xbb\xbf" + utf8) == utf8.decode("utf-8")


def test_county_csv_and_json() -> None:
    csv_text = (
        "code,name,sub_item,power_type,department,supervising_department,mode,requires_admin_seal,note\n"
        "C1,再生育审批,,行政许可,,县卫健委,,否,\n"
        "C2,林木采伐,,行政许可,兴国县林业局,县林业局,“2号章”委托办,,\n"
        "C3,上报事项,,其他行政权力,,,乡级负责初审,是,须用行政公章\n"
    )
    cat = parse_county(csv_text, county_name="兴国县")
    by = {m.code: m for m in cat.matters}
    assert by["C1"].mode is HandlingMode.SCOPE_COMPLETE
    assert by["C2"].department_code == "县林业局" and by["C2"].mode is HandlingMode.NO2_SEAL
    assert by["C3"].requires_admin_seal and by["C3"].mode.stages == {Stage.FIRST_REVIEW}
    json_text = (
        '{"format": "yizhang.catalog/1", "matters": ['
        '{"code": "C1", "name": "再生育审批", "power_type": "行政许可", "mode": ""}]}'
    )
    assert detect_and_parse(json_text).matters[0].code == "C1"
    e = _err(parse_county, '{"format": "yizhang.catalog/1", "matters": [{"code": "C1", "colour": "red"}]}')
    assert e.code == "CATALOG_ROW_INVALID" and e.details == {"row": 1, "field": "colour"}
    e = _err(parse_county, "code,name,power_type,mode\nC9,甲,公共服务,“2号章”委托办\n")
    assert e.code == "CATALOG_ROW_INVALID" and e.details["field"] == "department"


def test_stage_table_is_data() -> None:
    table = default_stage_kinds()
    assert {k.value for k in table[Stage.ACCEPT]} == {"受理通知书", "不予受理通知书", "补正材料告知书"}
    custom = parse_stage_kinds({"stages": {"决定": ["批复"], "ACCEPT": ["ACCEPTANCE_NOTICE"]}})
    assert set(custom) == {Stage.APPROVE, Stage.ACCEPT}
    with pytest.raises(StageTableError) as info:
        parse_stage_kinds({"stages": {"受理": ["盖章纸"]}})
    assert info.value.field == "stages.受理[0]"
