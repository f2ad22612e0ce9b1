"""ledger: entries, perfect-subtree nodes, the head row, signed checkpoints, erasable personal data.

Entries, nodes and checkpoints are append-only: triggers refuse UPDATE and DELETE on both PostgreSQL and
SQLite (and TRUNCATE on PostgreSQL). The head row is a cache of the tree's right border (rebuilt from the
nodes by the audit) and the personal-data table is erasable on purpose.

Revision ID: ledger_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0001"
down_revision = "0001_base"
branch_labels = ("ledger",)
depends_on = None

TZ = sa.DateTime(timezone=True)
# On SQLite an INTEGER PRIMARY KEY is the rowid itself: index-ordered scans (the audit) read the table in
# order instead of going through a separate index. Values are always given: this is no sequence.
KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = ("ledger_entries", "ledger_nodes", "ledger_checkpoints")


def upgrade() -> None:
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.LargeBinary, nullable=False),
        sa.Column("range_blob", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.CheckConstraint("id = 1", name="single_row"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("idx", KEY, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("seal_id", sa.String(64), nullable=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("encoded", sa.LargeBinary, nullable=False),
        sa.Column("entry_hash", sa.LargeBinary, nullable=False),
        sa.Column("prev_hash", sa.LargeBinary, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_ledger_entries_seal_at", "ledger_entries", ["seal_id", "at"])
    op.create_index("ix_ledger_entries_kind_at", "ledger_entries", ["kind", "at"])
    op.create_table(
        "ledger_nodes",
        # id = level * 2**48 + index: the perfect subtree of 2**level leaves starting at index * 2**level.
        sa.Column("id", KEY, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", KEY, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("key_name", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "ledger_personal",
        sa.Column("entry_idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("salt", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
    )
    head = sa.table(
        "ledger_head",
        sa.column("id", sa.Integer),
        sa.column("size", sa.BigInteger),
        sa.column("last_hash", sa.LargeBinary),
        sa.column("range_blob", sa.LargeBinary),
        sa.column("updated_at", TZ),
    )
    op.execute(
        head.insert().values(id=1, size=0, last_hash=b"\x00" * 32, range_blob=b"", updated_at=sa.func.now())
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'LEDGER_APPEND_ONLY: % on % refused (the ledger is append-only)',
                TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
            )
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'LEDGER_APPEND_ONLY: {verb} on {table} refused'); END"
                )


def downgrade() -> None:
    bind = op.get_bind()
    for table in ("ledger_personal", "ledger_checkpoints", "ledger_nodes", "ledger_entries", "ledger_head"):
        op.drop_table(table)
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ledger_refuse_change()")
