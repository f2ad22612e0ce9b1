"""The hostile-PDF corpus of issue 21 (finding 6): what a stranger uploads to be sealed or verified.

Each entry is built from an honest base document (the caller's, usually a rendered template) or from raw
bytes, so the same corpus serves the sealing test (``tests/security/test_hostile_corpus.py``), the
served load test and its bench (``bench/bench_verify_served_hostile.py``). Sources of each technique:

* the budgets of issue 18 (``tests/unit/verify/test_budget.py``): the 200 000-object upload and the 0.3 MB
  xref-stream bomb;
* the security review of issue 21: a page-tree cycle, 100 000-deep nesting, Flate bombs (referenced page
  content, and an unreferenced object in an update), a 60 000-page document;
* the sealing gate of issue 18 (``tests/integration/signer/test_seal_gate.py``): scripts and actions
  written as *direct* objects, optional content (print-only and switched-off layers), ``/NeedAppearances``,
  a visible empty signature field (Sneaky Signature Attack), a trailer ``/Size`` qpdf must repair, and a
  page that already prints a number of the centre's own series;
* the foreign corpus (``tests/data/corpus/foreign``): the files the sealer refuses (signature wrapping,
  a broken earlier signature, an empty signature field).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
FOREIGN = Path(__file__).resolve().parents[1] / "data" / "corpus" / "foreign"


def raw_update(base: bytes, objects: dict[int, bytes], *, size: int | None = None) -> bytes:
    """``base`` plus one classic incremental update that (re)defines ``objects`` (number -> body bytes),
    written by hand: bodies no PDF writer would produce (100 000-deep arrays, raw bombs)."""
    startxref = re.findall(rb"startxref\s+(\d+)", base)
    sizes = re.findall(rb"/Size\s+(\d+)", base)
    roots = re.findall(rb"/Root\s+(\d+\s+\d+\s+R)", base)
    assert startxref and sizes and roots, "base has no classic trailer to extend"
    out = bytearray(base if base.endswith(b"\n") else base + b"\n")
    offsets: dict[int, int] = {}
    for num, body in sorted(objects.items()):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref_at = len(out)
    out += b"xref\n"
    for num, off in sorted(offsets.items()):
        out += b"%d 1\n%010d 00000 n \n" % (num, off)
    new_size = size if size is not None else max(int(sizes[-1]), max(objects) + 1)
    out += b"trailer\n<< /Size %d /Root %s /Prev %s >>\nstartxref\n%d\n%%%%EOF\n" % (
        new_size,
        roots[-1],
        startxref[-1],
        xref_at,
    )
    return bytes(out)


def _update(base: bytes, mutate: Callable[[Any, Any, Any], None]) -> bytes:
    """``base`` plus one incremental update made by pyHanko: ``mutate(writer, page, page_ref)``."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(BytesIO(base), strict=False)
    page_ref = w.root["/Pages"].raw_get("/Kids")[0]
    page = page_ref.get_object()
    mutate(w, page, page_ref)
    w.update_container(page)
    w.update_root()
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def _reserve(base: bytes, where: Callable[[Any, Any], Any], key: str) -> tuple[bytes, int]:
    """An update where ``where(writer, page)`` (a dictionary) gets ``key`` -> a fresh null object; returns
    the bytes and that object's number, for :func:`raw_update` to fill with something no writer writes."""
    from pyhanko.pdf_utils import generic

    box: list[int] = []

    def mutate(w: Any, page: Any, ref: Any) -> None:
        target = w.add_object(generic.NullObject())
        box.append(target.idnum)
        holder = where(w, page)
        holder[generic.NameObject(key)] = target

    return _update(base, mutate), box[0]


# --- the techniques ----------------------------------------------------------------------------------------


def _n(name: str) -> Any:
    from pyhanko.pdf_utils import generic

    return generic.NameObject(name)


def _rect(*xs: float) -> Any:
    from pyhanko.pdf_utils import generic

    return generic.ArrayObject([generic.FloatObject(x) for x in xs])


def _js() -> Any:
    from pyhanko.pdf_utils import generic

    return generic.DictionaryObject(
        {_n("/S"): _n("/JavaScript"), _n("/JS"): generic.TextStringObject("app.alert(1)")}
    )


