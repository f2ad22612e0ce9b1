"""What a PDF's object graph says about how it will be shown: one pass over every object of every revision.

Shared by the sealing gate (``signer._pdfin.refuse_unsealable``: "seal the document as it is shown") and
the verifier. Pure: it reads a pyHanko ``PdfFileReader`` and returns findings; it never writes.

Why every object and not only the catalog's keys: a viewer honours an action or a script wherever the
object sits — an ``/OpenAction`` written as a direct dictionary, a ``/Names`` JavaScript tree written
inline, a Launch action inside an annotation that is itself a direct dictionary in ``/Annots``. Looking
at the top-level keys of indirect objects (the verifier's first ``_active_content``) misses all three.

The walk (:func:`walk_objects`):

1. every indirect object of every revision (``xrefs.explicit_refs_in_revision``): the current version
   from the reader's cache, the versions a later revision replaced by revision (a later update can point
   its xref back at those bytes, so they are part of what was signed);
2. inside each, the direct dictionaries, arrays and stream dictionaries, depth first with an explicit
   stack (no recursion on hostile nesting); references are not followed — their targets are visited in
   step 1, each once;
3. the trailer dictionary of every revision.

An object that cannot be read is recorded (``ObjectWalk.unreadable``) and skipped: the structure checks
judge broken files. ``max_nodes`` bounds the work (every dictionary entry and array item counts):
:class:`GraphBudgetExceeded` is raised before the walk goes far on a hostile file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

#: A normal sealed permit has ~100 objects and a few thousand nodes; 200k objects took 13 s and 990 MB.
DEFAULT_MAX_NODES = 2_000_000

#: Action types that run code, fetch or send data, play media or change what the viewer shows without a
#: change to the document: JavaScript, Launch (runs a program), ImportData (loads form data), SubmitForm
#: (sends it), ResetForm / Hide / SetOCGState (change field values, annotation visibility, layer state:
#: the page shown is no longer the page signed), Rendition / Movie / Sound / RichMediaExecute / GoTo3DView
#: (media and 3D players draw over the page), GoToE (opens an embedded document in place of this one).
#: Harmless, because they only navigate: GoTo (a destination in this file), GoToR and URI (another file
#: or address, which the viewer opens as such), Named (viewer commands), Thread, Trans.
RISKY_ACTIONS = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/ImportData",
        "/SubmitForm",
        "/ResetForm",
        "/Hide",
        "/SetOCGState",
        "/Rendition",
        "/Movie",
        "/Sound",
        "/RichMediaExecute",
        "/GoTo3DView",
        "/GoToE",
    }
)

#: Keys whose mere presence means scripts, triggered actions or XFA (a second form model the viewer
#: renders instead of the page content). ``/JavaScript`` is the ``/Names`` tree of document scripts.
RISKY_KEYS = ("/JS", "/JavaScript", "/AA", "/XFA", "/NeedsRendering")

#: Annotations that embed a media or 3D player: what they show is not the page's appearance stream.
RISKY_ANNOTATIONS = frozenset({"/RichMedia", "/Screen", "/3D", "/Movie", "/Sound"})

_HIDDEN_FLAG = 2  # annotation /F bit 2: Hidden (NoView, bit 6, still prints)


class GraphBudgetExceeded(ValueError):
    """The object graph is larger than the caller's budget (``max_nodes``)."""


class Visit(NamedTuple):
    """A dictionary met in the walk: the indirect object it lies in (``None``: a trailer), the path of
    keys and indexes under which it was found inside that object (``/Annots[0]/A``; ``None``: the object
    itself), the revision whose version this is, and whether that version is the current one (what a
    viewer reads today)."""

    ref: generic.Reference | None
    key: str | None
    revision: int
    current: bool
    obj: generic.DictionaryObject


@dataclass
class ObjectWalk:
    """Counters of a walk: nodes visited, objects read, and the ones that could not be read."""

    nodes: int = 0
    objects: int = 0
    unreadable: list[tuple[generic.Reference, int, str]] = field(default_factory=list)


#: A key path inside an object, kept as a chain: ``None`` for the object itself, else ``(parent, part)`` with
#: ``part`` a dictionary key (a name) or an array index (an ``int``). The text (``/Annots[0]/A``) is made
#: only for a visit handed out or a finding reported (:func:`_key_path`), not for every node met.
_Path = tuple[Any, Any] | None

