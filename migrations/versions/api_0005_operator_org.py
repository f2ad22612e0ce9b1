"""api: a signing request records its submitter's organisation (issue 21, finding 4).

A refusal whose operator is not of the seal's township (a clerk of township B trying A's seal) is filed
under the operator's own organisation: B's lists and anomalies report count it, A's report shows it as an
attempt from outside and does not count it among A's refusals. Rows made before this revision have no
value and are read as before (filed under the seal's township).

A sibling of api_0005_person (both revise api_0004; ``alembic upgrade heads`` applies both).

Revision ID: api_0005_operator_org
Revises: api_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0005_operator_org"
down_revision = "api_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_signing_requests") as batch:
        batch.add_column(sa.Column("operator_org", sa.String(64), nullable=True))
    op.create_index("ix_api_signing_requests_operator_org", "api_signing_requests", ["operator_org"])


def downgrade() -> None:
    op.drop_index("ix_api_signing_requests_operator_org", "api_signing_requests")
    with op.batch_alter_table("api_signing_requests") as batch:
        batch.drop_column("operator_org")
