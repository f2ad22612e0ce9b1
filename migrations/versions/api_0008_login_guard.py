"""api: login backoff state and OpenID Connect bindings (issue 21, findings 7 and 15).

``api_login_failures`` holds the failed-login counters and the backoff deadline per account name and per
client address (keys are SHA-256 digests, never the name or the address itself). It lives in the database so
every serve worker sees the same backoff. ``api_accounts.oidc_issuer``/``oidc_subject`` bind an account to
one identity at the OpenID Provider: after the first login (or an administrator's link) only that
(issuer, subject) pair opens the account.

Revision ID: api_0008_login_guard
Revises: api_0007_document_number
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0008_login_guard"
down_revision = "api_0007_document_number"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_login_failures",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )
    with op.batch_alter_table("api_accounts") as batch:
        batch.add_column(sa.Column("oidc_issuer", sa.String(512)))
        batch.add_column(sa.Column("oidc_subject", sa.String(255)))
        batch.create_unique_constraint("uq_api_accounts_oidc_identity", ["oidc_issuer", "oidc_subject"])


def downgrade() -> None:
    with op.batch_alter_table("api_accounts") as batch:
        batch.drop_constraint("uq_api_accounts_oidc_identity", type_="unique")
        batch.drop_column("oidc_subject")
        batch.drop_column("oidc_issuer")
    op.drop_table("api_login_failures")
