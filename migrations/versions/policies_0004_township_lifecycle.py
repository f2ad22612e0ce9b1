"""policies: township lifecycle, rename (乡改镇), merger and retirement (issue 22, leak 7).

``pol_organisations.successor_code``: on the row that merges a township, the township it merged into (its
powers went there in the same revision); ``pol_organisations.basis``: the decision a rename, merger or
retirement rests on (e.g. the provincial approval of 乡改镇). Nullable columns touch no row, so the
append-only triggers of policies_0002 are not involved; a change is a new row, as every change is.

Revision ID: policies_0004
Revises: policies_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "policies_0004"
down_revision = "policies_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pol_organisations", sa.Column("successor_code", sa.String(64), nullable=True))
    op.add_column("pol_organisations", sa.Column("basis", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("pol_organisations", "basis")
    op.drop_column("pol_organisations", "successor_code")
