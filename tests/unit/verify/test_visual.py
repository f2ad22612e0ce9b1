"""The visible-change check: a template document against incremental updates built with pyHanko.

Each update is what an attacker (or an honest LTV step) appends after the seal; the check must name the
page, the mode and the region of anything a person would see, and nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from io import BytesIO
from typing import Any

import pypdfium2 as pdfium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from signer._templates import render_template, template_names
from tests._fixtures.signer import (
    ACCEPTANCE_DATA,
    FELLING_PERMIT_DATA,
    LICENCE_REFUSAL_DATA,
    PERMIT_DATA,
    PESTICIDE_PERMIT_DATA,
)
from verifier._visual import (
    PDFIUM_LOCK,
    DiffKind,
    Rect,
    RenderMode,
    VisibleDiff,
    VisualBudget,
    document_numbers_in,
    normalise_document_number,
    page_text,
    page_texts,
    pdfium_document,
    same_document_number,
    visible_changes,
)

NUMBER = "兴江审批〔2026〕3号"
ISSUER = "兴国县兴江乡人民政府"
TEMPLATE_DATA: dict[str, dict[str, Any]] = {
    "acceptance_notice": {**ACCEPTANCE_DATA, "issuer": ISSUER, "date": "2026年11月22日"},
    "non_acceptance_notice": {
        **ACCEPTANCE_DATA,
        "issuer": ISSUER,
        "date": "2026年11月22日",
        "reason": "不属于本机关职权范围",
    },
    "public_place_hygiene_permit": dict(PERMIT_DATA),
    "refusal_decision": {
        **ACCEPTANCE_DATA,
        "issuer": ISSUER,
        "date": "2026年11月22日",
        "reasons": "申请人不符合救助条件",
        "basis": "《社会救助暂行办法》第四十七条",
    },
    "supplement_notice": {
        **ACCEPTANCE_DATA,
        "issuer": ISSUER,
        "date": "2026年11月22日",
        "items": ["身份证复印件", "户口簿"],
    },
    "licence_refusal_decision": dict(LICENCE_REFUSAL_DATA),
    "forest_felling_permit": dict(FELLING_PERMIT_DATA),
    "pesticide_business_permit": dict(PESTICIDE_PERMIT_DATA),
}
# Where the document number sits on the acceptance notice (centred, under the title), PDF points; a test
# checks this against PDFium's text layer.
NUMBER_BOX = (232.0, 678.0, 366.0, 693.0)


@pytest.fixture(scope="module")
def sealed() -> bytes:
    """An acceptance notice with an interactive form and a visible widget, as a sealed document has."""
    doc = render_template(
        "acceptance_notice", {**TEMPLATE_DATA["acceptance_notice"], "document_number": NUMBER}
    )
    return _update(
        doc, lambda w: _add_widget(w, "Seal1", (380, 120, 500, 240), b"1 0 0 RG 4 w 60 60 50 0 360 re S")
    )


# --- building incremental updates -----------------------------------------------------------------


def _update(pdf: bytes, change: Any) -> bytes:
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    change(w)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def _arr(*values: float) -> generic.ArrayObject:
    return generic.ArrayObject([generic.FloatObject(v) for v in values])


def _appearance(w: IncrementalPdfFileWriter, rect: tuple[float, float, float, float], ops: bytes) -> Any:
    width, height = rect[2] - rect[0], rect[3] - rect[1]
    helv = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        }
    )
    stream = generic.StreamObject(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Form"),
                pdf_name("/BBox"): _arr(0, 0, width, height),
                pdf_name("/Resources"): generic.DictionaryObject(
                    {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/Helv"): helv})}
                ),
            }
        ),
        stream_data=ops,
    )
    return w.add_object(stream)


def _attach(w: IncrementalPdfFileWriter, annot: generic.DictionaryObject) -> Any:
    page_ref = w.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    annot[pdf_name("/P")] = page_ref
    ref = w.add_object(annot)
    if "/Annots" in page:
        page["/Annots"].append(ref)
    else:
        page[pdf_name("/Annots")] = generic.ArrayObject([ref])
    w.update_container(page)
    return ref


def _add_annotation(
    w: IncrementalPdfFileWriter, rect: tuple[float, float, float, float], ops: bytes, flags: int = 4
) -> None:
    _attach(
        w,
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/Square"),
                pdf_name("/Rect"): _arr(*rect),
                pdf_name("/F"): generic.NumberObject(flags),
                pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): _appearance(w, rect, ops)}),
            }
        ),
    )


def _add_widget(
    w: IncrementalPdfFileWriter, name: str, rect: tuple[float, float, float, float], ops: bytes
) -> None:
    ref = _attach(
        w,
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/Widget"),
                pdf_name("/FT"): pdf_name("/Sig"),
                pdf_name("/T"): generic.TextStringObject(name),
                pdf_name("/Rect"): _arr(*rect),
                pdf_name("/F"): generic.NumberObject(4),
                pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): _appearance(w, rect, ops)}),
            }
        ),
    )
    form = w.root.get("/AcroForm")
    if form is None:
        w.root[pdf_name("/AcroForm")] = generic.DictionaryObject(
            {pdf_name("/Fields"): generic.ArrayObject([ref]), pdf_name("/SigFlags"): generic.NumberObject(3)}
        )
        w.update_root()
    else:
        form = form.get_object()
        form["/Fields"].append(ref)
        if isinstance(w.root.raw_get("/AcroForm"), generic.IndirectObject):
            w.update_container(form)
        else:
            w.update_root()


# White box over the document number, a new one drawn in its place.
OVERLAY = b"1 1 1 rg 0 0 160 30 re f BT 0 0 0 rg /Helv 13 Tf 20 9 Td (2026-4) Tj ET"


def _dss(w: IncrementalPdfFileWriter) -> None:
    certs = generic.ArrayObject([w.add_object(generic.StreamObject(stream_data=b"\x30\x82" + bytes(300)))])
    w.root[pdf_name("/DSS")] = generic.DictionaryObject(
        {pdf_name("/Certs"): certs, pdf_name("/CRLs"): generic.ArrayObject()}
    )
    w.update_root()


def _print_only_layer(w: IncrementalPdfFileWriter) -> None:
    """An OCG off on screen and on when printed, and page content in it (the forged 2036)."""
    ocg = w.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/OCG"),
                pdf_name("/Name"): generic.TextStringObject("print"),
                pdf_name("/Usage"): generic.DictionaryObject(
                    {
                        pdf_name("/Print"): generic.DictionaryObject(
                            {pdf_name("/PrintState"): pdf_name("/ON")}
                        ),
                        pdf_name("/View"): generic.DictionaryObject(
                            {pdf_name("/ViewState"): pdf_name("/OFF")}
                        ),
                    }
                ),
            }
        )
    )
    w.root[pdf_name("/OCProperties")] = generic.DictionaryObject(
        {
            pdf_name("/OCGs"): generic.ArrayObject([ocg]),
            pdf_name("/D"): generic.DictionaryObject(
                {
                    pdf_name("/OFF"): generic.ArrayObject([ocg]),
                    pdf_name("/AS"): generic.ArrayObject(
                        [
                            generic.DictionaryObject(
                                {
                                    pdf_name("/Event"): pdf_name("/Print"),
                                    pdf_name("/Category"): generic.ArrayObject([pdf_name("/Print")]),
                                    pdf_name("/OCGs"): generic.ArrayObject([ocg]),
                                }
                            ),
                            generic.DictionaryObject(
                                {
                                    pdf_name("/Event"): pdf_name("/View"),
                                    pdf_name("/Category"): generic.ArrayObject([pdf_name("/View")]),
                                    pdf_name("/OCGs"): generic.ArrayObject([ocg]),
                                }
                            ),
                        ]
                    ),
                }
            ),
        }
    )
    w.update_root()
    content = w.add_object(
        generic.StreamObject(
            stream_data=b"/OC /oc1 BDC q 1 1 1 rg 220 660 160 30 re f"
            b" BT 0 0 0 rg /Helv 13 Tf 240 669 Td (2036) Tj ET Q EMC"
        )
    )
    helv = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        }
    )
    resources = generic.DictionaryObject(
        {
            pdf_name("/Properties"): generic.DictionaryObject({pdf_name("/oc1"): ocg}),
            pdf_name("/Font"): generic.DictionaryObject({pdf_name("/Helv"): helv}),
        }
    )
    w.add_stream_to_page(0, content, resources=resources)


def _overlaps(region: Rect | None, box: tuple[float, float, float, float]) -> bool:
    assert region is not None
    return region.x0 < box[2] and box[0] < region.x1 and region.y0 < box[3] and box[1] < region.y1


def _kinds(diffs: list[VisibleDiff]) -> list[tuple[DiffKind, int | None, RenderMode | None]]:
    return [(d.kind, d.page, d.mode) for d in diffs]


# --- visible_changes ------------------------------------------------------------------------------


def test_unchanged_document_has_no_difference(sealed: bytes) -> None:
    assert visible_changes(sealed, sealed) == []


def test_overlay_annotation_is_a_visible_change(sealed: bytes) -> None:
    forged = _update(sealed, lambda w: _add_annotation(w, NUMBER_BOX, OVERLAY))
    diffs = visible_changes(sealed, forged)
    assert _kinds(diffs) == [(DiffKind.PIXELS, 1, RenderMode.VIEW), (DiffKind.PIXELS, 1, RenderMode.PRINT)]
    for d in diffs:
        assert _overlaps(d.region, NUMBER_BOX)
        assert d.region is not None and NUMBER_BOX[0] - 5 <= d.region.x0 and d.region.x1 <= NUMBER_BOX[2] + 5
        assert d.changed_pixels > 100
        assert "page 1" in str(d)


def test_visible_widget_after_seal_is_a_visible_change(sealed: bytes) -> None:
    """Issue 18, attack 1: a document timestamp's widget whose appearance is the forgery."""
    forged = _update(sealed, lambda w: _add_widget(w, "Timestamp1", NUMBER_BOX, OVERLAY))
    diffs = visible_changes(sealed, forged)
    assert _kinds(diffs) == [(DiffKind.PIXELS, 1, RenderMode.VIEW), (DiffKind.PIXELS, 1, RenderMode.PRINT)]
    assert all(_overlaps(d.region, NUMBER_BOX) for d in diffs)


