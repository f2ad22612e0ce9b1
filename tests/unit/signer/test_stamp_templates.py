"""The seal's face, its drawing (looked at as pixels), placement rules, templates."""

from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path

import pytest

from core.errors import BadInput, NotFound
from signer._stamp import SealFace

OUT = Path(__file__).resolve().parents[3] / "test-output" / "signer"


@pytest.mark.parametrize(
    ("name", "number", "face"),
    [
        (
            "兴国县兴江乡人民政府行政审批服务专用章",
            None,
            SealFace("兴国县兴江乡人民政府", "行政审批服务专用章", ""),
        ),
        (
            "兴国县卫生健康委员会行政审批专用章（13）",
            None,
            SealFace("兴国县卫生健康委员会", "行政审批专用章", "（13）"),
        ),
        ("兴国县行政审批局行政审批专用章", 11, SealFace("兴国县行政审批局", "行政审批专用章", "（11）")),
        # 融安 (001 四（二）): the whole purpose under the star, the township government on the arc (issue 22)
        (
            "融安县泗顶镇人民政府行政审批（服务）专用章",
            None,
            SealFace("融安县泗顶镇人民政府", "行政审批（服务）专用章", ""),
        ),
        ("融安县大将镇人民政府政务服务专用章", None, SealFace("融安县大将镇人民政府", "政务服务专用章", "")),
        ("某某公章", None, SealFace("某某", "公章", "")),
        ("印章", None, SealFace("印章", "", "")),
    ],
)
def test_face_from_name(name: str, number: int | None, face: SealFace) -> None:
    assert SealFace.from_name(name, number) == face


def test_empty_name_refused() -> None:
    with pytest.raises(BadInput) as err:
        SealFace.from_name("  ")
    assert err.value.code == "STAMP_NAME_EMPTY"


def _stamp_pdf(name: str, number: int | None = None) -> bytes:
    from pyhanko.pdf_utils import generic, layout
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    from signer._stamp import SealStampStyle

    w = PdfFileWriter()
    w.insert_page(
        PageObject(contents=w.add_object(generic.StreamObject(stream_data=b" ")), media_box=(0, 0, 200, 200))
    )
    style = SealStampStyle(face=SealFace.from_name(name, number))
    style.create_stamp(w, layout.BoxConstraints(width=180, height=180), {}).apply(0, 10, 10)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def test_stamp_draws_red_ring_star_and_embedded_text(tmp_path: Path) -> None:
    from PIL import Image

    pdf = _stamp_pdf("兴国县卫生健康委员会行政审批专用章", 13)
    f = tmp_path / "stamp.pdf"
    f.write_bytes(pdf)
    fonts = subprocess.run(["pdffonts", str(f)], capture_output=True, text=True).stdout
    assert "CID TrueType" in fonts and "yes yes" in fonts  # embedded, subset
    text = subprocess.run(["pdftotext", str(f), "-"], capture_output=True, text=True).stdout
    assert "行政审批专用章" in text and "13" in text
    subprocess.run(["pdftoppm", "-r", "72", "-png", "-singlefile", str(f), str(tmp_path / "s")], check=True)
    img = Image.open(tmp_path / "s.png").convert("RGB")
    OUT.mkdir(parents=True, exist_ok=True)
    img.save(OUT / "stamp_no2.png")

    def red(x: int, y: int) -> bool:
        r, g, b = img.getpixel((x, y))
        return r > 150 and g < 90 and b < 90

    # the star's centre (slightly above the middle of the 180 pt box at 10,10 → pixel 100, ~96)
    assert red(100, 97)
    # the ring at the far left/right of the circle, on the horizontal through the centre
    assert any(red(x, 100) for x in range(10, 16)) and any(red(x, 100) for x in range(184, 190))
    # outside the circle: white
    assert img.getpixel((3, 3)) == (255, 255, 255)


def test_missing_glyph_refused() -> None:
    with pytest.raises(BadInput) as err:
        _stamp_pdf("𠀀𠀁人民政府专用章")  # CJK Extension B, not in WenQuanYi Zen Hei
    assert err.value.code == "STAMP_GLYPH_MISSING"


def test_placement_rules() -> None:
    from signer._pdfin import OpenedPdf
    from signer._seal import Placement, resolve_placement

    doc = OpenedPdf(2, boxes={0: (0, 0, 595, 842), 1: (0, 0, 595, 842)})
    page, box = resolve_placement(doc, Placement())
    assert page == 1 and box[2] == 595 - 72 and box[2] - box[0] == pytest.approx(box[3] - box[1])
    with pytest.raises(BadInput) as err:
        resolve_placement(
            doc, Placement(page=1, box=(100, 100, 200, 200), protected=((-1, (150, 150, 300, 160)),))
        )
    assert err.value.code == "STAMP_OVERLAPS_PROTECTED"
    # a protected area on another page does not matter
    assert resolve_placement(
        doc, Placement(page=0, box=(100, 100, 200, 200), protected=((1, (150, 150, 300, 160)),))
    )
    for bad, code in (
        (Placement(page=5), "STAMP_PAGE_INVALID"),
        (Placement(page=0, box=(500, 100, 700, 300)), "STAMP_BOX_INVALID"),
        (Placement(page=0, box=(200, 100, 100, 300)), "STAMP_BOX_INVALID"),
    ):
        with pytest.raises(BadInput) as err:
            resolve_placement(doc, bad)
        assert err.value.code == code


