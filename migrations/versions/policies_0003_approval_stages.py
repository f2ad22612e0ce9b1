"""policies: per-stage approval of township seal uses (issue 22, leak 12).

``pol_organisations.approval_stages``: for a county with township approval switched on, the stages (comma-
separated ``Stage`` names) at which a township seal's use needs the principal's approval; NULL means the
default, every stage but 受理 (003 lets window staff issue the 受理凭证). Adding a nullable column touches
no row, so the append-only triggers of policies_0002 are not involved.

Revision ID: policies_0003
Revises: policies_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "policies_0003"
down_revision = "policies_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pol_organisations", sa.Column("approval_stages", sa.String(128), nullable=True))


def downgrade() -> None:
    op.drop_column("pol_organisations", "approval_stages")