def _char_boxes(pdf: bytes, chars: str) -> list[tuple[float, float, float, float]]:
    """PDFium's boxes (left, bottom, right, top) of the first occurrence of ``chars`` on page 1."""
    doc = pdfium.PdfDocument(pdf)
    try:
        text = doc[0].get_textpage()
        start = text.get_text_range().index(chars)
        return [text.get_charbox(start + i) for i in range(len(chars))]
    finally:
        doc.close()


def test_number_box_is_where_the_number_is(sealed: bytes) -> None:
    boxes = _char_boxes(sealed, NUMBER)
    inside = Rect.of(*NUMBER_BOX)
    for x0, y0, x1, y1 in boxes:
        assert inside.x0 <= x0 and x1 <= inside.x1 and inside.y0 <= y0 and y1 <= inside.y1


def test_one_changed_character_is_seen(sealed: bytes) -> None:
    """The smallest forgery: the digit 3 of 〔2026〕3号 whited out and an 8 drawn in its place."""
    x0, y0, x1, y1 = _char_boxes(sealed, NUMBER)[-2]
    box = (x0, y0 - 1, x1, y1)
    ops = b"1 1 1 rg 0 0 %.2f %.2f re f BT 0 0 0 rg /Helv 13 Tf 0 2 Td (8) Tj ET" % (x1 - x0, y1 - y0 + 1)
    forged = _update(sealed, lambda w: _add_annotation(w, box, ops))
    diffs = visible_changes(sealed, forged)
    assert [d.kind for d in diffs] == [DiffKind.PIXELS, DiffKind.PIXELS]
    for d in diffs:
        assert d.region is not None
        assert x0 - 3 <= d.region.x0 and d.region.x1 <= x1 + 3  # that one character, not its neighbours


