"""signer: sig_documents.archive_until, when the stored copy's latest timestamp stops being verifiable.

Long-term validation (issue 19, item 4; ``signer._ltv``) renews the archive timestamp of stored documents
before the TSA certificate of their latest timestamp expires; this column is that certificate's notAfter,
NULL until a renewal round has read the document, indexed for the round's "due first" query.

Revision ID: signer_0003
Revises: signer_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "signer_0003"
down_revision = "signer_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sig_documents", sa.Column("archive_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_sig_documents_archive_until", "sig_documents", ["archive_until"])


def downgrade() -> None:
    op.drop_index("ix_sig_documents_archive_until", "sig_documents")
    with op.batch_alter_table("sig_documents") as batch:
        batch.drop_column("archive_until")
