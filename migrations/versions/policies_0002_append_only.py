"""policies: the database itself refuses UPDATE, DELETE and TRUNCATE on every pol_* table.

The policy store only ever inserts (every change is a new row stamped with a revision), but until now
nothing stopped a direct UPDATE: an agreement's terms (matters, stages, end date) could be edited in place
behind the service's back, undetectably (tests/security/test_tampering.py, docs/reliability.md). A role
that owns the tables can still drop the triggers: the service role should not own the schema.

Revision ID: policies_0002
Revises: policies_0001
"""

from alembic import op

revision = "policies_0002"
down_revision = "policies_0001"
branch_labels = None
depends_on = None

TABLES = (
    "pol_revisions",
    "pol_organisations",
    "pol_catalog_versions",
    "pol_matters",
    "pol_powers",
    "pol_agreements",
    "pol_stage_tables",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION pol_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION pol_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pol_append_only()"
            )
    else:
        for table in TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS pol_append_only()")
    else:
        for table in TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