def test_templates_render_and_refuse_bad_data(tmp_path: Path) -> None:
    from signer import render_template, template_names
    from tests._fixtures.signer import PERMIT_DATA

    assert set(template_names()) >= {
        "acceptance_notice",
        "non_acceptance_notice",
        "supplement_notice",
        "refusal_decision",
        "public_place_hygiene_permit",
    }
    pdf = render_template("public_place_hygiene_permit", PERMIT_DATA)
    f = tmp_path / "p.pdf"
    f.write_bytes(pdf)
    assert subprocess.run(["qpdf", "--check", str(f)], capture_output=True).returncode == 0
    text = subprocess.run(["pdftotext", str(f), "-"], capture_output=True, text=True).stdout
    assert "公共场所卫生许可证" in text and "兴江审批〔2026〕1号" in text
    with pytest.raises(BadInput) as err:
        render_template("refusal_decision", {"issuer": "x"})
    assert err.value.code == "TEMPLATE_DATA_INVALID" and "reasons" in err.value.details["missing"]
    with pytest.raises(NotFound) as nf:
        render_template("no_such_template", {})
    assert nf.value.code == "TEMPLATE_UNKNOWN"


def test_every_template_renders_to_png() -> None:
    from signer import render_template, template_names
    from tests._fixtures.signer import FELLING_PERMIT_DATA, PESTICIDE_PERMIT_DATA

    data = {
        "issuer": "兴国县兴江乡人民政府",
        "applicant": "刘某某",
        "matter_name": "临时救助",
        "submitted_date": "2026年3月1日",
        "date": "2026年3月5日",
        "document_number": "兴江审批〔2026〕17号",
        "reason": "申请事项不属于本机关职权范围",
        "items": ["身份证复印件", "户口簿复印件"],
        "reasons": ["家庭人均收入高于当地临时救助标准"],
        "basis": "《社会救助暂行办法》第四十七条",
        "unit_name": "好客来宾馆",
        "legal_representative": "刘某某",
        "address": "兴江大道88号",
        "licensed_items": "住宿",
        "valid_from": "2026年3月5日",
        "valid_until": "2030年3月4日",
        **{k: v for k, v in FELLING_PERMIT_DATA.items() if k not in ("issuer", "date", "valid_until")},
        **{k: v for k, v in PESTICIDE_PERMIT_DATA.items() if k not in ("issuer", "date", "valid_until")},
        "review_body": "兴国县人民政府",
    }
    out = OUT / "templates"
    out.mkdir(parents=True, exist_ok=True)
    for name in template_names():
        pdf = render_template(name, data)
        (out / f"{name}.pdf").write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", "50", "-png", "-singlefile", str(out / f"{name}.pdf"), str(out / name)],
            check=True,
        )
        assert (out / f"{name}.png").stat().st_size > 5000


@pytest.mark.parametrize(
    ("name", "kind", "says"),
    [
        (
            "licence_refusal_decision",
            "REFUSAL_DECISION",
            ("不予行政许可决定书", "第三十八条第二款", "决定不予行政许可", "向兴国县人民政府申请行政复议"),
        ),
        (
            "forest_felling_permit",
            "PERMIT",
            ("林木采伐许可证", "采伐蓄积（株数）", "18.6立方米", "第五十六条"),
        ),
        ("pesticide_business_permit", "PERMIT", ("农药经营许可证", "仓储场所", "农药（不含限制使用农药）")),
    ],
)
def test_issue22_templates(name: str, kind: str, says: tuple[str, ...], tmp_path: Path) -> None:
    """Issue 22: 不予行政许可决定书 (a licence refusal states its reasons and the applicant's remedies,
    行政许可法 第三十八条; 003: 不予批准的决定……说明理由) and two more permits of the catalogs
    (XG-12, XG-22)."""
    from signer import render_template
    from signer._templates import check_template_request, load_template
    from tests._fixtures import signer as fx

    data = {
        "licence_refusal_decision": fx.LICENCE_REFUSAL_DATA,
        "forest_felling_permit": fx.FELLING_PERMIT_DATA,
        "pesticide_business_permit": fx.PESTICIDE_PERMIT_DATA,
    }[name]
    assert load_template(name).document_kinds == (kind,)
    check_template_request(name, kind)
    with pytest.raises(BadInput) as err:  # never an acceptance notice (R2)
        check_template_request(name, "ACCEPTANCE_NOTICE")
    assert err.value.code == "TEMPLATE_KIND_MISMATCH"
    f = tmp_path / f"{name}.pdf"
    f.write_bytes(render_template(name, data))
    assert subprocess.run(["qpdf", "--check", str(f)], capture_output=True).returncode == 0
    text = "".join(subprocess.run(["pdftotext", str(f), "-"], capture_output=True, text=True).stdout.split())
    for words in (*says, "兴江审批〔2026〕1号", "兴国县兴江乡人民政府"):
        assert words in text, words
    with pytest.raises(BadInput) as err:
        render_template(name, {k: v for k, v in data.items() if k != "issuer"} | {"issuer": "x", "date": ""})
    assert err.value.code == "TEMPLATE_DATA_INVALID"


def test_glyph_check_is_safe_from_many_threads_at_once() -> None:
    """Regression (found by the load test): the first glyph checks of several request threads at once
    shared one lazily-decompiled TTFont and failed with fontTools' "illegal use of getGlyphOrder()"."""
    import threading

    from signer import _fonts

    for _round in range(3):
        _fonts._code_points.cache_clear()
        barrier = threading.Barrier(12)
        errors: list[BaseException] = []
        answers: list[str] = []

        def check() -> None:
            barrier.wait()
            try:
                answers.append(_fonts.missing_glyphs("兴国县兴江乡受理通知书\U0001f600"))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=check) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:1]
        assert answers == ["\U0001f600"] * 12
