"""verifier._pdfgraph: active content, optional content, sneaky signature fields and NeedAppearances found in
any object form (direct or indirect, any revision), and nothing found in clean documents.

Each hostile form is built with pyHanko's writer exactly as the issue-18 attack set wrote it: the
inline forms (a direct ``/OpenAction`` dictionary, a ``/Names`` JavaScript tree written inline, a Launch
action inside a link annotation that is itself a direct dictionary in ``/Annots``) were missed by the
verifier's first scan, which looked only at top-level keys of indirect objects.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter

from verifier._pdfgraph import (
    GraphBudgetExceeded,
    ObjectWalk,
    active_content,
    needs_appearances,
    optional_content_problem,
    scan_graph,
    sneaky_fields,
    walk_objects,
)

D = generic.DictionaryObject
A = generic.ArrayObject


def n(name: str) -> generic.NameObject:
    return pdf_name(name)


def rect(*xs: float) -> generic.ArrayObject:
    return A([generic.FloatObject(x) for x in xs])


def _doc(
    mutate: Callable[[PdfFileWriter, generic.DictionaryObject, generic.IndirectObject], None],
    *,
    stream_xrefs: bool = True,
) -> bytes:
    """A one-page document; ``mutate(writer, page, page_ref)`` adds the form under test."""
    w = PdfFileWriter(stream_xrefs=stream_xrefs)
    content = generic.StreamObject(stream_data=b"BT /F1 12 Tf 72 720 Td (permit) Tj ET")
    page = D(
        {
            n("/Type"): n("/Page"),
            n("/MediaBox"): rect(0, 0, 595, 842),
            n("/Resources"): D(),
            n("/Contents"): w.add_object(content),
        }
    )
    page_ref = w.insert_page(page)
    mutate(w, page_ref.get_object(), page_ref)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def _reader(data: bytes) -> PdfFileReader:
    return PdfFileReader(BytesIO(data), strict=False)


def _js(code: str = "app.alert(1)") -> generic.DictionaryObject:
    return D({n("/S"): n("/JavaScript"), n("/JS"): generic.TextStringObject(code)})


# ---------------------------------------------------------------------------------------------------------
# active content


def _inline_open_action(w: PdfFileWriter, page: Any, ref: Any) -> None:
    w.root[n("/OpenAction")] = _js()


def _indirect_open_action(w: PdfFileWriter, page: Any, ref: Any) -> None:
    w.root[n("/OpenAction")] = w.add_object(_js())


def _inline_names_tree(w: PdfFileWriter, page: Any, ref: Any) -> None:
    w.root[n("/Names")] = D({n("/JavaScript"): D({n("/Names"): A([generic.TextStringObject("a"), _js()])})})


def _launch(indirect: bool) -> Callable[[PdfFileWriter, Any, Any], None]:
    def mutate(w: PdfFileWriter, page: Any, ref: Any) -> None:
        action = D({n("/S"): n("/Launch"), n("/F"): generic.TextStringObject("calc.exe")})
        link = D(
            {
                n("/Type"): n("/Annot"),
                n("/Subtype"): n("/Link"),
                n("/Rect"): rect(50, 50, 150, 70),
                n("/A"): w.add_object(action) if indirect else action,
            }
        )
        page[n("/Annots")] = A([w.add_object(link) if indirect else link])

    return mutate


def _annot_aa(w: PdfFileWriter, page: Any, ref: Any) -> None:
    page[n("/AA")] = D({n("/O"): _js()})  # page-open action, direct in the page


def _xfa(w: PdfFileWriter, page: Any, ref: Any) -> None:
    w.root[n("/AcroForm")] = D(
        {n("/Fields"): A(), n("/XFA"): w.add_object(generic.StreamObject(stream_data=b"<xdp/>"))}
    )


def _rich_media(w: PdfFileWriter, page: Any, ref: Any) -> None:
    page[n("/Annots")] = A([D({n("/Subtype"): n("/RichMedia"), n("/Rect"): rect(0, 0, 10, 10)})])


def _set_ocg_state(w: PdfFileWriter, page: Any, ref: Any) -> None:
    action = D({n("/S"): n("/SetOCGState"), n("/State"): A([n("/OFF")])})
    page[n("/Annots")] = A([D({n("/Subtype"): n("/Link"), n("/Rect"): rect(0, 0, 10, 10), n("/A"): action})])


def _javascript_uri(w: PdfFileWriter, page: Any, ref: Any) -> None:
    action = D({n("/S"): n("/URI"), n("/URI"): generic.TextStringObject("JavaScript:app.alert(1)")})
    page[n("/Annots")] = A([D({n("/Subtype"): n("/Link"), n("/Rect"): rect(0, 0, 10, 10), n("/A"): action})])


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_inline_open_action, ["/OpenAction /JavaScript", "object"]),
        (_indirect_open_action, ["/JavaScript", "object"]),
        (_inline_names_tree, ["/JavaScript", "direct, under /Names"]),
        (_launch(indirect=False), ["/Launch action", "direct, under /Annots[0]/A"]),
        (_launch(indirect=True), ["/Launch action"]),
        (_annot_aa, ["/AA"]),
        (_xfa, ["/XFA"]),
        (_rich_media, ["/RichMedia annotation"]),
        (_set_ocg_state, ["/SetOCGState action"]),
        (_javascript_uri, ["javascript: URI"]),
    ],
    ids=[
        "inline-openaction-js",
        "indirect-openaction-js",
        "inline-names-javascript-tree",
        "inline-link-with-inline-launch",
        "indirect-link-with-indirect-launch",
        "page-aa-direct",
        "xfa",
        "richmedia-annotation",
        "setocgstate-link",
        "javascript-uri",
    ],
)
def test_active_content_in_any_form(mutate: Any, expected: list[str]) -> None:
    r = _reader(_doc(mutate))
    found = active_content(r)
    assert found is not None
    for part in expected:
        assert part in found, found
    assert scan_graph(r).active_content == found


def _harmless_links(w: PdfFileWriter, page: Any, ref: Any) -> None:
    uri = D({n("/S"): n("/URI"), n("/URI"): generic.TextStringObject("https://example.org/")})
    goto = D({n("/S"): n("/GoTo"), n("/D"): A([ref, n("/Fit")])})
    page[n("/Annots")] = A(
        [
            D({n("/Subtype"): n("/Link"), n("/Rect"): rect(0, 0, 10, 10), n("/A"): uri}),
            w.add_object(D({n("/Subtype"): n("/Link"), n("/Rect"): rect(0, 20, 10, 30), n("/A"): goto})),
            D({n("/Subtype"): n("/Link"), n("/Rect"): rect(0, 40, 10, 50), n("/Dest"): A([ref, n("/Fit")])}),
        ]
    )
    w.root[n("/OpenAction")] = A([ref, n("/Fit")])  # a destination, not an action


def test_uri_links_goto_and_destinations_are_harmless() -> None:
    found = scan_graph(_reader(_doc(_harmless_links)))
    assert found.active_content is None and found.optional_content is None
    assert found.sneaky_fields == () and not found.needs_appearances


def test_openaction_goto_dictionary_is_harmless() -> None:
    def mutate(w: PdfFileWriter, page: Any, ref: Any) -> None:
        w.root[n("/OpenAction")] = D({n("/S"): n("/GoTo"), n("/D"): A([ref, n("/Fit")])})

    assert active_content(_reader(_doc(mutate))) is None


def test_script_in_a_replaced_revision_still_counts() -> None:
    """A later update removed the script; a still later xref could point back at its bytes."""
    data = _doc(_indirect_open_action)
    w = IncrementalPdfFileWriter(BytesIO(data))
    del w.root[n("/OpenAction")]
    w.update_root()
    out = BytesIO()
    w.write(out)
    r = _reader(out.getvalue())
    assert "/OpenAction" not in r.root
    # the action object is still in the file (unreferenced) and its old catalog version names it
    assert active_content(r) is not None


def test_struct_element_s_is_not_an_action() -> None:
    def mutate(w: PdfFileWriter, page: Any, ref: Any) -> None:
        w.root[n("/StructTreeRoot")] = D({n("/K"): D({n("/Type"): n("/StructElem"), n("/S"): n("/Launch")})})

    assert active_content(_reader(_doc(mutate))) is None


# ---------------------------------------------------------------------------------------------------------
# optional content


def _ocg(w: PdfFileWriter, usage: generic.DictionaryObject | None = None) -> generic.IndirectObject:
    d = D({n("/Type"): n("/OCG"), n("/Name"): generic.TextStringObject("layer")})
    if usage is not None:
        d[n("/Usage")] = usage
    return w.add_object(d)


def _oc(config: Callable[[generic.IndirectObject], dict[str, Any]], usage: Any = None) -> Callable[..., None]:
    def mutate(w: PdfFileWriter, page: Any, ref: Any) -> None:
        group = _ocg(w, usage)
        d = D({n("/ON"): A([group])})
        for k, v in config(group).items():
            d[n(k)] = v
        w.root[n("/OCProperties")] = D({n("/OCGs"): A([group]), n("/D"): d})

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_oc(lambda g: {}, D({n("/Print"): D({n("/PrintState"): n("/ON")})})), "/Usage /Print"),
        (_oc(lambda g: {}, D({n("/View"): D({n("/ViewState"): n("/OFF")})})), "/Usage /View"),
        (_oc(lambda g: {"/OFF": A([g]), "/ON": A()}), "OFF"),
        (_oc(lambda g: {"/BaseState": n("/OFF"), "/ON": A()}), "/BaseState /OFF"),
        (_oc(lambda g: {"/AS": A([D({n("/Event"): n("/Print"), n("/OCGs"): A([g])})])}), "/AS"),
        (_oc(lambda g: {"/Intent": n("/Design")}), "/Intent"),
    ],
    ids=["print-only-usage", "view-usage", "off-layer", "basestate-off", "auto-state", "design-intent"],
)
def test_optional_content_that_can_differ(mutate: Any, expected: str) -> None:
    found = optional_content_problem(_reader(_doc(mutate)))
    assert found is not None and expected in found, found


def test_alternate_configs_and_ocmd_all_off() -> None:
    def configs(w: PdfFileWriter, page: Any, ref: Any) -> None:
        group = _ocg(w)
        w.root[n("/OCProperties")] = D(
            {
                n("/OCGs"): A([group]),
                n("/D"): D({n("/ON"): A([group])}),
                n("/Configs"): A([D({n("/OFF"): A([group])})]),
            }
        )

    def ocmd(w: PdfFileWriter, page: Any, ref: Any) -> None:
        group = _ocg(w)
        w.root[n("/OCProperties")] = D({n("/OCGs"): A([group]), n("/D"): D({n("/ON"): A([group])})})
        # content shown only once the (ON) group is switched OFF
        w.add_object(D({n("/Type"): n("/OCMD"), n("/OCGs"): A([group]), n("/P"): n("/AllOff")}))

    assert "/Configs" in (optional_content_problem(_reader(_doc(configs))) or "")
    assert "/AllOff" in (optional_content_problem(_reader(_doc(ocmd))) or "")


def test_layers_all_on_without_usage_are_fine() -> None:
    r = _reader(_doc(_oc(lambda g: {"/Order": A([g])})))
    assert "/OCProperties" in r.root
    assert optional_content_problem(r) is None


# ---------------------------------------------------------------------------------------------------------
# signature fields and NeedAppearances


def _sig_field(box: tuple[float, ...], flags: int = 0, filled: bool = False, need: bool | None = None) -> Any:
    def mutate(w: PdfFileWriter, page: Any, ref: Any) -> None:
        field = D(
            {
                n("/FT"): n("/Sig"),
                n("/T"): generic.TextStringObject("Sneaky1"),
                n("/Type"): n("/Annot"),
                n("/Subtype"): n("/Widget"),
                n("/Rect"): rect(*box),
                n("/F"): generic.NumberObject(flags),
                n("/P"): ref,
            }
        )
        if filled:
            field[n("/V")] = w.add_object(D({n("/Type"): n("/Sig"), n("/Filter"): n("/Adobe.PPKLite")}))
        field_ref = w.add_object(field)
        page[n("/Annots")] = A([field_ref])
        form = D({n("/Fields"): A([field_ref])})
        if need is not None:
            form[n("/NeedAppearances")] = generic.BooleanObject(need)
        w.root[n("/AcroForm")] = form

    return mutate


@pytest.mark.parametrize("flags", [4, 32], ids=["print", "noview"])
def test_visible_empty_signature_field_is_sneaky(flags: int) -> None:
    # NoView hides the widget on screen only: it still prints, so a later fill would show on paper
    found = sneaky_fields(_reader(_doc(_sig_field((100, 100, 250, 150), flags=flags))))
    assert len(found) == 1 and found[0].startswith("Sneaky1"), found


@pytest.mark.parametrize(
    "mutate",
    [
        _sig_field((0, 0, 0, 0)),  # an invisible field: nothing to draw into
        _sig_field((100, 100, 250, 150), flags=2),  # Hidden
        _sig_field((100, 100, 250, 150), filled=True),  # already signed
    ],
    ids=["zero-rect", "hidden", "filled"],
)
def test_invisible_or_filled_signature_fields_are_not_sneaky(mutate: Any) -> None:
    assert sneaky_fields(_reader(_doc(mutate))) == []


def test_sneaky_field_with_widget_kid() -> None:
    def mutate(w: PdfFileWriter, page: Any, ref: Any) -> None:
        widget = w.add_object(
            D({n("/Subtype"): n("/Widget"), n("/Rect"): rect(10, 10, 90, 40), n("/P"): ref})
        )
        field = w.add_object(
            D({n("/FT"): n("/Sig"), n("/T"): generic.TextStringObject("Kid"), n("/Kids"): A([widget])})
        )
        page[n("/Annots")] = A([widget])
        w.root[n("/AcroForm")] = D({n("/Fields"): A([field])})

    assert [f.split(" ")[0] for f in sneaky_fields(_reader(_doc(mutate)))] == ["Kid"]


def test_need_appearances() -> None:
    assert needs_appearances(_reader(_doc(_sig_field((0, 0, 0, 0), need=True))))
    assert not needs_appearances(_reader(_doc(_sig_field((0, 0, 0, 0), need=False))))
    assert not needs_appearances(_reader(_doc(lambda w, p, r: None)))


# ---------------------------------------------------------------------------------------------------------
# the walk itself


def test_walk_visits_direct_dictionaries_once_and_respects_the_budget() -> None:
    r = _reader(_doc(_launch(indirect=False)))
    stats = ObjectWalk()
    visits = list(walk_objects(r, stats=stats))
    launches = [v for v in visits if v.obj.get("/S") == "/Launch"]
    assert len(launches) == 1 and launches[0].key == "/Annots[0]/A" and launches[0].current
    assert stats.unreadable == [] and stats.objects >= 4
    with pytest.raises(GraphBudgetExceeded):
        list(walk_objects(r, max_nodes=5))


def test_script_nested_deep_in_direct_arrays_is_found() -> None:
    def mutate(w: PdfFileWriter, page: Any, ref: Any) -> None:
        inner: Any = _js()
        for _ in range(150):
            inner = A([inner])
        w.root[n("/Deep")] = w.add_object(inner)

    found = active_content(_reader(_doc(mutate)))
    assert found is not None and found.endswith("[0]" * 150 + ")"), found


def test_unreadable_object_is_recorded_not_raised() -> None:
    data = _doc(_indirect_open_action)
    r = _reader(data)
    ref = r.root.raw_get("/OpenAction").reference
    at = data.index(f"\n{ref.idnum} 0 obj".encode()) + 1
    broken = data[:at] + b"XX" + data[at + 2 :]  # the xref still points here: no object header
    stats = ObjectWalk()
    list(walk_objects(_reader(broken), stats=stats))
    assert [u[0].idnum for u in stats.unreadable] == [ref.idnum]
    assert scan_graph(_reader(broken)).unreadable


# ---------------------------------------------------------------------------------------------------------
# clean documents: our templates, before and after numbering


def _template_data(name: str) -> dict[str, Any]:
    from signer._templates import load_template

    tpl = load_template(name)
    data: dict[str, Any] = {k: "兴江乡测试" for k in tpl.required}
    data.update(issuer="兴国县兴江乡人民政府", date="2026年3月5日", document_number="兴江审批〔2026〕1号")
    return data


def _template_names() -> list[str]:
    from signer._templates import template_names

    return template_names()


@pytest.mark.parametrize("name", _template_names())
def test_templates_are_clean_and_pass_the_gate(name: str) -> None:
    from signer._pdfin import open_untrusted_pdf, refuse_unsealable
    from signer._templates import render_template

    pdf = render_template(name, _template_data(name))
    found = scan_graph(_reader(pdf))
    assert found.active_content is None and found.optional_content is None
    assert found.sneaky_fields == () and not found.needs_appearances and found.unreadable == ()
    refuse_unsealable(open_untrusted_pdf(pdf, max_bytes=10_000_000), pdf)  # raises on any refusal


# ---------------------------------------------------------------------------------------------------------
# the sealing gate's codes (no token needed: it runs before anything is drawn)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (_inline_open_action, "PDF_ACTIVE_CONTENT"),
        (_inline_names_tree, "PDF_ACTIVE_CONTENT"),
        (_launch(indirect=False), "PDF_ACTIVE_CONTENT"),
        (_oc(lambda g: {}, D({n("/Print"): D({n("/PrintState"): n("/ON")})})), "PDF_OPTIONAL_CONTENT"),
        (_oc(lambda g: {"/OFF": A([g]), "/ON": A()}), "PDF_OPTIONAL_CONTENT"),
        (_sig_field((100, 100, 250, 150)), "PDF_EMPTY_SIGNATURE_FIELD"),
        (_sig_field((0, 0, 0, 0), need=True), "PDF_NEEDS_APPEARANCES"),
    ],
    ids=["openaction", "names-js", "launch", "print-only", "off-layer", "sneaky", "need-appearances"],
)
def test_gate_codes(mutate: Any, code: str) -> None:
    from core.errors import BadInput
    from signer._pdfin import open_untrusted_pdf, refuse_unsealable

    pdf = _doc(mutate)
    with pytest.raises(BadInput) as err:
        refuse_unsealable(open_untrusted_pdf(pdf, max_bytes=10_000_000), pdf)
    assert err.value.code == code


def test_gate_structure_invalid() -> None:
    from core.errors import BadInput
    from signer._pdfin import open_untrusted_pdf, refuse_unsealable

    pdf = _doc(lambda w, p, r: None, stream_xrefs=False)
    # one byte more after the header: every xref offset is off by one, qpdf must repair the file
    head = pdf.index(b"\n") + 1
    bad = pdf[:head] + b" " + pdf[head:]
    opened = open_untrusted_pdf(bad, max_bytes=10_000_000)
    with pytest.raises(BadInput) as err:
        refuse_unsealable(opened, bad)
    assert err.value.code == "PDF_STRUCTURE_INVALID"
    refuse_unsealable(opened, bad, check_structure=False)  # the graph itself is clean


def test_make_annotations_indirect() -> None:
    from signer._seal import make_annotations_indirect

    pdf = _doc(_harmless_links)
    w = IncrementalPdfFileWriter(BytesIO(pdf))
    assert make_annotations_indirect(w) == 2  # two inline links; the third is already an object
    out = BytesIO()
    w.write(out)
    r = _reader(out.getvalue())
    page = r.root["/Pages"]["/Kids"][0]
    raw = list(page.raw_get("/Annots"))
    assert all(isinstance(a, generic.IndirectObject) for a in raw)
    assert [str(a.get_object()["/Subtype"]) for a in raw] == ["/Link"] * 3
    assert str(raw[0].get_object()["/A"]["/URI"]) == "https://example.org/"
    w2 = IncrementalPdfFileWriter(BytesIO(out.getvalue()))
    assert make_annotations_indirect(w2) == 0