#: Whether values of a type are walked into: 1 a dictionary (a stream too), 2 an array, 0 neither. Filled
#: per exact type as met, by ``issubclass`` (what ``isinstance`` answers for pyHanko's objects): one
#: dictionary lookup per node instead of an ``isinstance`` against two classes. The walk repeats the lookup
#: inline (``kinds.get(t)``, :func:`_kind` on a miss): a ``dict`` subclass with ``__missing__`` read as
#: ``kinds[t]`` scanned pades-bes.pdf ~20 % slower (Python 3.11 specialises subscripts of exact dicts only).
_KIND: dict[type, int] = {}


def _kind(t: type) -> int:
    k = _KIND.get(t)
    if k is None:
        k = 1 if issubclass(t, generic.DictionaryObject) else 2 if issubclass(t, generic.ArrayObject) else 0
        _KIND[t] = k
    return k


def _key_path(path: _Path) -> str | None:
    parts = []
    while path is not None:
        path, part = path
        parts.append(part)
    key = None
    for part in reversed(parts):
        if type(part) is int:  # an array index (a dictionary key is a name)
            key = f"{key}[{part}]" if key else f"[{part}]"
        else:
            key = f"{key}{part}" if key else part
    return key


def _where(ref: generic.Reference | None, path: _Path) -> str:
    base = "the trailer" if ref is None else f"object {ref.idnum} {ref.generation}"
    key = _key_path(path)
    if key is None:
        return base
    return f"{base} (direct, under {key})"


def walk_objects(
    reader: PdfFileReader,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
    stats: ObjectWalk | None = None,
    history: bool = True,
) -> Iterator[Visit]:
    """Every dictionary of the file (indirect, direct, stream dictionaries, trailers), each once.

    Raises :class:`GraphBudgetExceeded` when more than ``max_nodes`` nodes would be visited.
    ``stats`` (optional) receives the counts and the unreadable objects. ``history=False`` skips the
    versions a later revision replaced (they are read uncached: about 60 % of a sealed permit's walk).
    """
    # The walk's own generator, returned as it is: objects are read at the same depth of the Python
    # stack as ever (a 100 000-deep array fails to parse with a RecursionError whose text depends on it).
    return _walk(reader, max_nodes, stats, history, True)


def _dicts(
    reader: PdfFileReader, max_nodes: int, stats: ObjectWalk | None, history: bool
) -> Iterator[tuple[generic.Reference | None, _Path, int, bool, generic.DictionaryObject]]:
    """The walk with no :class:`Visit` made: ``(ref, path, revision, current, dictionary)``."""
    return _walk(reader, max_nodes, stats, history, False)


_FIRST = itemgetter(0)


def _walk(
    reader: PdfFileReader, max_nodes: int, stats: ObjectWalk | None, history: bool, visits: bool
) -> Iterator[Any]:
    st = stats if stats is not None else ObjectWalk()
    xrefs = reader.xrefs
    total = xrefs.total_revisions
    per_rev: list[tuple[int, list[tuple[tuple[int, int], generic.Reference]]]] = []
    count = 0
    for rev in range(total - 1, -1, -1):  # newest first: the first time a ref is met is its current version
        refs = sorted(
            [((r.idnum, r.generation), r) for r in xrefs.explicit_refs_in_revision(rev)], key=_FIRST
        )
        count += len(refs)
        if count > max_nodes:
            raise GraphBudgetExceeded(f"more than {max_nodes} objects")
        per_rev.append((rev, refs))
    seen: set[tuple[int, int]] = set()  # (idnum, generation): how a Reference hashes, only faster
    for rev, refs in per_rev:
        for key, ref in refs:
            current = key not in seen
            if not current and not history:
                continue
            seen.add(key)
            try:
                obj = reader.get_object(ref) if current else reader.get_object(ref, revision=rev)
            except Exception as exc:  # noqa: BLE001 - hostile input: record and go on
                st.unreadable.append((ref, rev, f"{type(exc).__name__}: {exc}"[:200]))
                continue
            st.objects += 1
            yield from _walk_one(obj, ref, rev, current, max_nodes, st, visits)
    for rev in range(total):
        try:
            trailer = reader.trailer.flatten(rev)
        except Exception:  # noqa: BLE001, S112 - a revision without a readable trailer: structure checks
            continue
        yield from _walk_one(trailer, None, rev, rev == total - 1, max_nodes, st, visits)


