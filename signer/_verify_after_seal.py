"""What may follow a seal: "nothing a person sees may change after the seal", checked on the object graph.

pyHanko's difference analysis (``strict_diff_policy``) rates later revisions; this module is the second,
independent opinion the seal rule needs, written for one question only: could anything added after the seal
change what a reader shows or prints? Two checks:

* :func:`widgets_of` / :func:`is_widget_visible` — a signature or document timestamp signed after the seal
  must have no visible widget (a visible one is an overlay: Mainka et al., "Shadow attacks", the Sneaky
  Signature Attack of IEEE S&P 2021, and a visible document timestamp, which needs no insider at all). The
  one exception, decided by the caller, is a *trusted* signature on a *new* field: a county attestation.
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

Rect = tuple[float, float, float, float]

_HIDDEN = 2
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


def is_widget_visible(annot: Any) -> bool:
    try:
        flags = int(annot.get("/F", 0))
    except (TypeError, ValueError):
        flags = 0
    if flags & _HIDDEN:
        return False
    try:
        x1, y1, x2, y2 = (_num(v) for v in annot["/Rect"])
    except (KeyError, TypeError, ValueError):
        return True  # unreadable: fail closed
    return abs(x2 - x1) * abs(y2 - y1) > 1e-6


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
        out.append(Widget(page=page, rect=_rect(annot), visible=is_widget_visible(annot)))
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
    for rev in range(after_revision + 1, xrefs.total_revisions):
        if rev in exempt:
            continue
        for p in _revision_problems(reader, rev):
            problems.append(f"revision {rev}: {p}")
            if len(problems) >= _MAX_PROBLEMS:
                return problems
    return problems


def _revision_problems(reader: Any, rev: int) -> Iterator[str]:
    old_res = reader.get_historical_resolver(rev - 1)
    new_res = reader.get_historical_resolver(rev)
    budget = [_MAX_CLOSURE]
    new_root = new_res.root if hasattr(new_res, "root") else new_res.trailer_view["/Root"].get_object()
    root_ref = new_res.trailer_view.raw_get("/Root")
    root_id = root_ref.idnum if isinstance(root_ref, generic.IndirectObject) else None
    info = _raw(new_res.trailer_view, "/Info")
    info_id = info.idnum if isinstance(info, generic.IndirectObject) else None
    dss_ids = _closure(new_res, [new_root.raw_get("/DSS")], budget) if "/DSS" in new_root else set()
    acro = _raw(new_root, "/AcroForm")
    acro_id = acro.idnum if isinstance(acro, generic.IndirectObject) else None
    fields_ref = None
    if acro is not None:
        try:
            fields_ref = _raw(acro.get_object(), "/Fields")
        except Exception:  # noqa: BLE001
            fields_ref = None
    fields_id = fields_ref.idnum if isinstance(fields_ref, generic.IndirectObject) else None
    refs = sorted(reader.xrefs.explicit_refs_in_revision(rev), key=lambda r: r.idnum)
    # appearance streams (and their resources) of signature fields written in this revision: their
    # visibility is judged by the widget rule, their contents by rendering
    sig_ap_starts: list[Any] = []
    objs: dict[int, Any] = {}
    for ref in refs:
        try:
            obj = new_res(ref)
        except Exception as exc:  # noqa: BLE001 - unreadable object written after the seal
            yield f"object {ref.idnum} unreadable ({type(exc).__name__})"
            continue
        objs[ref.idnum] = obj
        if _is_sig_field(obj) and "/AP" in obj:
            sig_ap_starts.append(obj.raw_get("/AP"))
    sig_ap_ids = _closure(new_res, sig_ap_starts, budget) if sig_ap_starts else set()
    if budget[0] <= 0:
        yield "object graph too large to judge"
        return
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
        why = _judge(ref.idnum, obj, old, new_res, root_id, info_id, acro_id, fields_id, dss_ids, sig_ap_ids)
        if why:
            yield why


def _judge(
    idnum: int,
    obj: Any,
    old: Any,
    resolver: Any,
    root_id: int | None,
    info_id: int | None,
    acro_id: int | None,
    fields_id: int | None,
    dss_ids: set[int],
    sig_ap_ids: set[int],
) -> str | None:
    if old is not None and _same(old, obj):
        return None  # rewritten unchanged
    kind = obj.get("/Type") if isinstance(obj, generic.DictionaryObject) else None
    if isinstance(obj, generic.StreamObject) and kind in ("/ObjStm", "/XRef"):
        return None
    if idnum in dss_ids:
        return None
    if idnum == info_id:
        return None
    if isinstance(obj, generic.StreamObject) and kind == "/Metadata" and obj.get("/Subtype") == "/XML":
        return None
    if idnum == root_id:
        if old is None:
            return "a new document catalog"
        bad = _differing_keys(old, obj) - _CATALOG_KEYS_OK
        if bad:
            return f"catalog entries {sorted(bad)} changed"
        if "/AcroForm" in _differing_keys(old, obj) and acro_id is None:
            return _judge_acroform(old.get("/AcroForm"), obj.get("/AcroForm"), resolver)
        return None
    if idnum == acro_id:
        return _judge_acroform(old, obj, resolver)
    if idnum == fields_id:
        if old is None:
            return None if _added_are_sig_widgets(list(obj), resolver) else "a new /Fields array"
        added = _list_grows(old, obj)
        if added is None or not _added_are_sig_widgets(added, resolver):
            return "the form's /Fields changed other than by new signature fields"
        return None
    if isinstance(obj, generic.DictionaryObject) and kind in ("/Sig", "/DocTimeStamp"):
        if old is not None:
            return f"an existing signature value (object {idnum}) was rewritten"
        return None
    if _is_sig_field(obj):
        if old is None:
            return None  # a new signature field: its widget's visibility is judged by the caller
        bad = _differing_keys(old, obj) - _SIGFIELD_FILL_KEYS_OK
        if bad or "/V" in old:
            return f"signature field object {idnum} changed ({sorted(bad) or '/V replaced'})"
        return None  # an earlier empty signature field being signed: judged by the widget rule
    if idnum in sig_ap_ids and old is None:
        return None
    if isinstance(obj, generic.DictionaryObject) and kind == "/Page" and old is not None:
        bad = _differing_keys(old, obj) - {"/Annots"}
        if bad:
            return f"page object {idnum}: {sorted(bad)} changed"
        old_annots, new_annots = old.get("/Annots"), obj.get("/Annots")
        if old_annots is None:
            added = list(new_annots) if isinstance(new_annots, generic.ArrayObject) else None
        else:
            added = _list_grows(old_annots, new_annots)
        if added is None or not _added_are_sig_widgets(added, resolver):
            return f"page object {idnum}: annotations changed other than by new signature widgets"
        return None
    if isinstance(obj, generic.ArrayObject) and old is not None:
        added = _list_grows(old, obj)  # an indirect /Annots array of a page
        if added is not None and _added_are_sig_widgets(added, resolver):
            return None
        return f"array object {idnum} changed"
    desc = kind or (obj.get("/Subtype") if isinstance(obj, generic.DictionaryObject) else None)
    what = "new" if old is None else "changed"
    return f"{what} object {idnum}" + (f" ({desc})" if desc else "")


def _judge_acroform(old: Any, new: Any, resolver: Any) -> str | None:
    if old is None or new is None:
        if new is not None and old is None:
            try:
                new_d = new.get_object()
                extra = set(map(str, new_d.keys())) - _ACROFORM_KEYS_OK
                if extra:
                    return f"a new form with {sorted(extra)}"
                return (
                    None if _added_are_sig_widgets(list(new_d.get("/Fields", [])), resolver) else "a new form"
                )
            except Exception:  # noqa: BLE001
                return "an unreadable new form"
        return "the form was removed"
    old_d, new_d = old.get_object(), new.get_object()
    diff = _differing_keys(old_d, new_d)
    bad = diff - _ACROFORM_KEYS_OK
    if bad:
        return f"form entries {sorted(bad)} changed"
    if "/Fields" in diff:
        added = _list_grows(_raw(old_d, "/Fields") or generic.ArrayObject(), _raw(new_d, "/Fields"))
        if added is None:
            # /Fields is indirect in one of them, or not a pure append
            try:
                added = _list_grows(old_d["/Fields"], new_d["/Fields"])
            except Exception:  # noqa: BLE001
                added = None
        if added is None or not _added_are_sig_widgets(added, resolver):
            return "the form's /Fields changed other than by new signature fields"
    return None


__all__ = ["Widget", "is_widget_visible", "later_revision_problems", "page_indices", "widgets_of"]