def test_ltv_only_update_has_no_difference(sealed: bytes) -> None:
    ltv = _update(sealed, _dss)
    assert len(ltv) > len(sealed)
    assert visible_changes(sealed, ltv) == []


def test_hidden_annotation_is_no_difference(sealed: bytes) -> None:
    hidden = _update(sealed, lambda w: _add_annotation(w, NUMBER_BOX, OVERLAY, flags=2))
    assert visible_changes(sealed, hidden) == []


def test_print_only_layer_differs_when_printed(sealed: bytes) -> None:
    forged = _update(sealed, _print_only_layer)
    diffs = visible_changes(sealed, forged)
    assert _kinds(diffs) == [(DiffKind.PIXELS, 1, RenderMode.PRINT)]
    assert _overlaps(diffs[0].region, NUMBER_BOX)


def test_print_only_annotation_differs_when_printed(sealed: bytes) -> None:
    """/F Print|NoView: nothing on screen, the forgery on paper."""
    forged = _update(sealed, lambda w: _add_annotation(w, NUMBER_BOX, OVERLAY, flags=4 | 32))
    assert _kinds(visible_changes(sealed, forged)) == [(DiffKind.PIXELS, 1, RenderMode.PRINT)]


def test_change_inside_an_allowed_rectangle_is_no_difference(sealed: bytes) -> None:
    """A trusted later signature (a county attestation) shows its own widget where it was allowed."""
    attest = (60.0, 120.0, 200.0, 200.0)
    attested = _update(sealed, lambda w: _add_widget(w, "County1", attest, b"0 0 1 RG 3 w 10 10 120 60 re S"))
    assert visible_changes(sealed, attested, allowed={0: [Rect.of(*attest)]}) == []
    assert visible_changes(sealed, attested, allowed={0: [attest]}) == []  # a /Rect tuple does too
    # The same widget not allowed, or allowed on another page, or only partly: a difference.
    assert _kinds(visible_changes(sealed, attested)) == [
        (DiffKind.PIXELS, 1, RenderMode.VIEW),
        (DiffKind.PIXELS, 1, RenderMode.PRINT),
    ]
    assert visible_changes(sealed, attested, allowed={1: [attest]}) != []
    partly = visible_changes(sealed, attested, allowed={0: [(60.0, 120.0, 200.0, 160.0)]})
    assert partly and all(d.region is not None and d.region.y1 > 160 for d in partly)