def _walk_one(
    root: Any,
    ref: generic.Reference | None,
    rev: int,
    current: bool,
    max_nodes: int,
    st: ObjectWalk,
    visits: bool,
) -> Iterator[Any]:
    """One object, depth first with an explicit stack. Every dictionary entry and array item is a node,
    counted when its container is taken apart; the budget is checked as each container is taken off the
    stack, as it always was (the same files exceed it at the same point)."""
    kinds = _KIND
    nodes = st.nodes
    stack: list[tuple[Any, _Path]] = [(root, None)]
    pop = stack.pop
    push = stack.append
    while stack:
        obj, path = pop()
        nodes += 1
        if nodes > max_nodes:
            st.nodes = nodes
            raise GraphBudgetExceeded(f"more than {max_nodes} nodes in the object graph")
        t = type(obj)
        kind = kinds.get(t)
        if kind is None:
            kind = _kind(t)
        if kind == 1:
            st.nodes = nodes
            yield Visit(ref, _key_path(path), rev, current, obj) if visits else (ref, path, rev, current, obj)
            before = len(stack)
            for k, v in obj.items():  # raw values: references stay references
                t = type(v)
                kind = kinds.get(t)
                if kind is None:
                    kind = _kind(t)
                if kind:
                    push((v, (path, k)))
            nodes += len(obj) - (len(stack) - before)  # the others are leaves: a node each
        elif kind == 2:
            for t in set(map(type, obj)):  # most arrays hold only numbers, names or references
                kind = kinds.get(t)
                if kind is None:
                    kind = _kind(t)
                if kind:
                    break
            else:
                nodes += len(obj)
                continue
            before = len(stack)
            for i, v in enumerate(obj):
                t = type(v)
                kind = kinds.get(t)
                if kind is None:
                    kind = _kind(t)
                if kind:
                    push((v, (path, i)))
            nodes += len(obj) - (len(stack) - before)
    st.nodes = nodes


# ---------------------------------------------------------------------------------------------------------
# the findings


@dataclass(frozen=True)
class GraphFindings:
    """What one pass found; each ``None`` or empty means nothing of that kind."""

    active_content: str | None = None
    optional_content: str | None = None
    sneaky_fields: tuple[str, ...] = ()
    needs_appearances: bool = False
    objects: int = 0
    unreadable: tuple[str, ...] = ()


def _name(v: Any) -> str | None:
    return str(v) if isinstance(v, generic.NameObject) else None


def _raw(d: generic.DictionaryObject, key: str) -> Any:
    return dict.get(d, key)  # the stored value: a reference stays a reference


def _deref(v: Any) -> Any:
    try:
        return v.get_object() if isinstance(v, generic.IndirectObject) else v
    except Exception:  # noqa: BLE001 - a dangling reference reads as nothing
        return None


#: The keys :func:`_active_kind` looks at before it can find anything (``/Type`` only qualifies the others):
#: a dictionary with none of them is passed by one set test.
_ACTIVE_KEYS = frozenset({*RISKY_KEYS, "/S", "/Subtype", "/OpenAction", "/Collection"})


def _active_kind(d: generic.DictionaryObject) -> str | None:
    """Scripts, risky actions, media annotations, XFA or a portfolio in one dictionary: what it is, without
    the place (the caller adds `` in {where}``, only for a finding)."""
    for key in RISKY_KEYS:
        if key in d:
            return key
    if _name(_raw(d, "/Type")) == "/StructElem":  # /S is the structure type there, not an action
        return None
    kind = _name(_raw(d, "/S"))
    if kind in RISKY_ACTIONS:
        return f"{kind} action"
    if kind == "/URI":
        uri = _deref(_raw(d, "/URI"))
        text = bytes(uri.original_bytes) if isinstance(uri, generic.TextStringObject) else b""
        if isinstance(uri, generic.ByteStringObject):
            text = bytes(uri)
        if text.strip().lower().startswith(b"javascript:"):
            return "javascript: URI"
    subtype = _name(_raw(d, "/Subtype"))
    if subtype in RISKY_ANNOTATIONS and ("/Rect" in d or _name(_raw(d, "/Type")) == "/Annot"):
        return f"{subtype} annotation"
    if "/OpenAction" in d:
        action = _deref(_raw(d, "/OpenAction"))
        # An array is a destination (show this page); a dictionary is an action run when the file opens.
        if isinstance(action, generic.DictionaryObject) and _name(_raw(action, "/S")) != "/GoTo":
            return f"/OpenAction {_name(_raw(action, '/S'))}"
    if "/Collection" in d and _name(_raw(d, "/Type")) == "/Catalog":
        # A portfolio: the viewer shows the collection's attachments, not this document's pages.
        return "/Collection (portfolio)"
    return None


