"""The audit's streaming check, shared by the database audit and the offline check of an export.

Feeds on rows in index order and keeps O(log n) state: the previous entry's hash and the tree's compact range.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from ledger import _entry, _merkle

_sha256 = hashlib.sha256


@dataclass(frozen=True)
class AuditProblem:
    code: str
    index: int | None
    message: str


class AuditProblemDict(TypedDict):
    code: str
    index: int | None
    message: str


class AuditReportDict(TypedDict):
    """:meth:`AuditReport.to_dict`: the report as JSON (CLI, API, public page)."""

    ok: bool
    size: int
    root: str
    first_bad_index: int | None
    problems: list[AuditProblemDict]
    checked_from: int
    checkpoints_checked: int


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    size: int
    root: str
    first_bad_index: int | None
    problems: list[AuditProblem] = field(default_factory=list)
    checked_from: int = 0
    checkpoints_checked: int = 0

    def to_dict(self) -> AuditReportDict:
        return {
            "ok": self.ok,
            "size": self.size,
            "root": self.root,
            "first_bad_index": self.first_bad_index,
            "problems": [{"code": p.code, "index": p.index, "message": p.message} for p in self.problems],
            "checked_from": self.checked_from,
            "checkpoints_checked": self.checkpoints_checked,
        }


class ChainChecker:
    """Per-row checks of chain and tree; compares recomputed roots at the given checkpoint sizes.

    ``leaf_at_append`` (optional) returns the leaf hash stored when entry ``i`` was appended, so that a broken
    link can be blamed on the entry that was rewritten rather than on its successor.
    """

    def __init__(
        self,
        checkpoints: Sequence[tuple[int, bytes]],
        *,
        start: int = 0,
        prev: bytes = _entry.ZERO_HASH,
        compact: _merkle.CompactRange | None = None,
        deep: bool = False,
        leaf_at_append: Callable[[int], bytes | None] | None = None,
    ) -> None:
        self.problems: list[AuditProblem] = []
        self.expected = start
        self.prev = prev
        self.cr = compact or _merkle.CompactRange()
        self.deep = deep
        self.leaf_at_append = leaf_at_append
        self._pending = sorted((s, r) for s, r in checkpoints if s > start)
        self._pi = 0
        self._next_cp = self._pending[0][0] if self._pending else -1

    def bad(self, code: str, index: int | None, message: str) -> None:
        self.problems.append(AuditProblem(code, index, message))

    def row(self, idx: int, encoded: bytes, entry_hash: bytes | None, prev_hash: bytes | None) -> None:
        # The audit's hot path (10**6 calls): plain == on public hashes (no secret, so no timing concern),
        # the header sliced by hand, the compact range updated inline.
        if idx != self.expected:
            if idx > self.expected:
                self.bad("LEDGER_INDEX_GAP", self.expected, f"entries {self.expected}..{idx - 1} are missing")
            else:
                self.bad("LEDGER_INDEX_DUPLICATE", idx, f"entry {idx} appears again")
            self.expected = idx
        h = _sha256(b"\x00" + encoded).digest()
        if entry_hash is not None and h != entry_hash:
            self.bad("LEDGER_ENTRY_HASH_MISMATCH", idx, "stored entry hash does not match the entry's bytes")
        if len(encoded) > _entry.HEADER_SIZE and encoded[0] == _entry.VERSION:
            header_index = int.from_bytes(encoded[1:9], "big")
            header_prev = encoded[9:41]
        else:
            self.bad("LEDGER_ENTRY_MALFORMED", idx, "entry header is not version 1")
            header_index, header_prev = idx, self.prev
        if header_index != idx:
            self.bad(
                "LEDGER_ENTRY_INDEX_MISMATCH", idx, f"entry says index {header_index}: moved or reordered"
            )
        if header_prev != self.prev:
            stored = self.leaf_at_append(idx - 1) if self.leaf_at_append and idx > 0 else None
            if stored is not None and stored != self.prev:
                self.bad(
                    "LEDGER_ENTRY_REWRITTEN", idx - 1, "entry differs from the leaf hashed at append time"
                )
            self.bad("LEDGER_CHAIN_BROKEN", idx, "entry does not commit to the previous entry's hash")
        if prev_hash is not None and prev_hash != header_prev:
            self.bad("LEDGER_ROW_MISMATCH", idx, "prev_hash column disagrees with the entry")
        if self.deep:
            try:
                _entry.decode(encoded)
            except _entry.EntryError as exc:
                self.bad("LEDGER_ENTRY_MALFORMED", idx, str(exc))
        self.prev = h
        cr = self.cr
        hashes = cr.hashes
        n = cr.size
        while n & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            n >>= 1
        hashes.append(h)
        cr.size += 1
        self.expected += 1
        if self._next_cp == cr.size:
            self._check_checkpoints()

    def _check_checkpoints(self) -> None:
        pending, cr = self._pending, self.cr
        while self._pi < len(pending) and pending[self._pi][0] <= cr.size:
            size, root = pending[self._pi]
            if size == cr.size and not hmac.compare_digest(cr.root(), root):
                self.bad(
                    "LEDGER_CHECKPOINT_MISMATCH",
                    size,
                    f"checkpoint at size {size} does not match the recomputed root",
                )
            self._pi += 1
        self._next_cp = pending[self._pi][0] if self._pi < len(pending) else -1

    def report(self, start: int, checkpoints_checked: int) -> AuditReport:
        indices = [p.index for p in self.problems if p.index is not None]
        return AuditReport(
            ok=not self.problems,
            size=self.cr.size,
            root=self.cr.root().hex(),
            first_bad_index=min(indices) if indices else None,
            problems=list(self.problems),
            checked_from=start,
            checkpoints_checked=checkpoints_checked,
        )


def check_checkpoint_chain(
    checker: ChainChecker,
    checkpoints: Sequence[tuple[int, bytes]],
    consistency: Callable[[int, int], list[bytes]],
) -> None:
    """Consecutive checkpoints must be consistent: a proof (from stored nodes) verified against both roots."""
    ordered = sorted(checkpoints)
    for (s1, r1), (s2, r2) in zip(ordered, ordered[1:], strict=False):
        if s2 > checker.cr.size:
            break
        try:
            _merkle.verify_consistency(s1, s2, consistency(s1, s2), r1, r2)
        except Exception as exc:  # noqa: BLE001 - any failure to prove is the finding itself
            checker.bad(
                "LEDGER_CHECKPOINT_INCONSISTENT", s2, f"checkpoints {s1} and {s2} are not consistent: {exc}"
            )
