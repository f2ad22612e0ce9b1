"""api: accounts, bearer tokens (SHA-256 only), console sessions.

Revision ID: api_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0001"
down_revision = "0001_base"
branch_labels = ("api",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_accounts",
        sa.Column("account_id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("org_code", sa.String(64), nullable=False),
        sa.Column("service_centre", sa.String(64)),
        sa.Column("password_hash", sa.String(256)),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_api_accounts"),
        sa.UniqueConstraint("username", name="uq_api_accounts_username"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(36), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("token_id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_sha256", name="uq_api_tokens_token_sha256"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["api_accounts.account_id"], name="fk_api_tokens_account_id_api_accounts"
        ),
    )
    op.create_index("ix_api_tokens_account_id", "api_tokens", ["account_id"])
    op.create_table(
        "api_sessions",
        sa.Column("session_sha256", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("session_sha256", name="pk_api_sessions"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["api_accounts.account_id"], name="fk_api_sessions_account_id_api_accounts"
        ),
    )
    op.create_index("ix_api_sessions_account_id", "api_sessions", ["account_id"])


def downgrade() -> None:
    op.drop_table("api_sessions")
    op.drop_index("ix_api_tokens_account_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("api_accounts")