def test_allowed_rectangle_does_not_hide_a_change_elsewhere(sealed: bytes) -> None:
    attest = (60.0, 120.0, 200.0, 200.0)

    def both(w: IncrementalPdfFileWriter) -> None:
        _add_widget(w, "County1", attest, b"0 0 1 RG 3 w 10 10 120 60 re S")
        _add_annotation(w, NUMBER_BOX, OVERLAY)

    diffs = visible_changes(sealed, _update(sealed, both), allowed={0: [attest]})
    assert diffs and all(_overlaps(d.region, NUMBER_BOX) and not _overlaps(d.region, attest) for d in diffs)


def test_added_page_and_changed_page_size(sealed: bytes) -> None:
    def add_page(w: IncrementalPdfFileWriter) -> None:
        from pyhanko.pdf_utils.writer import PageObject

        w.insert_page(
            PageObject(
                contents=w.add_object(generic.StreamObject(stream_data=b"")), media_box=(0, 0, 595, 842)
            )
        )

    assert [d.kind for d in visible_changes(sealed, _update(sealed, add_page))] == [DiffKind.PAGE_COUNT]

    def crop(w: IncrementalPdfFileWriter) -> None:
        page = w.root["/Pages"]["/Kids"][0].get_object()
        page[pdf_name("/CropBox")] = _arr(0, 300, 595.28, 841.89)  # cut off the lower half, seal included
        w.update_container(page)

    assert _kinds(visible_changes(sealed, _update(sealed, crop))) == [(DiffKind.PAGE_GEOMETRY, 1, None)]


