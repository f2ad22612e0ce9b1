"""keystore: ks_seal_events also refuses TRUNCATE on PostgreSQL (row triggers do not fire for TRUNCATE).

Found by tests/security/test_tampering.py: UPDATE and DELETE were refused, TRUNCATE emptied the table.

Revision ID: keystore_0002
Revises: keystore_0001
"""

from alembic import op

revision = "keystore_0002"
down_revision = "keystore_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite has no TRUNCATE (DELETE is refused already)
        op.execute(
            "CREATE TRIGGER ks_seal_events_no_truncate BEFORE TRUNCATE ON ks_seal_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION ks_seal_events_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ks_seal_events_no_truncate ON ks_seal_events")
