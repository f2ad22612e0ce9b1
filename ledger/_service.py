"""The ledger service: appends inside the caller's transaction, checkpoints, receipts, proofs, the audit."""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Engine,
    Table,
    Update,
    bindparam,
    create_engine,
    func,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from core.db import BoundStatement, execute_and_commit
from core.errors import BadInput, Conflict, LedgerIntegrityError, NotFound, VerificationError
from ledger import _entry, _merkle
from ledger._audit import AuditProblem, AuditReport, ChainChecker, check_checkpoint_chain
from ledger._entry import EntryFields, EntryKind
from ledger._note import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    Receipt,
    sign_checkpoint,
    verify_checkpoint,
    verify_receipt,
)
from ledger._stamps import RENEWAL, STAMP, CheckpointStamp, renewal_imprint, stamp_imprint
from ledger._storage import checkpoints_t, entries_t, head_t, node_id, nodes_t, personal_t, stamps_t

AUDIT_CHUNK = 5000
_PAGE = (
    "SELECT idx, encoded, entry_hash, prev_hash FROM ledger_entries WHERE idx >= {} ORDER BY idx LIMIT 5000"
)
_PAGE_PG, _PAGE_SQLITE = _PAGE.format("%s"), _PAGE.format("?")
SALT_BYTES = 16
_ONE_STATEMENT_ROWS = 100  # entries per append written in one statement on PostgreSQL (bind parameters)

_HEAD = select(head_t.c.size, head_t.c.last_hash, head_t.c.range_blob).where(head_t.c.id == 1)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
#: The head row moved by an append: bind parameters ``h_*`` (``h_was``: the size read under the lock).
_MOVE_HEAD = (
    update(head_t)
    .where(head_t.c.id == 1, head_t.c.size == bindparam("h_was"))
    .values(
        size=bindparam("h_size"),
        last_hash=bindparam("h_last_hash"),
        range_blob=bindparam("h_range_blob"),
        updated_at=bindparam("h_updated_at"),
    )
)
_ENTRY_COLUMNS = (
    "idx",
    "kind",
    "seal_id",
    "at",
    "encoded",
    "entry_hash",
    "prev_hash",
    "idempotency_key",
    "created_at",
)
_NODE_COLUMNS = ("id", "hash")
_PERSONAL_COLUMNS = ("entry_idx", "field", "salt", "value")


@functools.lru_cache(maxsize=256)
def _append_statement(entries: int, nodes: int, personal: int, returning: bool) -> Update:
    """PostgreSQL: an append in one statement, the row inserts as data-modifying CTEs of the head's
    UPDATE; row ``i`` of a table has bind parameters ``e{i}_<column>`` (entries), ``n{i}_`` (nodes),
    ``p{i}_`` (personal data). One object per shape, so SQLAlchemy computes its cache key once."""

    def insert_cte(table: Table, prefix: str, columns: tuple[str, ...], i: int) -> CTE:
        values: dict[str, BindParameter[Any]] = {c: bindparam(f"{prefix}{i}_{c}") for c in columns}
        return table.insert().values(values).cte(f"{prefix}{i}")

    statement = _MOVE_HEAD.add_cte(
        *(insert_cte(entries_t, "e", _ENTRY_COLUMNS, i) for i in range(entries)),
        *(insert_cte(nodes_t, "n", _NODE_COLUMNS, i) for i in range(nodes)),
        *(insert_cte(personal_t, "p", _PERSONAL_COLUMNS, i) for i in range(personal)),
    )
    return statement.returning(head_t.c.id) if returning else statement


def _numbered(prefix: str, rows: list[dict[str, object]]) -> dict[str, object]:
    """Rows' values under :func:`_append_statement`'s bind parameter names."""
    return {f"{prefix}{i}_{column}": value for i, row in enumerate(rows) for column, value in row.items()}


@dataclass(frozen=True)
class LedgerEntry:
    index: int
    kind: EntryKind
    at: datetime
    body: dict[str, _entry.JsonValue]
    personal: dict[str, str]  # field -> commitment (never clear text)
    entry_hash: bytes
    prev_hash: bytes
    idempotency_key: str
    encoded: bytes

    @classmethod
    def from_encoded(cls, encoded: bytes, idempotency_key: str) -> LedgerEntry:
        d = _entry.decode(encoded)
        return cls(
            index=d.index,
            kind=d.kind,
            at=d.at,
            body=d.body,
            personal=d.personal,
            entry_hash=_merkle.leaf_hash(encoded),
            prev_hash=d.prev,
            idempotency_key=idempotency_key,
            encoded=encoded,
        )

    @property
    def names_people(self) -> bool:
        """The body holds a person's name or free text in clear: an entry logged before those fields were
        salted (issue 21). Such an entry is not shown to the public."""
        return bool(_entry.split_salted(self.kind, self.body)[1])