def test_removed_form_is_a_difference(sealed: bytes) -> None:
    """Without /AcroForm PDFium draws no widget: comparing pixels alone would miss a widget change."""

    def drop(w: IncrementalPdfFileWriter) -> None:
        del w.root["/AcroForm"]
        w.update_root()

    assert DiffKind.FORMS in [d.kind for d in visible_changes(sealed, _update(sealed, drop))]


def test_pages_limits_the_pixel_comparison(sealed: bytes) -> None:
    forged = _update(sealed, lambda w: _add_annotation(w, NUMBER_BOX, OVERLAY))
    assert visible_changes(sealed, forged, pages={1, 7}) == []  # page index 1 does not exist; 0 not asked
    assert len(visible_changes(sealed, forged, pages={0})) == 2


@pytest.mark.parametrize(
    ("budget", "detail"),
    [
        (VisualBudget(max_page_pixels=100_000), "px exceeds"),
        (VisualBudget(max_total_pixels=1_000_000), "in all"),
        (VisualBudget(time_s=0.0), "time budget"),
        (VisualBudget(max_pages=0), "pages to compare"),
    ],
)
def test_budget_ends_in_an_answer(sealed: bytes, budget: VisualBudget, detail: str) -> None:
    diffs = visible_changes(sealed, sealed, budget=budget)
    assert [d.kind for d in diffs] == [DiffKind.BUDGET]
    assert detail in diffs[0].detail


def test_unreadable_revision(sealed: bytes) -> None:
    diffs = visible_changes(b"%PDF-1.7\nnot a pdf", sealed)
    assert [d.kind for d in diffs] == [DiffKind.UNRENDERABLE]


# --- the text layer -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", template_names())
def test_page_text_finds_the_number_on_every_template(name: str) -> None:
    assert name in TEMPLATE_DATA, f"template {name} has no test data here"
    pdf = render_template(name, {**TEMPLATE_DATA[name], "document_number": NUMBER})
    text = page_text(pdf, 0)
    assert ISSUER in text.replace("\r\n", "")
    (found,) = document_numbers_in(text)  # the prefix runs back over the title: compare by suffix
    assert found.endswith(NUMBER)
    assert same_document_number(found, NUMBER)
    assert not same_document_number(found, "兴江审批〔2026〕2号")
    assert not same_document_number(found, "金兰审批〔2026〕3号")


def test_page_text_bad_input() -> None:
    with pytest.raises(ValueError, match="cannot open"):
        page_text(b"%PDF-1.7 junk", 0)
    pdf = render_template("acceptance_notice", TEMPLATE_DATA["acceptance_notice"])
    with pytest.raises(ValueError, match="no page index 3"):
        page_text(pdf, 3)


def test_one_pdfium_document_serves_every_reader_and_is_closed() -> None:
    # issue 24: the sealer opens an upload once and reads it in one pdfium_document block
    pdf = render_template("acceptance_notice", TEMPLATE_DATA["acceptance_notice"])
    with pdfium_document(pdf) as doc:
        assert PDFIUM_LOCK.locked()  # held for the whole block (page_texts(doc) does not take it)
        texts = page_texts(doc)
        assert page_texts(doc, max_pages=0) == []
    assert not PDFIUM_LOCK.locked()
    assert texts == page_texts(pdf) == [page_text(pdf, 0)]
    assert NUMBER not in texts[0] and ISSUER in texts[0].replace("\r\n", "")
    with pytest.raises(ZeroDivisionError), pdfium_document(pdf) as doc:
        1 / 0  # an error inside the block: the document is closed and the lock released
    assert not PDFIUM_LOCK.locked()
    assert doc.raw is None  # closed
    with pytest.raises(ValueError, match="PDFium cannot open the file"), pdfium_document(b"%PDF-1.7 junk"):
        pass
    assert not PDFIUM_LOCK.locked()


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("金兰山审批〔2026〕3号", ["金兰山审批〔2026〕3号"]),
        ("金兰山审批【2026】3号", ["金兰山审批〔2026〕3号"]),
        ("金兰山审批[2026]3号", ["金兰山审批〔2026〕3号"]),
        ("金兰山审批［２０２６］０３号", ["金兰山审批〔2026〕3号"]),  # full-width brackets and digits
        ("金兰山审批﹝2026﹞3 号", ["金兰山审批〔2026〕3号"]),
        ("金兰山审\r\n批〔2026〕\r\n12号", ["金兰山审批〔2026〕12号"]),  # broken across lines
        (
            "依据兴府发〔2025〕7号和兴江审批〔2026〕1号文件",
            ["依据兴府发〔2025〕7号", "和兴江审批〔2026〕1号"],
        ),
        ("第（五）项；2026年3月1日；第三十二条", []),
    ],
)
def test_document_numbers_in(text: str, numbers: list[str]) -> None:
    assert document_numbers_in(text) == numbers


