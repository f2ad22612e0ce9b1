"""policies: what the catalog says of a matter beyond its scope (issue 22, leaks 16, 18, 19).

``pol_matters.supervising_codes``: the supervising departments' registry codes (a JSON list), which the
supervision push (审管联动) routes by; ``supervising_department`` keeps the catalog's text for display.
``pol_matters.level``: the catalog's 办理层级 (Shanxi: 乡级). ``pol_matters.agency``: the 派出机构 that
implements the matter in its own name (001 四（三）), so a refusal names its seal. Nullable columns added to
an append-only table touch no row, so the triggers of policies_0002 are not involved; matters imported
before this revision route as before their re-import (no codes: the entrusting department, else the county).

Revision ID: policies_0005
Revises: policies_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "policies_0005"
down_revision = "policies_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pol_matters", sa.Column("supervising_codes", sa.Text(), nullable=True))
    op.add_column("pol_matters", sa.Column("level", sa.String(16), nullable=True))
    op.add_column("pol_matters", sa.Column("agency", sa.String(256), nullable=True))


def downgrade() -> None:
    op.drop_column("pol_matters", "agency")
    op.drop_column("pol_matters", "level")
    op.drop_column("pol_matters", "supervising_codes")
