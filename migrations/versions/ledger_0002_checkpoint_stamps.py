"""ledger: RFC 3161 timestamps over checkpoints and their renewals (evidence records, issue 19 item 4b).

One row per link of an evidence chain (docs/ledger-format.md, "Evidence records"): a STAMP is a token over
SHA-256 of a checkpoint's signed note; a RENEWAL is a token over SHA-256(previous link's token ‖ the signed
note of the latest checkpoint then), made before the previous token's TSA certificate expires. Tokens and
validation data are opaque bytes to the ledger (the signer asks the TSA); ``gen_time`` and
``tsa_not_after`` are what the caller read from the token, kept for the renewal round's "due" query.

Append-only like the rest of the ledger. At most one stamp per checkpoint size, and a link is renewed once
(``prev_id`` unique): two workers renewing at once cannot fork a chain.

Revision ID: ledger_0002
Revises: ledger_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0002"
down_revision = "ledger_0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLE = "ledger_checkpoint_stamps"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", KEY, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),  # STAMP | RENEWAL
        sa.Column("size", sa.BigInteger, nullable=False),  # the checkpoint whose note is covered
        sa.Column("prev_id", sa.BigInteger, nullable=True, unique=True),  # RENEWAL: the link it renews
        sa.Column("imprint", sa.LargeBinary, nullable=False),  # SHA-256 the token covers
        sa.Column("tst_der", sa.LargeBinary, nullable=False),  # RFC 3161 TimeStampToken (ContentInfo)
        sa.Column("validation", sa.LargeBinary, nullable=False),  # certificates and CRLs current then
        sa.Column("gen_time", TZ, nullable=False),
        sa.Column("tsa_not_after", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint("kind IN ('STAMP', 'RENEWAL')", name="stamp_kind"),
        sa.CheckConstraint("(kind = 'STAMP') = (prev_id IS NULL)", name="stamp_prev"),
    )
    op.create_index(
        "ux_ledger_stamps_checkpoint",
        TABLE,
        ["size"],
        unique=True,
        sqlite_where=sa.text("kind = 'STAMP'"),
        postgresql_where=sa.text("kind = 'STAMP'"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, 'LEDGER_APPEND_ONLY: {verb} on {TABLE} refused'); END"
            )


def downgrade() -> None:
    op.drop_table(TABLE)