# The finder as one regular expression (the prefix in front), as it was before 2026-12-06: slow (the prefix
# retried at every position), and the reference for what the walk back from each match must find.
_ONE_EXPRESSION = re.compile(
    r"((?:[\u3400-\u4dbf\u4e00-\u9fff]\s*){0,24})"
    r"[〔【\[(〖]\s*((?:19|20)\d{2})\s*[〕】\])〗]\s*(\d{1,6})\s*号"
)


def _by_one_expression(text: str) -> list[str]:
    flat = unicodedata.normalize("NFKC", text)
    space = re.compile(r"\s+")
    return [
        f"{space.sub('', m.group(1))}〔{m.group(2)}〕{int(m.group(3))}号"
        for m in _ONE_EXPRESSION.finditer(flat)
    ]


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "兴",
                "江",
                "审批",
                "号",
                "〔",
                "〕",
                "【",
                "】",
                "[",
                "]",
                "(",
                ")",
                "﹝",
                "﹞",
                "［",
                "］",
                "〖",
                "〗",
            ]
            + [
                "2026",
                "2025",
                "1999",
                "2100",
                "3",
                "12",
                "０３",
                "7",
                " ",
                "\n",
                "\u3000",
                "x",
                "、",
                "第",
                "㐀",
            ]
        ),
        max_size=40,
    ).map("".join)
)
def test_document_numbers_in_finds_what_the_one_expression_found(text: str) -> None:
    assert document_numbers_in(text) == _by_one_expression(text)


def test_a_prefix_is_at_most_24_characters_and_starts_after_the_previous_number() -> None:
    long = "甲" * 30 + "〔2026〕1号" + "乙" * 3 + "〔2026〕2号"
    assert (
        document_numbers_in(long)
        == _by_one_expression(long)
        == ["甲" * 24 + "〔2026〕1号", "乙乙乙〔2026〕2号"]
    )
    glued = "兴江审批〔2026〕1号〔2026〕2号"
    assert document_numbers_in(glued) == _by_one_expression(glued) == ["兴江审批〔2026〕1号", "〔2026〕2号"]


def test_same_document_number() -> None:
    assert same_document_number("根据兴江审批〔2026〕1号", "兴江审批〔2026〕1号")
    assert same_document_number("兴江审批〔2026〕1号", "兴江审批【２０２６】01号")
    assert not same_document_number("兴江审批〔2026〕1号", "兴江审批〔2025〕1号")
    assert not same_document_number("兴江审批〔2026〕11号", "兴江审批〔2026〕1号")
    assert not same_document_number("金兰审批〔2026〕1号", "兴江审批〔2026〕1号")
    assert not same_document_number("兴江审批〔2026〕1号", "no number at all")
    assert normalise_document_number("兴江审批 〔2026〕 1 号") == "兴江审批〔2026〕1号"
    assert normalise_document_number("〔2026〕1号 and 〔2026〕2号") is None


