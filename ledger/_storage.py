"""ORM tables of the ledger (schema made by migrations/versions/ledger_0001_ledger.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

TZ = DateTime(timezone=True)
KEY = BigInteger().with_variant(Integer(), "sqlite")  # SQLite: the rowid itself (see the migration)
NODE_LEVEL_SHIFT = 48


def node_id(level: int, index: int) -> int:
    return (level << NODE_LEVEL_SHIFT) | index


class HeadRow(Base):
    """The single row every append locks: size, last entry hash, the right border of the tree."""

    __tablename__ = "ledger_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary)
    range_blob: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class EntryRow(Base):
    __tablename__ = "ledger_entries"
    idx: Mapped[int] = mapped_column(KEY, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40))
    seal_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(TZ)
    encoded: Mapped[bytes] = mapped_column(LargeBinary)
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ)


class NodeRow(Base):
    """Perfect subtree hashes (every level, leaves included): O(log n) rows per proof."""

    __tablename__ = "ledger_nodes"
    id: Mapped[int] = mapped_column(KEY, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class CheckpointRow(Base):
    __tablename__ = "ledger_checkpoints"
    size: Mapped[int] = mapped_column(KEY, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary)
    origin: Mapped[str] = mapped_column(String(200))
    key_name: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZ)


class PersonalRow(Base):
    """Clear text and salt of personal data; deleting a row erases it without touching the log."""

    __tablename__ = "ledger_personal"
    entry_idx: Mapped[int] = mapped_column(KEY, primary_key=True, autoincrement=False)
    field: Mapped[str] = mapped_column(String(64), primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[str] = mapped_column(Text)


head_t: Table = HeadRow.__table__  # type: ignore[assignment]
entries_t: Table = EntryRow.__table__  # type: ignore[assignment]
nodes_t: Table = NodeRow.__table__  # type: ignore[assignment]
checkpoints_t: Table = CheckpointRow.__table__  # type: ignore[assignment]
personal_t: Table = PersonalRow.__table__  # type: ignore[assignment]


class StampRow(Base):
    """A link of an evidence chain: an RFC 3161 token over a checkpoint (STAMP) or over the previous link
    and a later checkpoint (RENEWAL). Tokens and validation data are opaque bytes here."""

    __tablename__ = "ledger_checkpoint_stamps"
    id: Mapped[int] = mapped_column(KEY, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    prev_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    imprint: Mapped[bytes] = mapped_column(LargeBinary)
    tst_der: Mapped[bytes] = mapped_column(LargeBinary)
    validation: Mapped[bytes] = mapped_column(LargeBinary)
    gen_time: Mapped[datetime] = mapped_column(TZ)
    tsa_not_after: Mapped[datetime] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ)


stamps_t: Table = StampRow.__table__  # type: ignore[assignment]