def _open_action(w: Any, page: Any, ref: Any) -> None:
    w.root[_n("/OpenAction")] = _js()  # direct: no indirect object to find


def _names_js(w: Any, page: Any, ref: Any) -> None:
    from pyhanko.pdf_utils import generic

    names = generic.ArrayObject([generic.TextStringObject("a"), _js()])
    w.root[_n("/Names")] = generic.DictionaryObject(
        {_n("/JavaScript"): generic.DictionaryObject({_n("/Names"): names})}
    )


def _launch_link(w: Any, page: Any, ref: Any) -> None:
    from pyhanko.pdf_utils import generic

    action = generic.DictionaryObject(
        {_n("/S"): _n("/Launch"), _n("/F"): generic.TextStringObject("calc.exe")}
    )
    link = generic.DictionaryObject(
        {_n("/Subtype"): _n("/Link"), _n("/Rect"): _rect(50, 50, 150, 70), _n("/A"): action}
    )
    page[_n("/Annots")] = generic.ArrayObject([link])


def _print_only_layer(w: Any, page: Any, ref: Any) -> None:
    from pyhanko.pdf_utils import generic

    D, A = generic.DictionaryObject, generic.ArrayObject
    usage = D(
        {_n("/Print"): D({_n("/PrintState"): _n("/ON")}), _n("/View"): D({_n("/ViewState"): _n("/OFF")})}
    )
    group = w.add_object(
        D({_n("/Type"): _n("/OCG"), _n("/Name"): generic.TextStringObject("p"), _n("/Usage"): usage})
    )
    event = D({_n("/Event"): _n("/Print"), _n("/OCGs"): A([group]), _n("/Category"): A([_n("/Print")])})
    w.root[_n("/OCProperties")] = D(
        {_n("/OCGs"): A([group]), _n("/D"): D({_n("/ON"): A([group]), _n("/AS"): A([event])})}
    )


def _off_layer(w: Any, page: Any, ref: Any) -> None:
    from pyhanko.pdf_utils import generic

    D, A = generic.DictionaryObject, generic.ArrayObject
    group = w.add_object(D({_n("/Type"): _n("/OCG"), _n("/Name"): generic.TextStringObject("hidden")}))
    w.root[_n("/OCProperties")] = D({_n("/OCGs"): A([group]), _n("/D"): D({_n("/OFF"): A([group])})})


def _sig_field(box: tuple[float, ...], need_appearances: bool = False) -> Callable[[Any, Any, Any], None]:
    def mutate(w: Any, page: Any, ref: Any) -> None:
        from pyhanko.pdf_utils import generic

        field = w.add_object(
            generic.DictionaryObject(
                {
                    _n("/FT"): _n("/Sig"),
                    _n("/T"): generic.TextStringObject("Later1"),
                    _n("/Type"): _n("/Annot"),
                    _n("/Subtype"): _n("/Widget"),
                    _n("/Rect"): _rect(*box),
                    _n("/F"): generic.NumberObject(4),
                    _n("/P"): ref,
                }
            )
        )
        page[_n("/Annots")] = generic.ArrayObject([field])
        form = generic.DictionaryObject({_n("/Fields"): generic.ArrayObject([field])})
        if need_appearances:
            form[_n("/NeedAppearances")] = generic.BooleanObject(True)
        w.root[_n("/AcroForm")] = form

    return mutate


def _size_too_small(pdf: bytes) -> bytes:
    """The last trailer's /Size below the highest object number (qpdf must repair it)."""
    m = list(re.finditer(rb"/Size (\d+)", pdf))[-1]
    return pdf[: m.start(1)] + str(int(m.group(1)) - 3).encode().rjust(len(m.group(1))) + pdf[m.end(1) :]