def _text_field(w: IncrementalPdfFileWriter, rect: tuple[float, float, float, float]) -> None:
    helv = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        }
    )
    ref = _attach(
        w,
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/Widget"),
                pdf_name("/FT"): pdf_name("/Tx"),
                pdf_name("/T"): generic.TextStringObject("valid_until"),
                pdf_name("/V"): generic.TextStringObject("2030"),
                pdf_name("/DA"): generic.TextStringObject("/Helv 12 Tf 0 g"),
                pdf_name("/Rect"): _arr(*rect),
                pdf_name("/F"): generic.NumberObject(4),
                pdf_name("/AP"): generic.DictionaryObject(
                    {
                        pdf_name("/N"): _appearance(
                            w, rect, b"/Tx BMC BT /Helv 12 Tf 0 g 2 10 Td (2030) Tj ET EMC"
                        )
                    }
                ),
            }
        ),
    )
    w.root[pdf_name("/AcroForm")] = generic.DictionaryObject(
        {
            pdf_name("/Fields"): generic.ArrayObject([ref]),
            pdf_name("/DR"): generic.DictionaryObject(
                {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/Helv"): helv})}
            ),
        }
    )
    w.update_root()


def test_need_appearances_after_seal_is_a_visible_change() -> None:
    """A field's value changed and /NeedAppearances set: the viewer redraws the field from the new value."""
    field = (100.0, 400.0, 300.0, 430.0)
    doc = render_template(
        "acceptance_notice", {**TEMPLATE_DATA["acceptance_notice"], "document_number": NUMBER}
    )
    sealed = _update(doc, lambda w: _text_field(w, field))

    def refill(w: IncrementalPdfFileWriter) -> None:
        widget = w.root["/AcroForm"]["/Fields"][0].get_object()
        widget[pdf_name("/V")] = generic.TextStringObject("2036")
        w.update_container(widget)
        w.root["/AcroForm"][pdf_name("/NeedAppearances")] = generic.BooleanObject(True)
        w.update_root()

    diffs = visible_changes(sealed, _update(sealed, refill))
    assert _kinds(diffs) == [(DiffKind.PIXELS, 1, RenderMode.VIEW), (DiffKind.PIXELS, 1, RenderMode.PRINT)]
    assert all(_overlaps(d.region, field) for d in diffs)


# --- issue 18's overlays on a document signed with pyHanko (tests/unit/verify/_factory.py) ---------------


@pytest.fixture(scope="module")
def signed() -> dict[str, Any]:
    from datetime import UTC, datetime

    from tests.unit.verify._factory import CountyCA, sign_pdf, with_empty_signature_field

    ca = CountyCA()
    doc = render_template(
        "acceptance_notice", {**TEMPLATE_DATA["acceptance_notice"], "document_number": NUMBER}
    )
    seal = ca.issue_seal()
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return {
        "ca": ca,
        "at": datetime(2026, 3, 2, tzinfo=UTC),
        "sealed": sign_pdf(doc, ca, seal, timestamp_at=at),
        # the sneaky field: empty, visible, in the document before it is sealed
        "sneaky": sign_pdf(with_empty_signature_field(doc, "Later", NUMBER_BOX), ca, seal, timestamp_at=at),
    }


def test_invisible_document_timestamp_is_no_difference(signed: dict[str, Any]) -> None:
    from tests.unit.verify._factory import add_document_timestamp

    whole = add_document_timestamp(signed["sealed"], signed["ca"], signed["at"])
    assert visible_changes(signed["sealed"], whole) == []


@pytest.mark.parametrize("sneaky", [False, True], ids=["new-field", "sneaky-field"])
def test_visible_document_timestamp_overlay_is_a_visible_change(signed: dict[str, Any], sneaky: bool) -> None:
    """Issue 18, attacks 1 and 3: a county-TSA timestamp whose widget whites out the number line."""
    from tests.unit.verify._factory import add_visible_document_timestamp

    sealed = signed["sneaky" if sneaky else "sealed"]
    whole = add_visible_document_timestamp(
        sealed,
        signed["ca"],
        signed["at"],
        rect=NUMBER_BOX,
        text="2026-999",
        field_name="Later" if sneaky else "TS-overlay",
        existing_field=sneaky,
    )
    diffs = visible_changes(sealed, whole)
    assert _kinds(diffs) == [(DiffKind.PIXELS, 1, RenderMode.VIEW), (DiffKind.PIXELS, 1, RenderMode.PRINT)]
    assert all(_overlaps(d.region, NUMBER_BOX) for d in diffs)
