"""api: accounts are bound to a person, and an administrator's password reset forces a change.

``person_id`` is an opaque identifier of the natural person behind an account: two accounts of one person
(a clerk's and a principal's) share it, and the approval rule compares it (issue 21: operator and approver
must be different people, not just different accounts). Existing accounts each become their own person
(``person_id = account_id``); an administrator links accounts of one person afterwards (PATCH
``same_person_as``). ``must_change_password`` is set by an administrator's reset and cleared by the
person's own change.

Revision ID: api_0006_person
Revises: api_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0006_person"
down_revision = "api_0005_operator_org"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_accounts") as batch:
        batch.add_column(sa.Column("person_id", sa.String(64)))
        batch.add_column(
            sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE api_accounts SET person_id = account_id WHERE person_id IS NULL")
    with op.batch_alter_table("api_accounts") as batch:
        batch.alter_column("person_id", existing_type=sa.String(64), nullable=False)
        batch.create_index("ix_api_accounts_person_id", ["person_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_accounts") as batch:
        batch.drop_index("ix_api_accounts_person_id")
        batch.drop_column("must_change_password")
        batch.drop_column("person_id")
