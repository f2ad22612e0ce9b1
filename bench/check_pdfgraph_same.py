"""Does verifier._pdfgraph still find exactly what an earlier version found, on every input we can make?

Run: .venv/bin/python bench/check_pdfgraph_same.py [--rev main] [--no-sweep] [--full-size]   (~2.5 min;
--full-size adds the 200 000-object and 60 000-page uploads, ~1.5 min more)

Loads ``verifier/_pdfgraph.py`` as it is at ``--rev`` (``git show``) beside the working tree's, and compares
them on: every PDF under tests/, every template, the forms of tests/unit/signer/test_pdfgraph.py (and a few
more: several sneaky fields, an OCMD with /VE, a portfolio, media annotations), the hostile corpus of
tests/_fixtures/hostile.py (scaled down where a scan costs seconds), documents signed with
tests/unit/verify/_factory.py and the attacks of tests/_fixtures/attacks.py on them. Per document and per
``history`` (True, False):

* ``scan_graph`` and ``active_content`` with the default budget, 50 and 200: the findings (every field) or
  the exception's type and text;
* ``walk_objects``: every visit (ref, key path, revision, current, the node count when it is handed out),
  then the final node count, objects and unreadable objects;
* a budget sweep (every budget up to the node count, or 300 of them on bigger files): the visits handed out
  before the budget stops the walk, and the exception — the same files must stop at the same point;
* the deep-nesting uploads called from 0..40 extra caller frames: a 100 000-deep array fails to parse with
  a RecursionError whose text depends on the depth of the Python stack when the object is read, so the
  walk must read objects at the same depth as before.

Prints the counts compared and every difference (must be 0). Measured 2026-12-06 for issue 24 (main at
dec907c against the new walk): 133 documents (3 that pyHanko cannot open skipped), 1 560 scans, 260 walks,
48 700 sweep walks, 738 depth calls, 18 full-size scans: 0 differences. It does fail: the new walk counting
one node more per array of leaves gave 561 differences without the sweep; an index written ``(0)`` for
``[0]`` gave differences on every document with a direct action in an array.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT = 2_000_000


def _load_old(rev: str, tmp: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{rev}:verifier/_pdfgraph.py"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = tmp / "pdfgraph_old.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("pdfgraph_old", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pdfgraph_old"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _reader(data: bytes) -> Any:
    from pyhanko.pdf_utils.reader import PdfFileReader

    return PdfFileReader(BytesIO(data), strict=False)


def _outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    """A result comparable across the two modules (each has its own GraphFindings class)."""
    try:
        got = fn()
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        return ("raise", type(exc).__name__, str(exc))
    if dataclasses.is_dataclass(got) and not isinstance(got, type):
        return ("ok", type(got).__name__, dataclasses.astuple(got))
    return ("ok", type(got).__name__, got)


def _visits(mod: ModuleType, reader: Any, budget: int, history: bool) -> tuple[Any, ...]:
    st = mod.ObjectWalk()
    seen: list[Any] = []
    try:
        for v in mod.walk_objects(reader, max_nodes=budget, stats=st, history=history):
            seen.append((v.ref, v.key, v.revision, v.current, st.nodes))
    except Exception as exc:  # noqa: BLE001 - the exception is part of the walk
        seen.append(("raise", type(exc).__name__, str(exc)))
    return tuple(seen), st.nodes, st.objects, tuple(st.unreadable)


def _scan(m: ModuleType, data: bytes, budget: int, history: bool) -> Any:
    return m.scan_graph(_reader(data), max_nodes=budget, history=history)


def _active(m: ModuleType, data: bytes, budget: int, history: bool) -> Any:
    return m.active_content(_reader(data), max_nodes=budget, history=history)


def _scan_on(m: ModuleType, reader: Any, budget: int, history: bool) -> Any:
    return m.scan_graph(reader, max_nodes=budget, history=history)


def _walk(m: ModuleType, data: bytes, budget: int, history: bool) -> Any:
    return _visits(m, _reader(data), budget, history)


def _at_depth(k: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` called from ``k`` more frames of the Python stack."""
    return fn(*args) if k == 0 else _at_depth(k - 1, fn, *args)


def _deep(m: ModuleType, k: int, fn: Callable[..., Any], data: bytes, history: bool) -> Any:
    return _at_depth(k, fn, m, data, DEFAULT, history)