def _ocmd_problem(d: generic.DictionaryObject, ref: generic.Reference | None, path: _Path) -> str | None:
    """A membership dictionary that hides content while every layer is ON shows it once one is OFF."""
    policy = _name(_raw(d, "/P"))
    if policy in ("/AllOff", "/AnyOff"):
        return f"optional-content membership /P {policy} in {_where(ref, path)}"
    if "/VE" in d:
        return f"optional-content visibility expression /VE in {_where(ref, path)}"
    return None


def _ocg_problem(d: generic.DictionaryObject, ref: generic.Reference | None, path: _Path) -> str | None:
    usage = _deref(_raw(d, "/Usage"))
    if isinstance(usage, generic.DictionaryObject):
        for key in ("/Print", "/View", "/Export", "/Zoom"):
            if key in usage:
                return f"optional-content group with /Usage {key} in {_where(ref, path)}"
    intent = _deref(_raw(d, "/Intent"))
    if not _intent_is_view(intent):
        return f"optional-content group with /Intent {intent} in {_where(ref, path)}"
    return None


def _intent_is_view(intent: Any) -> bool:
    if intent is None:
        return True
    if isinstance(intent, generic.ArrayObject):
        return all(_name(_deref(x)) == "/View" for x in intent)
    return _name(intent) == "/View"


def _nonempty(v: Any) -> bool:
    v = _deref(v)
    return isinstance(v, generic.ArrayObject) and len(v) > 0


def _oc_properties_problem(root: generic.DictionaryObject) -> str | None:
    """The catalog's ``/OCProperties``: only every layer ON, one configuration, the View intent pass."""
    props = _deref(_raw(root, "/OCProperties"))
    if props is None:
        return None
    if not isinstance(props, generic.DictionaryObject):
        return "/OCProperties is not a dictionary"
    if _nonempty(_raw(props, "/Configs")):
        return "/OCProperties has alternate /Configs"
    config = _deref(_raw(props, "/D"))
    if config is None:
        return None
    if not isinstance(config, generic.DictionaryObject):
        return "/OCProperties /D is not a dictionary"
    base = _name(_deref(_raw(config, "/BaseState")))
    if base not in (None, "/ON"):
        return f"/OCProperties /D /BaseState {base}"
    if _nonempty(_raw(config, "/OFF")):
        return "/OCProperties /D turns layers OFF"
    if _nonempty(_raw(config, "/AS")):
        return "/OCProperties /D has /AS (layer state set by viewing, printing or exporting)"
    intent = _deref(_raw(config, "/Intent"))
    if not _intent_is_view(intent):
        return f"/OCProperties /D /Intent {intent}"
    return None


def widget_visible(w: Any) -> bool:
    """Whether an annotation (a widget) can show on screen or on paper: the one rule for both the sealing
    gate (sneaky fields) and the verifier (widgets signed after the seal, ``_verify_after_seal``).

    Invisible only with the Hidden flag or a zero-area ``/Rect``. NoView is not enough: such a widget is
    still printed. A ``/Rect`` that cannot be read counts as visible (fail closed)."""
    w = _deref(w)
    if not isinstance(w, generic.DictionaryObject):
        return False
    try:
        flags = int(_deref(_raw(w, "/F")) or 0)
    except (TypeError, ValueError):
        flags = 0
    if flags & _HIDDEN_FLAG:
        return False
    rect = _deref(_raw(w, "/Rect"))
    try:
        if not isinstance(rect, generic.ArrayObject) or len(rect) != 4:
            raise ValueError("not four numbers")
        x0, y0, x1, y1 = (float(_deref(x)) for x in rect)
    except (TypeError, ValueError):
        return True
    return abs(x1 - x0) * abs(y1 - y0) > 1e-6


