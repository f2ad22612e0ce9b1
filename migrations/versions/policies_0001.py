"""policies: organisations, catalog versions, matters, township powers, agreements, stage tables.

Every table is append-only: rows are stamped with a policy revision (pol_revisions) and never updated.

Revision ID: policies_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "policies_0001"
down_revision = "0001_base"
branch_labels = ("policies",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pol_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "pol_organisations",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("county_code", sa.String(64), nullable=True),
        sa.Column("service_centre", sa.String(64), nullable=True),
        sa.Column("no2_number", sa.Integer, nullable=True),
        sa.Column("approval_required", sa.Boolean, nullable=False),
        sa.Column("retired", sa.Boolean, nullable=False),
    )
    op.create_table(
        "pol_catalog_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("county_code", sa.String(64), nullable=False, index=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("matter_count", sa.Integer, nullable=False),
        sa.Column("replace", sa.Boolean, nullable=False),
    )
    op.create_table(
        "pol_matters",
        sa.Column("county_code", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("catalog_version", sa.Integer, nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("sub_item", sa.String(512), nullable=True),
        sa.Column("power_type", sa.String(32), nullable=False),
        sa.Column("power_subkind", sa.String(64), nullable=True),
        sa.Column("department_code", sa.String(64), nullable=True),
        sa.Column("supervising_department", sa.String(256), nullable=True),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("requires_admin_seal", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("retired", sa.Boolean, nullable=False),
    )
    op.create_table(
        "pol_powers",
        sa.Column("township_code", sa.String(64), primary_key=True),
        sa.Column("matter_code", sa.String(64), primary_key=True),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("stages", sa.String(128), nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_table(
        "pol_agreements",
        sa.Column("agreement_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False, index=True),
        sa.Column("department_code", sa.String(64), nullable=False),
        sa.Column("township_code", sa.String(64), nullable=False, index=True),
        sa.Column("seal_number", sa.Integer, nullable=False),
        sa.Column("matters", sa.Text, nullable=False),
        sa.Column("stages", sa.String(128), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("basis", sa.Text, nullable=False),
        sa.Column("change", sa.String(32), nullable=False),
    )
    op.create_table(
        "pol_stage_tables",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("county_code", sa.String(64), nullable=False, index=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("table_json", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "pol_stage_tables",
        "pol_agreements",
        "pol_powers",
        "pol_matters",
        "pol_catalog_versions",
        "pol_organisations",
        "pol_revisions",
    ):
        op.drop_table(table)
