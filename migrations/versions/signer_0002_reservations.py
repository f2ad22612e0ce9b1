"""signer: document numbers are reserved before signing (status RESERVED), settled or voided after.

A signing no longer holds its township's counter lock while it stamps, signs and timestamps: the number is
reserved in a short transaction, and a retry takes over its own open reservation (looked up by idempotency
key), and a sweeper voids reservations a dead process left behind (looked up by status and age). Both
lookups get an index; the status column already holds 16 characters.

Revision ID: signer_0002
Revises: signer_0001
"""

from alembic import op

revision = "signer_0002"
down_revision = "signer_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sig_document_numbers_key", "sig_document_numbers", ["idempotency_key"])
    op.create_index("ix_sig_document_numbers_status", "sig_document_numbers", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_sig_document_numbers_status", "sig_document_numbers")
    op.drop_index("ix_sig_document_numbers_key", "sig_document_numbers")