def _sneaky_field(d: generic.DictionaryObject, ref: generic.Reference | None, path: _Path) -> str | None:
    """An unsigned signature field with a visible widget (itself or a kid): it can be filled after sealing
    with an appearance of the filler's choosing (Mainka et al., "Sneaky Signature Attack", S&P 2021)."""
    if _name(_raw(d, "/FT")) != "/Sig" or _deref(_raw(d, "/V")) is not None:
        return None
    kids = _deref(_raw(d, "/Kids"))
    widgets = list(kids) if isinstance(kids, generic.ArrayObject) else [d]
    if not any(widget_visible(w) for w in widgets):
        return None
    title = _deref(_raw(d, "/T"))
    label = str(title) if isinstance(title, generic.TextStringObject | generic.ByteStringObject) else "?"
    return f"{label} ({_where(ref, path)})"


def scan_graph(
    reader: PdfFileReader, *, max_nodes: int = DEFAULT_MAX_NODES, history: bool = True
) -> GraphFindings:
    """All the findings in one pass over the object graph (see the module docstring).

    Only current versions count for optional content and signature fields (what a viewer shows now);
    active content counts in any version of any object (a later xref can bring it back).
    """
    stats = ObjectWalk()
    active: str | None = None
    oc: str | None = None
    sneaky: list[str] = []
    active_keys = _ACTIVE_KEYS
    for ref, path, _rev, current, d in _dicts(reader, max_nodes, stats, history):
        if active is None and not active_keys.isdisjoint(d):
            found = _active_kind(d)
            if found is not None:
                active = f"{found} in {_where(ref, path)}"
        if not current or ref is None:
            continue
        if oc is None:
            kind = _name(_raw(d, "/Type"))
            if kind == "/OCG":
                oc = _ocg_problem(d, ref, path)
            elif kind == "/OCMD":
                oc = _ocmd_problem(d, ref, path)
        if "/FT" in d:
            problem = _sneaky_field(d, ref, path)
            if problem is not None:
                sneaky.append(problem)
    root = reader.root
    if oc is None:
        oc = _oc_properties_problem(root)
    return GraphFindings(
        active_content=active,
        optional_content=oc,
        sneaky_fields=tuple(sneaky),
        needs_appearances=needs_appearances(reader),
        objects=stats.objects,
        unreadable=tuple(
            f"object {r.idnum} {r.generation} (revision {rev}): {why}" for r, rev, why in stats.unreadable
        ),
    )


def active_content(
    reader: PdfFileReader, *, max_nodes: int = DEFAULT_MAX_NODES, history: bool = True
) -> str | None:
    """Scripts, risky actions, media annotations, XFA or a portfolio anywhere in the file, in any form
    (direct or indirect, any revision): a short detail naming the object and key, or ``None``.

    Not reported: ``/EmbeddedFiles``. An attachment is data the seal covers; it is shown only through a
    GoToE action or a ``/Collection`` portfolio, and both are reported."""
    for ref, path, _rev, _current, d in _dicts(reader, max_nodes, None, history):
        if not _ACTIVE_KEYS.isdisjoint(d):
            found = _active_kind(d)
            if found is not None:
                return f"{found} in {_where(ref, path)}"
    return None


def optional_content_problem(reader: PdfFileReader, *, max_nodes: int = DEFAULT_MAX_NODES) -> str | None:
    """Optional content whose visibility differs between screen, print and export, by zoom, or by
    toggling (a group OFF, auto-state, alternate configurations, a non-View intent, a membership dict
    that hides content while every group is ON). Layers all ON with no usage: ``None``."""
    return scan_graph(reader, max_nodes=max_nodes).optional_content


def sneaky_fields(reader: PdfFileReader, *, max_nodes: int = DEFAULT_MAX_NODES) -> list[str]:
    """Unsigned signature fields with a visible widget (:func:`widget_visible`)."""
    return list(scan_graph(reader, max_nodes=max_nodes).sneaky_fields)


def needs_appearances(reader: PdfFileReader) -> bool:
    """``/NeedAppearances true`` in the AcroForm: the viewer redraws fields its own way, not as signed."""
    try:
        form = _deref(_raw(reader.root, "/AcroForm"))
        if not isinstance(form, generic.DictionaryObject):
            return False
        value = _deref(_raw(form, "/NeedAppearances"))
    except Exception:  # noqa: BLE001 - an unreadable AcroForm is the structure checks' business
        return False
    return isinstance(value, generic.BooleanObject) and bool(value)


__all__ = [
    "DEFAULT_MAX_NODES",
    "GraphBudgetExceeded",
    "GraphFindings",
    "ObjectWalk",
    "Visit",
    "active_content",
    "needs_appearances",
    "optional_content_problem",
    "scan_graph",
    "sneaky_fields",
    "walk_objects",
    "widget_visible",
]