def _page_tree_cycle(base: bytes) -> bytes:
    """The page tree's root lists itself among its kids: a reader that walks it never ends."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    r = PdfFileReader(BytesIO(base), strict=False)
    pages = r.root.raw_get("/Pages")
    kids = b" ".join(b"%d %d R" % (k.idnum, k.generation) for k in r.root["/Pages"].raw_get("/Kids"))
    body = b"<< /Type /Pages /Kids [%s %d 0 R] /Count %d >>" % (
        kids,
        pages.idnum,
        int(r.root["/Pages"]["/Count"]) + 1,
    )
    return raw_update(base, {pages.idnum: body})


def _deep_nesting(base: bytes, depth: int = 100_000) -> bytes:
    """An array nested ``depth`` deep, reachable from the catalog (a recursive parser's stack)."""
    reserved, num = _reserve(base, lambda w, page: w.root, "/Deep")
    return raw_update(reserved, {num: b"[" * depth + b"]" * depth})


def flate_bomb(inflated: int) -> bytes:
    c = zlib.compressobj(9)
    chunk = bytes(MiB)
    return b"".join([*(c.compress(chunk) for _ in range(inflated // MiB)), c.flush()])


def _content_bomb(base: bytes, inflated: int = 256 * MiB) -> bytes:
    """The page's content gets a second stream that inflates to ``inflated`` bytes of whitespace."""
    from pyhanko.pdf_utils import generic

    def mutate(w: Any, page: Any, ref: Any) -> None:
        bomb = generic.StreamObject({_n("/Filter"): _n("/FlateDecode")}, encoded_data=flate_bomb(inflated))
        old = page.raw_get("/Contents")
        old_list = list(old.get_object()) if isinstance(old.get_object(), generic.ArrayObject) else [old]
        page[_n("/Contents")] = generic.ArrayObject([*old_list, w.add_object(bomb)])

    return _update(base, mutate)


def _unreferenced_bomb(base: bytes, inflated: int = 256 * MiB) -> bytes:
    """An update adding one Flate stream nothing refers to (``qpdf --check`` decodes it all the same)."""
    (size,) = re.findall(rb"/Size\s+(\d+)", base)[-1:]
    body = flate_bomb(inflated)
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(body), body)
    return raw_update(base, {int(size): stream})


def many_pages(n: int = 60_000) -> bytes:
    """``n`` pages, each with a tiny content stream (the 60 000-page upload of the review, ~7 MB)."""
    out = bytearray(b"%PDF-1.7\n")
    offsets: list[int] = []

    def obj(body: bytes) -> None:
        offsets.append(len(out))
        out.extend(b"%d 0 obj\n%s\nendobj\n" % (len(offsets), body))

    obj(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
    obj(b"<< /Type /Pages /Kids [%s] /Count %d /MediaBox [0 0 595 842] >>" % (kids, n))
    for i in range(n):
        obj(b"<< /Type /Page /Parent 2 0 R /Contents %d 0 R >>" % (4 + 2 * i))
        obj(b"<< /Length 8 >>\nstream\n0 0 m S \nendstream")
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref_at)
    return bytes(out)


#: Foreign-corpus files the sealer refuses (``tests/integration/signer/test_seal_hostile.py``).
FOREIGN_REFUSED = ("siwa.pdf", "BadEncodedCMS.pdf", "pdf-with-empty-sig.pdf", "pdf-signed-corrupted.pdf")


def hostile_corpus(base: bytes, shows_number: bytes) -> dict[str, bytes]:
    """name -> hostile bytes. ``base``: an honest one-page document to corrupt; ``shows_number``: the same
    document printing a number of the sealing centre's own series."""
    from tests.unit.verify.test_budget import many_objects, xref_stream_bomb

    corpus = {
        "200k-objects": many_objects(200_000),
        "xref-stream-bomb": xref_stream_bomb(),
        "page-tree-cycle": _page_tree_cycle(base),
        "deep-nesting-100k": _deep_nesting(base),
        "content-flate-bomb": _content_bomb(base),
        "unreferenced-flate-bomb": _unreferenced_bomb(base),
        "60k-pages": many_pages(),
        "direct-openaction-js": _update(base, _open_action),
        "direct-names-js": _update(base, _names_js),
        "direct-launch-link": _update(base, _launch_link),
        "print-only-layer": _update(base, _print_only_layer),
        "off-layer": _update(base, _off_layer),
        "need-appearances": _update(base, _sig_field((0, 0, 0, 0), need_appearances=True)),
        "visible-empty-signature-field": _update(base, _sig_field((300, 100, 500, 160))),
        "size-too-small": _size_too_small(base),
        "prints-document-number": shows_number,
    }
    for name in FOREIGN_REFUSED:
        corpus[f"foreign:{name}"] = (FOREIGN / name).read_bytes()
    return corpus
