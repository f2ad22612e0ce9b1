"""api: a rejected or refused signing request edited and submitted again (issue 23).

``api_signing_requests.resubmits`` names the request this one replaces (rejected by the principal, or refused
by the policy): the console shows the link both ways. A request is resubmitted at most once.

Revision ID: api_0009_resubmits
Revises: api_0008_login_guard
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0009_resubmits"
down_revision = "api_0008_login_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_signing_requests") as batch:
        batch.add_column(sa.Column("resubmits", sa.String(36)))
        batch.create_index("ix_api_signing_requests_resubmits", ["resubmits"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("api_signing_requests") as batch:
        batch.drop_index("ix_api_signing_requests_resubmits")
        batch.drop_column("resubmits")
