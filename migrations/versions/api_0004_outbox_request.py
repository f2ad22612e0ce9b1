"""api: the supervision outbox is looked up by request (a request's history page lists its decision events).

Without the index every history read scans the whole outbox, which grows by one row per issued or changed
decision for the life of the county.

Revision ID: api_0004
Revises: api_0003
"""

from alembic import op

revision = "api_0004"
down_revision = "api_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_api_outbox_request_id", "api_outbox", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_api_outbox_request_id", "api_outbox")
