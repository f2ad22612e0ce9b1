"""The county's decision status list (决定状态清单): how a verifier anywhere learns of 变更、撤回、撤销、注销.

A status list is a C2SP signed note, signed with the county's ledger log key (the key every verifier already
pins to check checkpoints and receipts; docs/verification.md, "Decision status")::

    yizhang.status-list/v1
    {"county":"兴国县","entries":[["兴江审批〔2026〕3号","revoked",null],…],"next_update":"…","this_update":"…","url":"…"}

    — seal.xingguo.gov.cn/ledger <base64(key id || Ed25519 signature)>

The first line separates it from checkpoints signed by the same key (a checkpoint's first line is the log's
origin, and a status list has no tree size or root): neither can be taken for the other. The body is one line
of JSON, keys sorted, entries sorted by document number. Like a CRL it lists only the exceptions: a document
number that is not listed was in force (``valid``) at ``this_update``. A list is current until
``next_update``; after that the county promises a newer one at ``url``.

The verifier parses and checks it here, with its own small signed-note reader (the code of the thing it
verifies is not trusted). Pure: no clock (``now`` is passed in), no I/O.

A decision's status is the ledger's :class:`ledger.DecisionStatus` (the changes: 变更、撤回、撤销、注销,
spelled as the ledger's entries and the signing requests store them), ``None`` when the decision is in force
as issued. The status list and the verification reports (``facts.status``) spell it in lower case, with
``valid``: that published spelling is :data:`STATUS_WIRE`, the one table between the two.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from ledger import DecisionStatus
from verifier._model import BindingFacts

STATUS_LIST_HEADER = "yizhang.status-list/v1"

#: A decision's status as the status list and the reports spell it (published: never change a spelling).
#: ``None``: in force as issued. After a final status (``ledger.FINAL_DECISION_STATUSES``) a decision has no
#: effect left: a list that says so is believed however old it is.
STATUS_WIRE: Mapping[DecisionStatus | None, str] = MappingProxyType(
    {
        None: "valid",
        DecisionStatus.CHANGED: "changed",  # 变更: replaced by a successor document
        DecisionStatus.WITHDRAWN: "withdrawn",  # 撤回
        DecisionStatus.REVOKED: "revoked",  # 撤销
        DecisionStatus.CANCELLED: "cancelled",  # 注销
    }
)
_FROM_WIRE: Mapping[str, DecisionStatus | None] = {wire: status for status, wire in STATUS_WIRE.items()}


def read_decision_status(spelling: object) -> DecisionStatus | None:
    """A status as Yizhang spells it anywhere, in any case: the wire's (``revoked``, ``valid``) or the
    records' (``REVOKED``, ``VALID``). ``None``: in force. :class:`ValueError` for anything else."""
    text = str(spelling).lower()
    if text not in _FROM_WIRE:
        raise ValueError(f"unknown decision status {str(spelling)[:40]!r}")
    return _FROM_WIRE[text]


class StatusListError(ValueError):
    """A status list that cannot be used; ``code`` is the verifier's reason code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class StatusAnswer:
    """What a status source says about one document. ``this_update``/``next_update`` only for a signed list
    (the database, asked in the county, is current by definition); ``url``: where a fresh list is."""

    status: DecisionStatus | None  # None: in force as issued
    successor: str | None = None
    this_update: datetime | None = None
    next_update: datetime | None = None
    url: str | None = None
    county: str | None = None


@dataclass(frozen=True)
class StatusList:
    county: str
    this_update: datetime
    next_update: datetime
    url: str | None
    entries: Mapping[str, tuple[DecisionStatus | None, str | None]] = field(default_factory=dict)

    @classmethod
    def open(cls, note: bytes | str, public_key: bytes, key_name: str | None) -> StatusList:
        """Check the signature with the county's log key, then parse. Raises :class:`StatusListError`
        (``STATUS_LIST_INVALID``) for anything but a well-formed list signed by that key."""
        from verifier._evidence import open_signed_note

        try:
            text = note.decode("utf-8") if isinstance(note, bytes) else note
            body = open_signed_note(text.encode("utf-8"), public_key, key_name)
        except (ValueError, UnicodeError) as exc:
            raise StatusListError("STATUS_LIST_INVALID", f"the status list's signature: {exc}") from exc
        try:
            return cls.parse_body(body)
        except (ValueError, KeyError, TypeError) as exc:
            raise StatusListError("STATUS_LIST_INVALID", f"the status list is malformed: {exc}") from exc

    @classmethod
    def parse_body(cls, body: str) -> StatusList:
        lines = body.split("\n")
        if len(lines) != 3 or lines[0] != STATUS_LIST_HEADER or lines[2] != "":
            raise ValueError(f"not a {STATUS_LIST_HEADER} note")
        obj = json.loads(lines[1])
        if not isinstance(obj, dict) or not isinstance(obj.get("entries"), list):
            raise ValueError("the body must be an object with an entries list")
        entries: dict[str, tuple[DecisionStatus | None, str | None]] = {}
        for item in obj["entries"]:
            number, state, successor = item
            if not isinstance(number, str) or not (successor is None or isinstance(successor, str)):
                raise ValueError("an entry is [number, status, successor or null]")
            if not isinstance(state, str) or state not in _FROM_WIRE:  # the wire's spelling only
                raise ValueError(f"unknown decision status {str(state)[:40]!r}")
            entries[number] = (_FROM_WIRE[state], successor)
        this_update = _aware(obj["this_update"])
        next_update = _aware(obj["next_update"])
        if next_update <= this_update:
            raise ValueError("next_update is not after this_update")
        url = obj.get("url")
        return cls(str(obj["county"]), this_update, next_update, str(url) if url else None, entries)

    def answer(self, binding: BindingFacts) -> StatusAnswer | None:
        """The list's answer for a document, by its bound document number; ``None`` without a number."""
        if not binding.document_number:
            return None
        state, successor = self.entries.get(binding.document_number, (None, None))
        return StatusAnswer(state, successor, self.this_update, self.next_update, self.url, self.county)


def status_list_body(
    county: str,
    this_update: datetime,
    next_update: datetime,
    url: str | None,
    entries: Iterable[tuple[str, DecisionStatus | str | None, str | None]],
) -> str:
    """The note text (unsigned) of a status list: the header line and one line of canonical JSON. A status
    is a :class:`ledger.DecisionStatus`, ``None`` (in force) or a spelling :func:`read_decision_status`
    reads."""
    rows = sorted(
        (
            [number, STATUS_WIRE[None if state is None else read_decision_status(state)], successor]
            for number, state, successor in entries
        ),
        key=lambda r: str(r[0]),
    )
    body = {
        "county": county,
        "entries": rows,
        "next_update": next_update.isoformat(),
        "this_update": this_update.isoformat(),
        "url": url,
    }
    line = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return f"{STATUS_LIST_HEADER}\n{line}\n"


def _aware(value: object) -> datetime:
    at = datetime.fromisoformat(str(value))
    if at.tzinfo is None:
        raise ValueError("times must carry their offset")
    return at