@dataclass(frozen=True)
class UsageRow:
    """One line of the usage ledger (使用登记台账)."""

    index: int
    date: str
    matter: str
    reason: str
    approver: str
    user: str
    count: int
    cert_serial: str
    document_number: str
    document_kind: str
    stage: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """The county's signing ledger.

    ``note_signer`` signs checkpoints (a key file or the token, chosen by the caller); ``None`` for a
    reader (the auditor), who passes ``verifiers`` (public keys) instead.
    """

    def __init__(
        self,
        engine: Engine,
        note_signer: NoteSigner | None = None,
        *,
        origin: str | None = None,
        verifiers: Sequence[NoteVerifier] = (),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.engine = engine
        self.signer = note_signer
        self.verifiers = list(verifiers)
        if note_signer is not None:
            self.verifiers.append(NoteVerifier.for_signer(note_signer))
        if origin is None:
            if note_signer is None:
                raise BadInput("LEDGER_ORIGIN_INVALID", "a ledger without a signer needs its origin")
            origin = note_signer.name
        self.origin = origin
        self.clock = clock
        self._pg = engine.dialect.name == "postgresql"
        # SQLite engines from core.db take the write lock at BEGIN; reads (the audit above all) must not block
        # appends, and must work on a read-only file (``?mode=ro&uri=true``), so they get a plain engine.
        self.read_engine = (
            create_engine(engine.url, connect_args={"timeout": 30, "check_same_thread": False})
            if engine.dialect.name == "sqlite"
            else engine
        )

    def close(self) -> None:
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    # --- appends ----------------------------------------------------------------------------------------

    def append(
        self,
        session: Session,
        entry_fields: EntryFields,
        idempotency_key: str,
        *,
        fresh: bool = False,
        then: Callable[[list[LedgerEntry]], Sequence[BoundStatement]] | None = None,
        last: bool = False,
    ) -> LedgerEntry:
        """Log one event inside the caller's transaction; a retried ``idempotency_key`` returns the first."""
        return self.append_many(
            session, [(entry_fields, idempotency_key)], fresh=fresh, then=then, last=last
        )[0]

    def append_many(
        self,
        session: Session,
        items: Sequence[tuple[EntryFields, str]],
        *,
        fresh: bool = False,
        then: Callable[[list[LedgerEntry]], Sequence[BoundStatement]] | None = None,
        last: bool = False,
    ) -> list[LedgerEntry]:
        """Log a batch in one critical section (one lock of the head row), inside the caller's transaction.

        1. validate and normalise every body before taking the lock (errors cost no lock time);
        2. lock the head row (PostgreSQL: SELECT ... FOR UPDATE; SQLite: the BEGIN IMMEDIATE already held);
        3. look up the idempotency keys again under the lock: a key already logged returns its entry;
        4. encode each new entry against the previous hash, extend the compact range, insert entries,
           the perfect nodes they complete, personal data; move the head. All commit with the caller.

        Every signing in the county queues on the head row's lock, and its holder is a Python thread that
        shares its process's GIL with signings in progress: each round trip under the lock costs far more
        than the database's own work (measured 2026-12-05: the lock held 16 ms on average at saturation,
        ~2 ms per statement). So on PostgreSQL step 4 is one statement (the inserts as data-modifying CTEs
        of the head's UPDATE), and ``fresh=True`` skips step 3 for a caller that knows no entry has its keys
        (the signer settling a number it alone moved from RESERVED to USED): the unique index on the key
        still refuses a duplicate (``IntegrityError``), and the caller's transaction fails.
        ``then(entries)`` gives the caller's own writes that need the entries' indexes (INSERT/UPDATE
        statements built once, with their values: :data:`core.db.BoundStatement`; nothing to read back);
        they run right after the append, in the same round trip with ``last`` on PostgreSQL. It is called
        once new entries are made, not when every key was already logged.
        ``last=True`` says this append is the caller's last write: on PostgreSQL its statement, the
        caller's writes and the COMMIT go in one round trip (:func:`core.db.execute_and_commit`), so the
        head lock is released by the server, not after this thread is scheduled again; the caller's own
        commit then has nothing to do.
        """
        if not items:
            return []
        prepared = []
        for fields, key in items:
            if not isinstance(key, str) or not 1 <= len(key) <= 200:
                raise BadInput("LEDGER_IDEMPOTENCY_KEY_INVALID", "an idempotency key has 1..200 characters")
            try:
                kind = EntryKind(fields.kind)
                public, salted = _entry.split_salted(kind, fields.body)
                if salted.keys() & fields.personal.keys():
                    raise _entry.EntryError("LEDGER_ENTRY_INVALID", "a field is both in body and personal")
                personal = {**salted, **fields.personal}
                body = _entry.normalize_body(kind, public, personal.keys())
                _entry.format_time(fields.at)
            except (_entry.EntryError, ValueError) as exc:
                raise BadInput("LEDGER_ENTRY_INVALID", str(exc), "台账条目无效") from exc
            prepared.append((kind, personal, fields, body, key))

        head = session.execute(_HEAD_FOR_UPDATE if self._pg else _HEAD).one()
        size, prev, cr = (
            head.size,
            head.last_hash,
            _merkle.CompactRange.from_bytes(head.size, head.range_blob),
        )

        keys = [] if fresh else list({item[-1] for item in prepared})
        existing: dict[str, LedgerEntry] = {}
        for i in range(0, len(keys), 500):
            rows = session.execute(
                select(entries_t.c.idempotency_key, entries_t.c.encoded, entries_t.c.kind).where(
                    entries_t.c.idempotency_key.in_(keys[i : i + 500])
                )
            )
            for row in rows:
                existing[row.idempotency_key] = LedgerEntry.from_encoded(row.encoded, row.idempotency_key)

        now = self.clock()
        out: list[LedgerEntry] = []
        entry_rows: list[dict[str, object]] = []
        node_rows: list[dict[str, object]] = []
        personal_rows: list[dict[str, object]] = []
        for kind, personal, fields, body, key in prepared:
            if key in existing:
                if existing[key].kind is not kind:
                    raise Conflict(
                        "LEDGER_IDEMPOTENCY_CONFLICT",
                        f"idempotency key {key!r} was used for a {existing[key].kind.value} entry",
                        "幂等键已用于其他类型的条目",
                    )
                out.append(existing[key])
                continue
            commitments = {}
            for name, value in sorted(personal.items()):
                salt = os.urandom(SALT_BYTES)
                try:
                    commitments[name] = _entry.commit_personal(salt, value)
                except _entry.EntryError as exc:
                    raise BadInput("LEDGER_ENTRY_INVALID", str(exc)) from exc
                personal_rows.append({"entry_idx": size, "field": name, "salt": salt, "value": value})
            try:
                encoded = _entry.encode(size, prev, kind, fields.at, body, commitments)
            except _entry.EntryError as exc:
                raise BadInput("LEDGER_ENTRY_INVALID", str(exc), "台账条目无效") from exc
            h = _merkle.leaf_hash(encoded)
            for level, index, node in cr.append(h):
                node_rows.append({"id": node_id(level, index), "hash": node})
            seal_id = body.get("seal_id")
            entry_rows.append(
                {
                    "idx": size,
                    "kind": kind.value,
                    "seal_id": seal_id if isinstance(seal_id, str) else None,
                    "at": fields.at.astimezone(UTC),
                    "encoded": encoded,
                    "entry_hash": h,
                    "prev_hash": prev,
                    "idempotency_key": key,
                    "created_at": now,
                }
            )
            entry = LedgerEntry(size, kind, fields.at, body, commitments, h, prev, key, encoded)
            existing[key] = entry
            out.append(entry)
            size, prev = size + 1, h

        if entry_rows:
            head_values = {
                "h_was": head.size,
                "h_size": size,
                "h_last_hash": prev,
                "h_range_blob": cr.to_bytes(),
                "h_updated_at": now,
            }
            also = list(then(out)) if then is not None else []
            if self._pg and len(entry_rows) <= _ONE_STATEMENT_ROWS:
                # One round trip: the inserts run as data-modifying CTEs of the head's UPDATE (PostgreSQL
                # runs each exactly once, referenced or not), the caller's writes and the COMMIT pipelined
                # with it. The statement is built once per shape (rows per table) with bind parameters:
                # built per signing, building it and walking it for its cache key cost ~1 ms of CPU under
                # the lock (and a multi-VALUES form could not be cached at all: ~8 % of a worker's CPU).
                statement = _append_statement(len(entry_rows), len(node_rows), len(personal_rows), not last)
                params = {
                    **head_values,
                    **_numbered("e", entry_rows),
                    **_numbered("n", node_rows),
                    **_numbered("p", personal_rows),
                }
                if last:
                    # Nothing read back: under the lock the head cannot have moved (the UPDATE's WHERE
                    # is a guard for the other path), and an error of the statement fails the COMMIT.
                    execute_and_commit(session, (statement, params), *also)
                    return out
                moved = len(session.execute(statement, params).all())
            else:
                session.execute(entries_t.insert(), entry_rows)
                session.execute(nodes_t.insert(), node_rows)
                if personal_rows:
                    session.execute(personal_t.insert(), personal_rows)
                moved = getattr(session.execute(_MOVE_HEAD, head_values), "rowcount", 1)
            for write, values in also:
                session.execute(write, dict(values))
            if moved != 1:  # cannot happen under the lock; refuse rather than fork
                raise LedgerIntegrityError("LEDGER_HEAD_MOVED", "the ledger head moved during an append")
        return out

    # --- reading ----------------------------------------------------------------------------------------

    def size(self, conn: Connection | Session | None = None) -> int:
        with self._reader(conn) as c:
            return int(c.execute(select(head_t.c.size).where(head_t.c.id == 1)).scalar_one())

    def get(self, index: int, conn: Connection | Session | None = None) -> LedgerEntry:
        with self._reader(conn) as c:
            row = c.execute(
                select(entries_t.c.encoded, entries_t.c.idempotency_key).where(entries_t.c.idx == index)
            ).one_or_none()
        if row is None:
            raise NotFound(
                "LEDGER_INDEX_OUT_OF_RANGE", f"no ledger entry {index}", f"台账中没有第 {index} 条"
            )
        return LedgerEntry.from_encoded(row.encoded, row.idempotency_key)

    def entries(
        self,
        *,
        kinds: Sequence[EntryKind] | None = None,
        seal_ids: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[LedgerEntry]:
        """Entries newest first, filtered on the indexed columns: kinds, seals, [start, end) (aware times),
        indices below ``before`` (the next page). An empty ``seal_ids`` matches nothing."""
        q = select(entries_t.c.encoded, entries_t.c.idempotency_key)
        if kinds is not None:
            q = q.where(entries_t.c.kind.in_([k.value for k in kinds]))
        if seal_ids is not None:
            q = q.where(entries_t.c.seal_id.in_(list(seal_ids)))
        if start is not None:
            q = q.where(entries_t.c.at >= start.astimezone(UTC))
        if end is not None:
            q = q.where(entries_t.c.at < end.astimezone(UTC))
        if before is not None:
            q = q.where(entries_t.c.idx < before)
        q = q.order_by(entries_t.c.idx.desc()).limit(max(1, min(limit, 500)))
        with self.read_engine.connect() as c:
            rows = c.execute(q).all()
        return [LedgerEntry.from_encoded(r.encoded, r.idempotency_key) for r in rows]

    def personal_data(self, index: int) -> dict[str, str]:
        """Clear text of an entry's personal data that has not been erased."""
        with self.read_engine.connect() as c:
            rows = c.execute(select(personal_t).where(personal_t.c.entry_idx == index)).all()
        return {r.field: r.value for r in rows}

    def opened(self, entries: Sequence[LedgerEntry]) -> list[dict[str, _entry.JsonValue]]:
        """Each entry's body with its committed fields opened from ``ledger_personal``: what the service's
        own readers (the usage ledger, a decision's history) show to accounts allowed to see the people.
        An erased or unreadable value (a SELECT-only auditor role without ``ledger_personal``) is left out;
        entries logged before personal fields were salted already hold them in ``body``."""
        clear: dict[int, dict[str, str]] = {}
        wanted = sorted({e.index for e in entries if e.personal})
        if wanted:
            try:
                with self.read_engine.connect() as c:
                    for i in range(0, len(wanted), 500):
                        q = select(personal_t.c.entry_idx, personal_t.c.field, personal_t.c.value).where(
                            personal_t.c.entry_idx.in_(wanted[i : i + 500])
                        )
                        for r in c.execute(q):
                            clear.setdefault(int(r.entry_idx), {})[r.field] = r.value
            except DBAPIError:
                clear = {}
        return [{**e.body, **clear.get(e.index, {})} for e in entries]

    def erase_personal_data(self, session: Session, index: int) -> int:
        """Erase clear text and salt for an entry (the commitment stays; the chain is untouched)."""
        result = session.execute(personal_t.delete().where(personal_t.c.entry_idx == index))
        return int(getattr(result, "rowcount", 0) or 0)

    def _reader(self, conn: Connection | Session | None) -> AbstractContextManager[Connection | Session]:
        from contextlib import nullcontext

        return nullcontext(conn) if conn is not None else self.read_engine.connect()

    def _nodes(self, c: Connection | Session, plan: _merkle.Plan) -> dict[_merkle.Node, bytes]:
        wanted = _merkle.plan_nodes(plan)
        ids = {node_id(*n): n for n in wanted}
        got: dict[_merkle.Node, bytes] = {}
        if ids:
            # On the driver's cursor: a proof is one indexed lookup, and SQLAlchemy's statement layer would
            # be most of its cost. Only ids (integers) are bound; the SQL text is constant per length.
            conn = c.connection() if isinstance(c, Session) else c
            raw = conn.connection.dbapi_connection
            assert raw is not None
            cur = raw.cursor()
            try:
                if self._pg:
                    cur.execute("SELECT id, hash FROM ledger_nodes WHERE id = ANY(%s)", (list(ids),))
                else:
                    marks = ",".join("?" * len(ids))
                    cur.execute(f"SELECT id, hash FROM ledger_nodes WHERE id IN ({marks})", list(ids))  # noqa: S608
                for nid, h in cur.fetchall():
                    got[ids[nid]] = bytes(h)
            finally:
                cur.close()
        if len(got) != len(wanted):
            missing = sorted(wanted - got.keys())[0]
            raise LedgerIntegrityError(
                "LEDGER_NODE_MISSING", f"tree node level {missing[0]} index {missing[1]} is missing"
            )
        return got

    def inclusion_proof(self, index: int, size: int, conn: Connection | Session | None = None) -> list[bytes]:
        if not 0 <= index < size:
            raise NotFound("LEDGER_INDEX_OUT_OF_RANGE", f"index {index} is not below {size}", "索引超出范围")
        with self._reader(conn) as c:
            return self._proof(c, _merkle.inclusion_plan(index, size), size)

    def consistency_proof(
        self, size1: int, size2: int, conn: Connection | Session | None = None
    ) -> list[bytes]:
        if not 0 < size1 <= size2:
            raise NotFound(
                "LEDGER_INDEX_OUT_OF_RANGE", f"no consistency proof {size1} -> {size2}", "范围无效"
            )
        with self._reader(conn) as c:
            return self._proof(c, _merkle.consistency_plan(size1, size2), size2)

    def _proof(self, c: Connection | Session, plan: _merkle.Plan, size: int) -> list[bytes]:
        # One query in the common case: a tree larger than the log shows up as missing nodes, and only
        # then is the head read to tell "past the end" from "a stored node is gone".
        try:
            return _merkle.materialize(plan, self._nodes(c, plan))
        except LedgerIntegrityError:
            head_size = self.size(c)
            if size > head_size:
                raise NotFound(
                    "LEDGER_INDEX_OUT_OF_RANGE",
                    f"tree size {size} is past the end of the ledger ({head_size})",
                    f"树大小 {size} 超出台账长度 {head_size}",
                ) from None
            raise

    def root(self, size: int | None = None, conn: Connection | Session | None = None) -> bytes:
        """The root at ``size`` (default: now), from stored perfect subtrees."""
        with self._reader(conn) as c:
            if size is None:
                size = self.size(c)
            if size == 0:
                return _merkle.EMPTY_ROOT
            plan = [_merkle.perfect_nodes(0, size)]
            return _merkle.materialize(plan, self._nodes(c, plan))[0]

    # --- checkpoints and receipts -----------------------------------------------------------------------

    def latest_checkpoint(self, conn: Connection | Session | None = None) -> Checkpoint | None:
        found = self.latest_checkpoint_signed(conn)
        return None if found is None else found[0]

    def latest_checkpoint_signed(
        self, conn: Connection | Session | None = None
    ) -> tuple[Checkpoint, datetime] | None:
        """The latest checkpoint and when it was signed (aware, UTC); ``None`` before the first."""
        with self._reader(conn) as c:
            row = c.execute(
                select(checkpoints_t).order_by(checkpoints_t.c.size.desc()).limit(1)
            ).one_or_none()
        if row is None:
            return None
        at: datetime = row.created_at
        if at.tzinfo is None:  # SQLite hands back naive datetimes; they were stored in UTC
            at = at.replace(tzinfo=UTC)
        return Checkpoint(row.origin, row.size, row.root, row.note), at

    def checkpoints(self, conn: Connection | Session | None = None) -> list[Checkpoint]:
        with self._reader(conn) as c:
            rows = c.execute(select(checkpoints_t).order_by(checkpoints_t.c.size)).all()
        return [Checkpoint(r.origin, r.size, r.root, r.note) for r in rows]

    def checkpoint(self) -> Checkpoint:
        """Sign the current tree head, unless the last checkpoint already is it.

        The log never signs two checkpoints that disagree:
        1. lock the head (appends wait) and compute the root from the head's compact range;
        2. same size as the last checkpoint: the roots must match, and the old one is returned;
        3. larger: a consistency proof built from the stored nodes must verify from the last checkpoint's
           root to this root, else nothing is signed (LEDGER_CHECKPOINT_INCONSISTENT);
        4. sign and store within the same transaction.
        """
        if self.signer is None:
            raise BadInput("LEDGER_NO_SIGNER", "this ledger has no log key to sign checkpoints")
        with Session(self.engine) as session, session.begin():
            head_q = select(head_t.c.size, head_t.c.range_blob).where(head_t.c.id == 1)
            if self._pg:
                head_q = head_q.with_for_update()
            head = session.execute(head_q).one()
            size = head.size
            if size == 0:
                raise Conflict("LEDGER_EMPTY", "the ledger is empty: nothing to checkpoint", "台账为空")
            root = _merkle.CompactRange.from_bytes(size, head.range_blob).root()
            last = self.latest_checkpoint(session)
            if last is not None:
                if last.size > size:
                    raise LedgerIntegrityError(
                        "LEDGER_TRUNCATED", f"ledger size {size} is below the last checkpoint {last.size}"
                    )
                if last.size == size:
                    if not hmac.compare_digest(last.root, root):
                        raise LedgerIntegrityError(
                            "LEDGER_CHECKPOINT_FORK", f"root at size {size} differs from the signed one"
                        )
                    return last
                try:
                    proof = self.consistency_proof(last.size, size, session)
                    _merkle.verify_consistency(last.size, size, proof, last.root, root)
                except (_merkle.ProofError, LedgerIntegrityError) as exc:
                    raise LedgerIntegrityError(
                        "LEDGER_CHECKPOINT_INCONSISTENT",
                        f"tree at {size} is not consistent with the checkpoint at {last.size}: {exc}",
                        "台账与上一个检查点不一致，拒绝签署",
                    ) from exc
            elif not hmac.compare_digest(self.root(size, session), root):
                raise LedgerIntegrityError("LEDGER_NODE_MISMATCH", "stored tree nodes disagree with the head")
            cp = sign_checkpoint(self.origin, size, root, self.signer)
            try:  # a token or key file that signs with another key must not slip a bad note into the log
                verify_checkpoint(cp.note, [NoteVerifier.for_signer(self.signer)], self.origin)
            except VerificationError as exc:
                raise LedgerIntegrityError(
                    "LEDGER_SIGNER_INVALID", "the log key's signature does not verify", "日志密钥签名无效"
                ) from exc
            session.execute(
                checkpoints_t.insert().values(
                    size=size,
                    root=root,
                    origin=self.origin,
                    key_name=self.signer.name,
                    note=cp.note,
                    created_at=self.clock(),
                )
            )
            return cp

    def receipt(self, index: int) -> Receipt:
        """A tlog-proof for entry ``index`` against the latest checkpoint (signing one if none covers it)."""
        size = self.size()
        if not 0 <= index < size:
            raise NotFound(
                "LEDGER_INDEX_OUT_OF_RANGE",
                f"no ledger entry {index} (size {size})",
                f"台账中没有第 {index} 条",
            )
        cp = self.latest_checkpoint()
        if cp is None or cp.size <= index:
            cp = self.checkpoint()
        with self.read_engine.connect() as c:
            entry = self.get(index, c)
            proof = self.inclusion_proof(index, cp.size, c)
        receipt = Receipt(index, entry.encoded, entry.entry_hash, tuple(proof), cp)
        # Never hand out a proof that does not verify.
        try:
            return verify_receipt(receipt.to_text(), self.verifiers, self.origin)
        except VerificationError as exc:
            raise LedgerIntegrityError(exc.code, f"own receipt does not verify: {exc.message_en}") from exc

    # --- evidence records: timestamps over checkpoints (issue 19 item 4b) ---------------------------------

    def checkpoint_of_size(self, size: int, conn: Connection | Session | None = None) -> Checkpoint | None:
        with self._reader(conn) as c:
            row = c.execute(select(checkpoints_t).where(checkpoints_t.c.size == size)).one_or_none()
        return Checkpoint(row.origin, row.size, row.root, row.note) if row is not None else None

    def stamps(self, conn: Connection | Session | None = None) -> list[CheckpointStamp]:
        """Every link of every evidence chain, in the order they were made."""
        with self._reader(conn) as c:
            rows = c.execute(select(stamps_t).order_by(stamps_t.c.id)).all()
        return [CheckpointStamp.from_row(r) for r in rows]

    def stamp_covering(self, index: int, conn: Connection | Session | None = None) -> CheckpointStamp | None:
        """The first STAMP whose checkpoint contains entry ``index`` (the earliest proof of its existence)."""
        with self._reader(conn) as c:
            row = c.execute(
                select(stamps_t)
                .where(stamps_t.c.kind == STAMP, stamps_t.c.size > index)
                .order_by(stamps_t.c.size)
                .limit(1)
            ).one_or_none()
        return CheckpointStamp.from_row(row) if row is not None else None

    def evidence_chain(
        self, first: CheckpointStamp, conn: Connection | Session | None = None
    ) -> list[CheckpointStamp]:
        """``first`` and the renewals that follow it, in order."""
        chain = [first]
        with self._reader(conn) as c:
            while True:
                row = c.execute(select(stamps_t).where(stamps_t.c.prev_id == chain[-1].id)).one_or_none()
                if row is None:
                    return chain
                chain.append(CheckpointStamp.from_row(row))

    def chain_ends(self, conn: Connection | Session | None = None) -> list[CheckpointStamp]:
        """The newest link of each chain (no renewal follows it): what a renewal round looks at."""
        with self._reader(conn) as c:
            rows = c.execute(select(stamps_t).where(_is_chain_end()).order_by(stamps_t.c.tsa_not_after)).all()
        return [CheckpointStamp.from_row(r) for r in rows]

    def add_stamp(
        self,
        size: int,
        tst_der: bytes,
        imprint: bytes,
        *,
        gen_time: datetime,
        tsa_not_after: datetime,
        validation: bytes = b"",
        prev: CheckpointStamp | None = None,
    ) -> CheckpointStamp:
        """Store a link the caller got from a TSA: a STAMP of checkpoint ``size`` (``prev`` None), or a
        RENEWAL of ``prev`` that also covers checkpoint ``size``. The imprint must be what the link covers
        (``LEDGER_STAMP_IMPRINT_MISMATCH``); a checkpoint already stamped, or a link already renewed, is
        ``LEDGER_STAMP_CONFLICT`` (another worker did it)."""
        with Session(self.engine) as session, session.begin():
            cp = self.checkpoint_of_size(size, session)
            if cp is None:
                raise NotFound("LEDGER_CHECKPOINT_MISSING", f"no signed checkpoint of size {size}")
            expected = stamp_imprint(cp.note) if prev is None else renewal_imprint(prev.tst_der, cp.note)
            if not hmac.compare_digest(expected, imprint):
                raise LedgerIntegrityError(
                    "LEDGER_STAMP_IMPRINT_MISMATCH", "the timestamp does not cover what this link must cover"
                )
            last = session.execute(select(stamps_t.c.id).order_by(stamps_t.c.id.desc()).limit(1)).scalar()
            values = {
                "id": (last or 0) + 1,
                "kind": STAMP if prev is None else RENEWAL,
                "size": size,
                "prev_id": prev.id if prev is not None else None,
                "imprint": imprint,
                "tst_der": tst_der,
                "validation": validation,
                "gen_time": gen_time,
                "tsa_not_after": tsa_not_after,
                "created_at": self.clock(),
            }
            try:
                session.execute(stamps_t.insert().values(**values))
                session.flush()
            except DBAPIError as exc:
                raise Conflict(
                    "LEDGER_STAMP_CONFLICT", "this checkpoint or link was stamped meanwhile", "已有时间戳"
                ) from exc
        return CheckpointStamp(**values)  # type: ignore[arg-type]

    # --- audit ------------------------------------------------------------------------------------------

    def stream_rows(self, c: Connection, start: int) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        """(idx, encoded, entry_hash, prev_hash) in index order, by keyset pages: flat memory, no server-side
        cursor. Straight on the driver's cursor: at 10**6 rows, SQLAlchemy's row layer costs a second."""
        sql = _PAGE_PG if self._pg else _PAGE_SQLITE
        raw = c.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            cursor = start
            while True:
                cur.execute(sql, (cursor,))
                rows = cur.fetchall()
                if not rows:
                    return
                for idx, encoded, entry_hash, prev_hash in rows:
                    yield idx, bytes(encoded), bytes(entry_hash), bytes(prev_hash)
                cursor = rows[-1][0] + 1
        finally:
            cur.close()

    def audit(self, from_index: int = 0, *, deep: bool = False) -> AuditReport:
        """Recompute chain and tree from the stored entries and check every stored checkpoint.

        Read-only (works on a SELECT-only role). Streaming: memory stays flat whatever the size.
        1. read the head and the checkpoints; seed the chain and the compact range at ``from_index``
           (from the stored entry before it and the stored perfect nodes);
        2. per row, in index order (:class:`ChainChecker`): no gap, header parses, stored hash =
           SHA-256(0x00 || bytes), the header's index is the row's, its prev is the previous entry's
           recomputed hash (a break is blamed on the entry whose leaf, stored at append time, differs);
           with ``deep`` the payload must decode canonically;
        3. at each checkpoint size, the recomputed root must be the checkpoint's root;
        4. the stream must stop exactly at the head's size, on the head's last hash;
        5. each checkpoint: signature by a known key, origin, note matches its row, not beyond the end;
           consecutive checkpoints are consistent (proof from stored nodes, verified against both roots).
        """
        with self.read_engine.connect() as c:
            if self._pg:
                c.exec_driver_sql("SET TRANSACTION READ ONLY")
            head = c.execute(select(head_t).where(head_t.c.id == 1)).one()
            cp_rows = c.execute(select(checkpoints_t).order_by(checkpoints_t.c.size)).all()
            cps = [(int(r.size), bytes(r.root)) for r in cp_rows]
            early: list[AuditProblem] = []
            if from_index < 0 or from_index > head.size:
                early.append(
                    AuditProblem(
                        "LEDGER_INDEX_OUT_OF_RANGE", from_index, f"--from is past the end ({head.size})"
                    )
                )
                from_index = 0

            # 1. seed
            prev, cr = _entry.ZERO_HASH, _merkle.CompactRange()
            if from_index > 0:
                q = select(entries_t.c.entry_hash).where(entries_t.c.idx == from_index - 1)
                row = c.execute(q).first()
                prev = bytes(row.entry_hash) if row is not None else _entry.ZERO_HASH
                plan = [[n] for n in _merkle.perfect_nodes(0, from_index)]
                try:
                    cr = _merkle.CompactRange(from_index, _merkle.materialize(plan, self._nodes(c, plan)))
                except LedgerIntegrityError as exc:
                    early.append(AuditProblem(exc.code, from_index, exc.message_en))
                    prev, cr, from_index = _entry.ZERO_HASH, _merkle.CompactRange(), 0

            def leaf_at_append(i: int) -> bytes | None:
                stored = c.execute(select(nodes_t.c.hash).where(nodes_t.c.id == node_id(0, i))).scalar()
                return bytes(stored) if stored is not None else None

            checker = ChainChecker(
                cps, start=from_index, prev=prev, compact=cr, deep=deep, leaf_at_append=leaf_at_append
            )
            checker.problems.extend(early)

            # 2-3. stream
            for idx, encoded, entry_hash, prev_hash in self.stream_rows(c, from_index):
                checker.row(idx, encoded, entry_hash, prev_hash)

            # 4. end of stream
            end = checker.expected
            if end < head.size:
                checker.bad("LEDGER_TRUNCATED", end, f"entries {end}..{head.size - 1} are missing at the end")
            elif end > head.size:
                checker.bad("LEDGER_INDEX_OUT_OF_RANGE", head.size, f"entries past the head ({head.size})")
            elif end > 0 and not hmac.compare_digest(bytes(head.last_hash), checker.prev):
                checker.bad("LEDGER_ENTRY_REWRITTEN", end - 1, "last entry differs from the head's record")

            # 5. checkpoints
            good: list[tuple[int, bytes]] = []
            for r in cp_rows:
                try:
                    parsed = verify_checkpoint(r.note, self.verifiers, self.origin)
                except VerificationError as exc:
                    checker.bad(exc.code, r.size, f"checkpoint at size {r.size}: {exc.message_en}")
                    continue
                if parsed.size != r.size or parsed.root != bytes(r.root):
                    checker.bad(
                        "LEDGER_CHECKPOINT_MISMATCH", r.size, "checkpoint row disagrees with its note"
                    )
                    continue
                if r.size > checker.cr.size:
                    checker.bad(
                        "LEDGER_CHECKPOINT_BEYOND_END", r.size, f"checkpoint at {r.size} is past the end"
                    )
                    continue
                good.append((int(r.size), bytes(r.root)))
            check_checkpoint_chain(checker, good, lambda s1, s2: self.consistency_proof(s1, s2, c))
        return checker.report(from_index, len(cp_rows))

    # --- the usage ledger (台账) -------------------------------------------------------------------------

    def usage(self, seal_id: str, month: str) -> list[UsageRow]:
        """SEAL_SIGNED entries of one seal in one month (``YYYY-MM``, UTC+8 calendar as the documents use)."""
        from datetime import timedelta, timezone

        try:
            year, mon = (int(p) for p in month.split("-"))
            cst = timezone(timedelta(hours=8))
            start = datetime(year, mon, 1, tzinfo=cst)
            end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=cst)
        except ValueError as exc:
            raise BadInput("LEDGER_MONTH_INVALID", "month must be YYYY-MM", "月份格式应为 YYYY-MM") from exc
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        with self.read_engine.connect() as c:
            rows = c.execute(
                select(entries_t.c.encoded, entries_t.c.idempotency_key)
                .where(
                    entries_t.c.seal_id == seal_id,
                    entries_t.c.kind == EntryKind.SEAL_SIGNED.value,
                    entries_t.c.at >= start,
                    entries_t.c.at < end,
                )
                .order_by(entries_t.c.idx)
            ).all()
        out = []
        found = [LedgerEntry.from_encoded(row.encoded, row.idempotency_key) for row in rows]
        for e, b in zip(found, self.opened(found), strict=True):
            count = b.get("count", 1)  # a positive int in every SEAL_SIGNED entry (normalize_body)
            out.append(
                UsageRow(
                    index=e.index,
                    date=e.at.astimezone(timezone(timedelta(hours=8))).date().isoformat(),
                    matter=str(b.get("matter", "")),
                    reason=str(b.get("reason", "")),
                    approver=str(b.get("approver", "")),
                    user=str(b.get("operator", "")),
                    count=count if isinstance(count, int) else int(str(count)),
                    cert_serial=str(b.get("cert_serial", "")),
                    document_number=str(b.get("document_number", "")),
                    document_kind=str(b.get("document_kind", "")),
                    stage=str(b.get("stage", "")),
                )
            )
        return out


@dataclass(frozen=True)
class StampFacts:
    """What the evidence health check reads from the ledger (``signer`` judges it): the newest STAMP's
    genTime, the largest stamped checkpoint size, the largest checkpoint signed before a moment (size and
    when), and the TSA certificate ends of every chain's newest link."""

    latest_stamp: datetime | None
    stamped_size: int | None
    old_checkpoint: tuple[int, datetime] | None
    chain_end_expiries: tuple[datetime, ...]


def _is_chain_end() -> ColumnElement[bool]:
    """A link no renewal follows: the newest of its chain."""
    later = stamps_t.alias("later")
    return ~select(later.c.id).where(later.c.prev_id == stamps_t.c.id).exists()


def stamp_facts(engine: Engine, signed_before: datetime) -> StampFacts:
    """One read of the evidence chains' state (see :class:`StampFacts`); SQLAlchemy errors propagate."""
    with engine.connect() as c:
        latest_stamp, stamped = c.execute(
            select(func.max(stamps_t.c.gen_time), func.max(stamps_t.c.size)).where(stamps_t.c.kind == STAMP)
        ).one()
        old = c.execute(
            select(checkpoints_t.c.size, checkpoints_t.c.created_at)
            .where(checkpoints_t.c.created_at < signed_before)
            .order_by(checkpoints_t.c.size.desc())
            .limit(1)
        ).one_or_none()
        ends = c.execute(select(stamps_t.c.tsa_not_after).where(_is_chain_end())).scalars().all()
    return StampFacts(
        latest_stamp=latest_stamp,
        stamped_size=int(stamped) if stamped is not None else None,
        old_checkpoint=(int(old.size), old.created_at) if old is not None else None,
        chain_end_expiries=tuple(ends),
    )


def entry_indices_by_key(conn: Connection | Session, keys: Sequence[str]) -> list[int]:
    """Indices of the entries appended under any of these idempotency keys, in ledger order."""
    rows = conn.execute(
        select(entries_t.c.idx).where(entries_t.c.idempotency_key.in_(list(keys))).order_by(entries_t.c.idx)
    ).scalars()
    return [int(v) for v in rows]
