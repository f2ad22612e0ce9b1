"""signer: TSA certificate, document-number counters and numbers, sealed documents.

Revision ID: signer_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "signer_0001"
down_revision = "0001_base"
branch_labels = ("signer",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sig_tsa_certs",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("key_label", sa.String(128), nullable=False),
        sa.Column("cert_der", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sig_number_counters",
        sa.Column("sequence", sa.String(128), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last_seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "sig_document_numbers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sequence", sa.String(128), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("number", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("sequence", "year", "seq", name="uq_sig_document_numbers_seq"),
        sa.UniqueConstraint("number", name="uq_sig_document_numbers_number"),
    )
    op.create_table(
        "sig_documents",
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("seal_id", sa.String(64), nullable=False, index=True),
        sa.Column("document_number", sa.String(128), nullable=True, index=True),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("ledger_index", sa.Integer, nullable=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for name in ("sig_documents", "sig_document_numbers", "sig_number_counters", "sig_tsa_certs"):
        op.drop_table(name)
