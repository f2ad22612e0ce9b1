"""api: signing requests, their documents, the supervision outbox.

Revision ID: api_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0002"
down_revision = "api_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_signing_requests",
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("submitted_by", sa.String(36), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("seal_id", sa.String(64), nullable=False),
        sa.Column("township_code", sa.String(64), nullable=False),
        sa.Column("department_code", sa.String(64)),
        sa.Column("matter_code", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("document_kind", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("applicant", sa.String(200)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("template", sa.String(64)),
        sa.Column("template_data", sa.Text),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("reason_codes", sa.Text, nullable=False, server_default="[]"),
        sa.Column("requires_approval", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("approver_id", sa.String(36)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decision_comment", sa.String(1000)),
        sa.Column("document_number", sa.String(64)),
        sa.Column("ledger_index", sa.Integer),
        sa.Column("sealed_sha256", sa.String(64)),
        sa.Column("decision_status", sa.String(16), nullable=False, server_default="VALID"),
        sa.Column("error_code", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_api_signing_requests"),
        sa.UniqueConstraint("submitted_by", "idempotency_key", name="uq_api_signing_requests_idem"),
    )
    op.create_index("ix_api_signing_requests_township_code", "api_signing_requests", ["township_code"])
    op.create_index("ix_api_signing_requests_status", "api_signing_requests", ["status"])
    op.create_table(
        "api_documents",
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "role", name="pk_api_documents"),
    )
    op.create_table(
        "api_outbox",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("supervising_code", sa.String(64)),
        sa.Column("township_code", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_api_outbox_supervising_code", "api_outbox", ["supervising_code"])


def downgrade() -> None:
    op.drop_table("api_outbox")
    op.drop_table("api_documents")
    op.drop_table("api_signing_requests")
