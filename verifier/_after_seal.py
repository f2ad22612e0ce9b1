"""What may follow a seal: "nothing a person sees may change after the seal", checked on the object graph.

pyHanko's difference analysis (``strict_diff_policy``) rates later revisions; this module is the second,
independent opinion the seal rule needs, written for one question only: could anything added after the seal
change what a reader shows or prints? Two checks:

* :func:`widgets_of` (visibility by :func:`verifier._pdfgraph.widget_visible`, the sealing gate's rule) — a
  signature or document timestamp signed after the seal must have no visible widget (a visible one is an
  overlay: Mainka et al., "Shadow attacks", the Sneaky Signature Attack of IEEE S&P 2021, and a visible
  document timestamp, which needs no insider at all). The one exception, decided by the caller, is a
  *trusted* signature on a *new* field: a county attestation.
* :func:`later_revision_problems` — every object written in a revision after the seal must be one of:
  validation data (the DSS and what it references: certificates, CRLs, OCSP responses, VRI), a signature or
  timestamp value dictionary, a signature field and its widget with the appearance it brings, the bookkeeping
  that attaches them (``/Annots`` of a page, ``/Fields`` and ``/SigFlags`` of the AcroForm, ``/DSS``,
  ``/AcroForm``, ``/Metadata``, ``/Extensions`` and ``/Version`` of the catalog), document information and
  XMP metadata, and the object and xref streams that carry them. Anything else — a changed page, content
  stream, annotation, font, an ``/OCProperties`` state, ``/NeedAppearances`` or ``/DA`` of the form, an
  ``/OpenAction`` — is a problem, named by revision and object.

Visible means: a ``/Rect`` with a non-zero area, unless the ``Hidden`` annotation flag (bit 2) is set.
``NoView`` (bit 6) is not enough — such a widget is still printed — and an unreadable ``/Rect`` counts as
visible: the check fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pyhanko.pdf_utils import generic

from verifier._pdfgraph import widget_visible

Rect = tuple[float, float, float, float]

#: Catalog entries a later LTV or signature revision may set (anything else changes what a reader does).
_CATALOG_KEYS_OK = frozenset({"/DSS", "/AcroForm", "/Metadata", "/Extensions", "/Version"})
#: AcroForm entries a later signature revision may change (never /NeedAppearances, /DA, /DR, /XFA, /CO).
_ACROFORM_KEYS_OK = frozenset({"/Fields", "/SigFlags"})
#: Entries of an existing, so far unsigned signature field that signing it may set.
_SIGFIELD_FILL_KEYS_OK = frozenset({"/V", "/AP"})
_MAX_CLOSURE = 20_000
_MAX_PROBLEMS = 5


@dataclass(frozen=True)
class Widget:
    """One widget annotation of a field: its page (0-based, ``None`` if not on a known page) and rectangle."""

    page: int | None
    rect: Rect | None
    visible: bool


def _num(v: Any) -> float:
    return float(v)


def _rect(annot: Any) -> Rect | None:
    try:
        x1, y1, x2, y2 = (_num(v) for v in annot["/Rect"])
    except (KeyError, TypeError, ValueError):
        return None
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def page_indices(reader: Any, *, limit: int = 10_000) -> dict[int, int]:
    """Object number of each page dictionary → its 0-based index (page tree walked with a node bound)."""
    out: dict[int, int] = {}
    seen: set[int] = set()
    try:
        root = reader.root.raw_get("/Pages")
    except (KeyError, AttributeError):
        return out
    stack: list[Any] = [root]
    order: list[int] = []
    while stack and len(seen) < limit:
        node_ref = stack.pop()
        if not isinstance(node_ref, generic.IndirectObject):
            continue
        if node_ref.idnum in seen:
            continue
        seen.add(node_ref.idnum)
        try:
            node = node_ref.get_object()
            kind = node.get("/Type")
            if kind == "/Page" or "/Kids" not in node:
                order.append(node_ref.idnum)
                continue
            kids = node["/Kids"]
            stack.extend(reversed(list(kids)))
        except Exception:  # noqa: BLE001, S112 - a broken page tree is the structure checks' business
            continue
    for i, idnum in enumerate(order):
        out[idnum] = i
    return out


def widgets_of(field: Any, pages: dict[int, int]) -> list[Widget]:
    """The widget annotations of a (signature) field: the field itself when it is merged with its widget, or
    its ``/Kids`` that have no ``/T`` of their own."""
    candidates: list[Any] = []
    kids = field.get("/Kids") if hasattr(field, "get") else None
    if kids is None or field.get("/Subtype") == "/Widget":
        candidates.append(field)
    if kids is not None:
        try:
            for kid in kids:
                k = kid.get_object()
                if "/T" not in k:
                    candidates.append(k)
        except Exception:  # noqa: BLE001, S110 - hostile /Kids: what was read is judged; structure checks do the rest
            pass
    out: list[Widget] = []
    for annot in candidates:
        page: int | None = None
        try:
            p = annot.raw_get("/P")
            if isinstance(p, generic.IndirectObject):
                page = pages.get(p.idnum)
        except KeyError:
            page = None
        out.append(Widget(page=page, rect=_rect(annot), visible=widget_visible(annot)))
    return out


# ---------------------------------------------------------------------------------------------------------
# the later revisions, object by object


def _refs_in(obj: Any, budget: list[int]) -> Iterator[generic.Reference]:
    """References directly inside a value (recursing into direct containers, not following references)."""
    stack = [obj]
    while stack:
        budget[0] -= 1
        if budget[0] < 0:
            return
        cur = stack.pop()
        if isinstance(cur, generic.IndirectObject):
            yield cur.reference
        elif isinstance(cur, generic.DictionaryObject):  # includes streams
            stack.extend(cur.raw_get(k) for k in cur)
        elif isinstance(cur, generic.ArrayObject):
            stack.extend(cur.raw_get(i) for i in range(len(cur)))


def _closure(resolver: Any, starts: Iterable[Any], budget: list[int]) -> set[int]:
    """Object numbers reachable from ``starts`` (values or references) as seen by ``resolver``."""
    seen: set[int] = set()
    stack: list[Any] = list(starts)
    while stack and budget[0] > 0:
        cur = stack.pop()
        for ref in _refs_in(cur, budget):
            if ref.idnum in seen:
                continue
            seen.add(ref.idnum)
            try:
                stack.append(resolver(ref))
            except Exception:  # noqa: BLE001, S112 - dangling reference: nothing more reachable through it
                continue
    return seen


def _is_sig_field(obj: Any) -> bool:
    if not isinstance(obj, generic.DictionaryObject):
        return False
    if obj.get("/FT") == "/Sig":
        return True
    try:
        parent = obj.get("/Parent")
        return parent is not None and parent.get_object().get("/FT") == "/Sig" and "/T" not in obj
    except Exception:  # noqa: BLE001
        return False


def _raw(d: Any, key: str) -> Any:
    return d.raw_get(key) if key in d else None


def _same(old: Any, new: Any) -> bool:
    """Equal as PDF values; a stream also by its (encoded) bytes — a dictionary comparison alone would miss a
    rewritten content stream under an unchanged stream dictionary."""
    if type(old) is not type(new) or old != new:
        return False
    if isinstance(old, generic.StreamObject):
        return bool(old.encoded_data == new.encoded_data)
    return True


def _differing_keys(old: Any, new: Any) -> set[str]:
    keys = set(old.keys()) | set(new.keys())
    return {str(k) for k in keys if _raw(old, k) != _raw(new, k)}


def _list_grows(old: Any, new: Any) -> list[Any] | None:
    """The entries appended to an array (old must be a prefix of new), else ``None``."""
    if not isinstance(old, generic.ArrayObject) or not isinstance(new, generic.ArrayObject):
        return None
    o = [old.raw_get(i) for i in range(len(old))]
    n = [new.raw_get(i) for i in range(len(new))]
    if len(n) < len(o) or n[: len(o)] != o:
        return None
    return n[len(o) :]


def _added_are_sig_widgets(added: list[Any], resolver: Any) -> bool:
    for item in added:
        if not isinstance(item, generic.IndirectObject):
            return False
        try:
            if not _is_sig_field(resolver(item.reference)):
                return False
        except Exception:  # noqa: BLE001
            return False
    return True


def later_revision_problems(
    reader: Any, after_revision: int, *, exempt: frozenset[int] = frozenset()
) -> list[str]:
    """What the revisions after ``after_revision`` write beyond validation data and invisible-or-judged
    signature fields (see the module docstring). ``exempt``: revisions judged elsewhere (a trusted county
    attestation's own revision, compared by rendering). At most a few problems, each naming the revision and
    object."""
    problems: list[str] = []
    xrefs = reader.xrefs
    if after_revision + 1 >= xrefs.total_revisions:
        return problems
    budget = [_MAX_CLOSURE]
    # Shadow slots: references the document as sealed makes to objects that do not exist yet (they read as
    # null). An object added later under such a number would be drawn where the seal saw nothing.
    slots = _dangling_references(reader, after_revision, budget)
    for rev in range(after_revision + 1, xrefs.total_revisions):
        if rev in exempt:
            continue
        for p in _revision_problems(reader, rev, slots, budget):
            problems.append(f"revision {rev}: {p}")
            if len(problems) >= _MAX_PROBLEMS:
                return problems
    if budget[0] <= 0 and not problems:
        problems.append("object graph too large to judge")
    return problems


@dataclass
class _Roles:
    """What the objects of one revision are for, as far as the after-seal rule cares."""

    root: int | None
    info: int | None
    acroform: int | None
    fields: int | None
    dss: set[int]
    pages: set[int]
    annots: set[int]  # indirect /Annots arrays of pages


class _Revision:
    """Objects as they were in one revision. An object not rewritten since is read through the reader's own
    cache (already parsed by the other checks); only objects changed later are parsed again from history."""

    def __init__(self, reader: Any, rev: int) -> None:
        self.reader = reader
        self.rev = rev
        self._history = reader.get_historical_resolver(rev)
        self.trailer_view = self._history.trailer_view

    def __call__(self, ref: Any) -> Any:
        try:
            current = self.reader.xrefs.get_last_change(ref) <= self.rev
        except KeyError:
            current = False
        return self.reader.get_object(ref) if current else self._history(ref)


def _get(resolver: Any, v: Any) -> Any:
    """Dereference in the given revision (``IndirectObject.get_object`` would read the latest one)."""
    return resolver(v.reference) if isinstance(v, generic.IndirectObject) else v


def _id(v: Any) -> int | None:
    return v.idnum if isinstance(v, generic.IndirectObject) else None


def _roles(resolver: Any, budget: list[int]) -> _Roles:
    trailer = resolver.trailer_view
    root_ref = _raw(trailer, "/Root")
    try:
        root = _get(resolver, root_ref)
    except Exception:  # noqa: BLE001 - no readable catalog: nothing has a role
        return _Roles(_id(root_ref), _id(_raw(trailer, "/Info")), None, None, set(), set(), set())
    acro = _raw(root, "/AcroForm") if isinstance(root, generic.DictionaryObject) else None
    fields = None
    try:
        if acro is not None:
            fields = _raw(_get(resolver, acro), "/Fields")
    except Exception:  # noqa: BLE001
        fields = None
    dss = _closure(resolver, [_raw(root, "/DSS")], budget) if "/DSS" in root else set()
    pages: set[int] = set()
    annots: set[int] = set()
    stack: list[Any] = [_raw(root, "/Pages")] if "/Pages" in root else []
    seen: set[int] = set()
    while stack and budget[0] > 0:
        budget[0] -= 1
        ref = stack.pop()
        idnum = _id(ref)
        if idnum is None or idnum in seen:
            continue
        seen.add(idnum)
        try:
            node = resolver(ref.reference)
        except Exception:  # noqa: BLE001, S112
            continue
        if not isinstance(node, generic.DictionaryObject):
            continue
        if "/Kids" in node and node.get("/Type") != "/Page":
            kids = _raw(node, "/Kids")
            try:
                stack.extend(_get(resolver, kids))
            except Exception:  # noqa: BLE001, S112
                continue
        else:
            pages.add(idnum)
            a = _id(_raw(node, "/Annots")) if "/Annots" in node else None
            if a is not None:
                annots.add(a)
    return _Roles(_id(root_ref), _id(_raw(trailer, "/Info")), _id(acro), _id(fields), dss, pages, annots)


def _dangling_references(reader: Any, rev: int, budget: list[int]) -> set[int]:
    """Object numbers referenced by some object of revision ``rev`` that do not exist in that revision."""
    xrefs = reader.xrefs
    resolver = _Revision(reader, rev)
    present: set[int] = set()
    for r in range(rev + 1):
        present |= {ref.idnum for ref in xrefs.explicit_refs_in_revision(r)}
    out: set[int] = set()
    starts: list[Any] = [resolver.trailer_view]
    for idnum in present:
        if budget[0] <= 0:
            break
        budget[0] -= 1
        try:
            gen = 0
            ref = generic.Reference(idnum, gen, pdf=reader)
            starts.append(resolver(ref))
        except Exception:  # noqa: BLE001, S112 - generation other than 0 or unreadable: judged elsewhere
            continue
        for ref in _refs_in(starts.pop(), budget):
            if ref.idnum not in present:
                out.add(ref.idnum)
    for ref in _refs_in(starts[0], budget):
        if ref.idnum not in present:
            out.add(ref.idnum)
    return out


def _revision_problems(reader: Any, rev: int, slots: set[int], budget: list[int]) -> Iterator[str]:
    old_res = _Revision(reader, rev - 1)
    new_res = _Revision(reader, rev)
    was, now = _roles(old_res, budget), _roles(new_res, budget)
    refs = sorted(reader.xrefs.explicit_refs_in_revision(rev), key=lambda r: r.idnum)
    objs: dict[int, Any] = {}
    sig_ap_starts: list[Any] = []
    for ref in refs:
        try:
            obj = new_res(ref)
        except Exception as exc:  # noqa: BLE001 - unreadable object written after the seal
            yield f"object {ref.idnum} unreadable ({type(exc).__name__})"
            continue
        objs[ref.idnum] = obj
        if _is_sig_field(obj) and "/AP" in obj:
            sig_ap_starts.append(obj.raw_get("/AP"))
    # appearance streams (and their resources) of signature fields written in this revision: their
    # visibility is judged by the widget rule, their pixels by rendering
    sig_ap_ids = _closure(new_res, sig_ap_starts, budget) if sig_ap_starts else set()
    for ref in refs:
        if ref.idnum not in objs:
            continue
        obj = objs[ref.idnum]
        old: Any = None
        try:
            if reader.xrefs.get_introducing_revision(ref) < rev:
                old = old_res(ref)
        except Exception:  # noqa: BLE001 - unreadable earlier version: judged as a new object
            old = None
        if isinstance(old, generic.NullObject):
            old = None
        if old is None:
            why = _judge_new(ref.idnum, obj, new_res, now, slots, sig_ap_ids)
        else:
            why = _judge_changed(ref.idnum, obj, old, new_res, was, now)
        if why:
            yield why


def _describe(idnum: int, obj: Any, what: str) -> str:
    desc = None
    if isinstance(obj, generic.DictionaryObject):
        desc = obj.get("/Type") or obj.get("/Subtype")
    return f"{what} object {idnum}" + (f" ({desc})" if desc else "")


def _judge_new(
    idnum: int, obj: Any, resolver: Any, now: _Roles, slots: set[int], sig_ap_ids: set[int]
) -> str | None:
    """A new object number: harmless only as one of the things validation and signing add, and never in a
    slot the sealed document already refers to."""
    if idnum in slots:
        return _describe(idnum, obj, "new") + " fills a reference the sealed document already made (shadow)"
    kind = obj.get("/Type") if isinstance(obj, generic.DictionaryObject) else None
    if isinstance(obj, generic.StreamObject) and kind in ("/ObjStm", "/XRef"):
        return None
    if idnum in now.dss or idnum in sig_ap_ids or idnum == now.info:
        return None
    if isinstance(obj, generic.StreamObject) and kind == "/Metadata" and obj.get("/Subtype") == "/XML":
        return None
    if isinstance(obj, generic.DictionaryObject) and kind in ("/Sig", "/DocTimeStamp"):
        return None
    if _is_sig_field(obj):
        return None  # a new signature field: its widget's visibility is judged by the caller
    if idnum == now.fields:
        return None if _added_are_sig_widgets(list(obj), resolver) else "a new /Fields array"
    if idnum == now.acroform:
        return _judge_acroform(None, obj, resolver)
    if idnum == now.root:
        return "a new document catalog"
    return _describe(idnum, obj, "new")


def _judge_changed(idnum: int, obj: Any, old: Any, resolver: Any, was: _Roles, now: _Roles) -> str | None:
    """An existing object rewritten: allowed only in the role it already had before this revision."""
    if _same(old, obj):
        return None
    old_kind = old.get("/Type") if isinstance(old, generic.DictionaryObject) else None
    new_kind = obj.get("/Type") if isinstance(obj, generic.DictionaryObject) else None
    streams = isinstance(old, generic.StreamObject), isinstance(obj, generic.StreamObject)
    if streams == (True, True) and old_kind == new_kind and old_kind in ("/ObjStm", "/XRef"):
        return None
    if idnum in was.dss and idnum in now.dss and not _drawable(old):
        return None  # the DSS and its VRI dictionaries are updated in place
    if idnum == was.info and idnum == now.info and streams == (False, False):
        return None
    if (
        streams == (True, True)
        and old_kind == new_kind == "/Metadata"
        and old.get("/Subtype") == obj.get("/Subtype") == "/XML"
    ):
        return None
    if idnum == was.root and idnum == now.root:
        diff = _differing_keys(old, obj)
        bad = diff - _CATALOG_KEYS_OK
        if bad:
            return f"catalog entries {sorted(bad)} changed"
        if "/AcroForm" in diff:
            old_form, new_form = _raw(old, "/AcroForm"), _raw(obj, "/AcroForm")
            if old_form is not None and _id(old_form) != _id(new_form):
                return "the catalog's /AcroForm now points elsewhere"
            if _id(new_form) is None:  # a direct form dictionary in the catalog
                return _judge_acroform(old_form, new_form, resolver)
        return None
    if idnum == was.acroform and idnum == now.acroform and streams == (False, False):
        return _judge_acroform(old, obj, resolver)
    if idnum == was.fields and idnum == now.fields:
        added = _list_grows(old, obj)
        if added is None or not _added_are_sig_widgets(added, resolver):
            return "the form's /Fields changed other than by new signature fields"
        return None
    if idnum in was.annots and idnum in now.annots:
        added = _list_grows(old, obj)
        if added is None or not _added_are_sig_widgets(added, resolver):
            return f"annotations array {idnum} changed other than by new signature widgets"
        return None
    if isinstance(old, generic.DictionaryObject) and old_kind in ("/Sig", "/DocTimeStamp"):
        return f"an existing signature value (object {idnum}) was rewritten"
    if _is_sig_field(old) and _is_sig_field(obj) and not streams[1]:
        bad = _differing_keys(old, obj) - _SIGFIELD_FILL_KEYS_OK
        if bad or "/V" in old:
            return f"signature field object {idnum} changed ({sorted(bad) or '/V replaced'})"
        return None  # an earlier empty signature field being signed: judged by the widget rule
    if idnum in was.pages and idnum in now.pages and streams == (False, False):
        bad = _differing_keys(old, obj) - {"/Annots"}
        if bad:
            return f"page object {idnum}: {sorted(bad)} changed"
        old_annots, new_annots = _raw(old, "/Annots") if "/Annots" in old else None, _raw(obj, "/Annots")
        if _id(old_annots) is not None and _id(old_annots) == _id(new_annots):
            return None  # the indirect array itself is judged as an annotations array
        try:
            old_list = _get(resolver, old_annots) if old_annots is not None else generic.ArrayObject()
            new_list = _get(resolver, new_annots)
        except Exception:  # noqa: BLE001
            return f"page object {idnum}: unreadable annotations"
        added = _list_grows(old_list, new_list)
        if added is None or not _added_are_sig_widgets(added, resolver):
            return f"page object {idnum}: annotations changed other than by new signature widgets"
        return None
    return _describe(idnum, obj, "changed")


def _drawable(obj: Any) -> bool:
    """Could a page draw this object? (Form and image XObjects, content-like streams without a type.)"""
    if not isinstance(obj, generic.StreamObject):
        return False
    return obj.get("/Type") in (None, "/XObject") or obj.get("/Subtype") in ("/Form", "/Image")


def _judge_acroform(old: Any, new: Any, resolver: Any) -> str | None:
    if new is None:
        return "the form was removed"
    try:
        new_d = _get(resolver, new)
        old_d = _get(resolver, old) if old is not None else None
    except Exception:  # noqa: BLE001
        return "an unreadable form"
    if not isinstance(new_d, generic.DictionaryObject) or isinstance(new_d, generic.StreamObject):
        return "the form is not a dictionary"
    if old_d is None:
        extra = set(map(str, new_d.keys())) - _ACROFORM_KEYS_OK
        if extra:
            return f"a new form with {sorted(extra)}"
        fields = new_d.get("/Fields", generic.ArrayObject())
        return None if _added_are_sig_widgets(list(_get(resolver, fields)), resolver) else "a new form"
    diff = _differing_keys(old_d, new_d)
    bad = diff - _ACROFORM_KEYS_OK
    if bad:
        return f"form entries {sorted(bad)} changed"
    if "/Fields" in diff:
        o, n = _raw(old_d, "/Fields"), _raw(new_d, "/Fields")
        if _id(o) is not None or _id(n) is not None:
            return "the form's /Fields now points elsewhere"
        added = _list_grows(o or generic.ArrayObject(), n)
        if added is None or not _added_are_sig_widgets(added, resolver):
            return "the form's /Fields changed other than by new signature fields"
    return None


__all__ = ["Widget", "later_revision_problems", "page_indices", "widgets_of"]