class Check:
    def __init__(self, old: ModuleType, new: ModuleType, sweep: bool) -> None:
        self.old, self.new, self.sweep = old, new, sweep
        self.counts = {"scan": 0, "active_content": 0, "walk": 0, "sweep": 0, "depth": 0, "full-size": 0}
        self.diffs: list[tuple[Any, ...]] = []
        self.unopenable: list[str] = []
        self.name = ""

    def same(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """``fn(module, *args)`` gives the same outcome with the old and the new module."""
        self.counts[what] += 1
        o = _outcome(lambda: fn(self.old, *args))
        n = _outcome(lambda: fn(self.new, *args))
        if o != n:
            where = [a if isinstance(a, int | str) and len(str(a)) < 80 else "..." for a in args]
            self.diffs.append((what, self.name, fn.__name__, *where, str(o)[:300], str(n)[:300]))

    def document(self, name: str, data: bytes, sweep: bool) -> None:
        self.name = name
        try:
            _reader(data)
        except Exception as exc:  # noqa: BLE001 - pyHanko cannot open it: nothing to walk
            self.unopenable.append(f"{name} ({type(exc).__name__})")
            return
        for history in (True, False):
            for b in (DEFAULT, 50, 200):
                self.same("scan", _scan, data, b, history)
                self.same("active_content", _active, data, b, history)
            r = _reader(data)  # one reader for both: current objects are the same objects
            self.same("walk", _visits, r, DEFAULT, history)
            if not (self.sweep and sweep):
                continue
            total = _visits(self.new, r, DEFAULT, history)[1]
            if total <= 1500:
                budgets = list(range(total + 3))
            else:
                budgets = sorted(
                    {*random.Random(total).sample(range(total), 300), total - 1, total, total + 1}
                )
            for b in budgets:
                self.same("sweep", _visits, r, b, history)

    def depths(self, name: str, data: bytes) -> None:
        self.name = name
        for k in range(41):
            for history in (True, False):
                for fn in (_scan, _active, _walk):
                    self.same("depth", _deep, k, fn, data, history)


def _forms() -> Iterator[tuple[str, bytes]]:
    """The forms of tests/unit/signer/test_pdfgraph.py, and a few more."""
    import tests.unit.signer.test_pdfgraph as t

    D, A, n, rect = t.D, t.A, t.n, t.rect
    text = t.generic.TextStringObject

    def struct(w: Any, p: Any, r: Any) -> None:
        w.root[n("/StructTreeRoot")] = D({n("/K"): D({n("/Type"): n("/StructElem"), n("/S"): n("/Launch")})})

    def deep(w: Any, p: Any, r: Any) -> None:
        inner: Any = t._js()
        for _ in range(150):
            inner = A([inner])
        w.root[n("/Deep")] = w.add_object(inner)

    def goto_open(w: Any, p: Any, r: Any) -> None:
        w.root[n("/OpenAction")] = D({n("/S"): n("/GoTo"), n("/D"): A([r, n("/Fit")])})

    def many_sigs(w: Any, p: Any, r: Any) -> None:
        fields = []
        for i in range(5):
            kid = D({n("/Subtype"): n("/Widget"), n("/Rect"): rect(10, 10 + i, 90, 40 + i), n("/P"): r})
            f = D(
                {
                    n("/FT"): n("/Sig"),
                    n("/T"): text(f"F{i}"),
                    n("/Kids"): A([kid if i % 2 else w.add_object(kid)]),
                }
            )
            fields.append(w.add_object(f) if i % 2 else f)
        w.root[n("/AcroForm")] = D({n("/Fields"): A([A(fields[:2]), *fields[2:]])})
        w.root[n("/Stuff")] = D(
            {n("/"): D({n("/S"): n("/Launch")}), n("/X"): A([A([]), D({}), A([D({n("/AA"): D()})])])}
        )

    def ocmd(w: Any, p: Any, r: Any) -> None:
        g = t._ocg(w)
        w.root[n("/OCProperties")] = D({n("/OCGs"): A([g]), n("/D"): D({n("/ON"): A([g])})})
        w.add_object(D({n("/Type"): n("/OCMD"), n("/OCGs"): A([g]), n("/P"): n("/AllOff")}))
        w.add_object(D({n("/Type"): n("/OCMD"), n("/VE"): A([n("/Not"), g])}))

    def collection(w: Any, p: Any, r: Any) -> None:
        w.root[n("/Collection")] = D({n("/View"): n("/D")})

    def media(w: Any, p: Any, r: Any) -> None:
        p[n("/Annots")] = A(
            [
                D({n("/Type"): n("/Annot"), n("/Subtype"): n("/Screen")}),
                D({n("/Subtype"): n("/3D")}),
                D({n("/S"): n("/URI"), n("/URI"): t.generic.ByteStringObject(b"  javascript:x")}),
            ]
        )

    forms: dict[str, Any] = {
        "inline_open_action": t._inline_open_action,
        "indirect_open_action": t._indirect_open_action,
        "inline_names_tree": t._inline_names_tree,
        "launch_inline": t._launch(False),
        "launch_indirect": t._launch(True),
        "annot_aa": t._annot_aa,
        "xfa": t._xfa,
        "rich_media": t._rich_media,
        "set_ocg_state": t._set_ocg_state,
        "javascript_uri": t._javascript_uri,
        "harmless_links": t._harmless_links,
        "oc_print": t._oc(lambda g: {}, D({n("/Print"): D({n("/PrintState"): n("/ON")})})),
        "oc_view": t._oc(lambda g: {}, D({n("/View"): D({n("/ViewState"): n("/OFF")})})),
        "oc_off": t._oc(lambda g: {"/OFF": A([g]), "/ON": A()}),
        "oc_base_off": t._oc(lambda g: {"/BaseState": n("/OFF"), "/ON": A()}),
        "oc_as": t._oc(lambda g: {"/AS": A([D({n("/Event"): n("/Print"), n("/OCGs"): A([g])})])}),
        "oc_design": t._oc(lambda g: {"/Intent": n("/Design")}),
        "oc_fine": t._oc(lambda g: {"/Order": A([g])}),
        "sig_print": t._sig_field((100, 100, 250, 150), flags=4),
        "sig_noview": t._sig_field((100, 100, 250, 150), flags=32),
        "sig_zero": t._sig_field((0, 0, 0, 0)),
        "sig_hidden": t._sig_field((100, 100, 250, 150), flags=2),
        "sig_filled": t._sig_field((100, 100, 250, 150), filled=True),
        "sig_need": t._sig_field((0, 0, 0, 0), need=True),
        "empty": lambda w, p, r: None,
        "struct": struct,
        "deep": deep,
        "goto_open": goto_open,
        "many_sigs": many_sigs,
        "ocmd": ocmd,
        "collection": collection,
        "media": media,
    }
    for name, mutate in forms.items():
        for stream_xrefs in (True, False):
            yield f"form:{name}:stream_xrefs={stream_xrefs}", t._doc(mutate, stream_xrefs=stream_xrefs)
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    data = t._doc(t._indirect_open_action)
    w = IncrementalPdfFileWriter(BytesIO(data))
    del w.root[n("/OpenAction")]
    w.update_root()
    out = BytesIO()
    w.write(out)
    yield "form:replaced-revision", out.getvalue()
    ref = _reader(data).root.raw_get("/OpenAction").reference
    at = data.index(f"\n{ref.idnum} 0 obj".encode()) + 1
    yield "form:unreadable-object", data[:at] + b"XX" + data[at + 2 :]


def _corpus() -> Iterator[tuple[str, bytes, bool]]:
    """(name, bytes, sweep budgets)"""
    for p in sorted((ROOT / "tests").rglob("*.pdf")):
        yield f"file:{p.relative_to(ROOT)}", p.read_bytes(), True
    from bench_api import permit_pdf

    from signer._templates import render_template, template_names

    permit = permit_pdf()
    yield "permit", permit, True
    import tests.unit.signer.test_pdfgraph as t

    for name in template_names():
        yield f"template:{name}", render_template(name, t._template_data(name)), True
    for name, data in _forms():
        yield name, data, True
    import tests._fixtures.hostile as h
    from tests.unit.verify.test_budget import many_objects, xref_stream_bomb

    yield "hostile:many-objects-3000", many_objects(3000), False
    yield "hostile:xref-stream-bomb", xref_stream_bomb(), False
    yield "hostile:page-tree-cycle", h._page_tree_cycle(permit), True
    yield "hostile:deep-nesting-100k", h._deep_nesting(permit), False
    yield "hostile:deep-nesting-500", h._deep_nesting(permit, 500), True
    yield "hostile:content-flate-bomb-8M", h._content_bomb(permit, 8 * h.MiB), True
    yield "hostile:unreferenced-flate-bomb-8M", h._unreferenced_bomb(permit, 8 * h.MiB), True
    yield "hostile:many-pages-1500", h.many_pages(1500), False
    updates = {
        "open_action": h._open_action,
        "names_js": h._names_js,
        "launch": h._launch_link,
        "print_only": h._print_only_layer,
        "off_layer": h._off_layer,
        "need_appearances": h._sig_field((0, 0, 0, 0), need_appearances=True),
        "sneaky": h._sig_field((300, 100, 500, 160)),
    }
    for name, mutate in updates.items():
        yield f"hostile:{name}", h._update(permit, mutate), True
    yield "hostile:size-too-small", h._size_too_small(permit), True
    import tests._fixtures.attacks as a
    from tests.unit.verify import _factory as f

    ca = f.CountyCA()
    seal = ca.issue_seal()
    signed = f.sign_pdf(permit, ca, seal)
    yield "signed:permit", signed, True
    form = f.sign_pdf(f.blank_pdf(with_form_field=True), ca, seal)
    yield "signed:blank-form", form, True
    yield "signed:twice", f.sign_pdf(form, ca, seal, field_name="Seal2"), True
    after: list[tuple[str, Callable[[bytes], bytes], bytes]] = [
        (fn.__name__, fn, form)
        for fn in (
            f.append_page_content_change,
            f.append_annotation,
            f.append_form_fill,
            f.append_font_swap,
            f.append_image_xobject,
            f.append_raw_update_with_broken_xref,
            f.replace_last_xref,
            f.append_orphan_update_with_broken_xref,
        )
    ]
    after += [
        ("open-action-js-inline", a.add_open_action_javascript, signed),
        ("open-action-js-indirect", lambda p: a.add_open_action_javascript(p, inline=False), signed),
        ("names-js-inline", a.add_names_javascript, signed),
        ("names-js-indirect", lambda p: a.add_names_javascript(p, inline=False), signed),
        ("launch-inline", a.add_launch_link, signed),
        ("launch-indirect", lambda p: a.add_launch_link(p, inline=False), signed),
        ("need-appearances", a.set_need_appearances, signed),
        ("default-appearance", a.change_default_appearance, signed),
        ("text-field", a.add_text_field, signed),
        ("text-field-filled", lambda p: a.fill_text_field(a.add_text_field(p)), signed),
        ("stamp-appearance", a.replace_stamp_appearance, signed),
        ("empty-signature-field", a.add_empty_signature_field, signed),
        ("sneaky-field", lambda p: a.place_empty_signature_field(p, "Sneaky", (300, 100, 500, 160)), signed),
        ("signature-wrapping", a.signature_wrapping, signed),
        ("wrap-in-the-gap", a.wrap_in_the_gap, signed),
    ]
    for name, fn, base in after:
        yield f"attack:{name}", fn(base), True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default="main", help="the version to compare with (git revision)")
    ap.add_argument("--no-sweep", action="store_true", help="skip the budget sweeps")
    ap.add_argument("--full-size", action="store_true", help="add the 200k-object and 60k-page uploads")
    args = ap.parse_args()
    import logging

    logging.disable(logging.CRITICAL)  # pyHanko warns about every broken file
    from verifier import patches

    patches.install()  # as the service runs
    from verifier import _pdfgraph as new

    with tempfile.TemporaryDirectory() as tmp:
        old = _load_old(args.rev, Path(tmp))
    check = Check(old, new, sweep=not args.no_sweep)
    t0 = time.time()
    docs = 0
    for name, data, sweep in _corpus():
        docs += 1
        try:
            check.document(name, data, sweep)
        except Exception:  # noqa: BLE001 - a harness failure is reported, not a pass
            traceback.print_exc()
            check.diffs.append(("harness", name))
    from bench_api import permit_pdf

    import tests._fixtures.hostile as h

    permit = permit_pdf()
    for depth in (100_000, 990, 500):
        check.depths(f"deep-nesting-{depth}", h._deep_nesting(permit, depth))
    if args.full_size:
        from tests.unit.verify.test_budget import many_objects

        for data in (many_objects(200_000), h.many_pages()):
            check.name = f"full-size ({len(data)} bytes)"
            r = _reader(data)  # small budgets stop before reading: one reader will do
            for b in (50, 200, 5000, 100_000):
                for history in (True, False):
                    check.same("full-size", _scan_on, r, b, history)
            check.same("full-size", _scan_on, r, DEFAULT, True)
    print(f"{args.rev} vs working tree: {docs} documents, {time.time() - t0:.0f} s")
    print("not opened by pyHanko (skipped):", ", ".join(check.unopenable) or "none")
    print("compared:", ", ".join(f"{k} {v}" for k, v in check.counts.items()))
    print("differences:", len(check.diffs))
    for d in check.diffs[:30]:
        print("  ", d)
    sys.exit(1 if check.diffs else 0)


if __name__ == "__main__":
    main()
