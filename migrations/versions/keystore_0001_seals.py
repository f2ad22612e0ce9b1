"""keystore: county CAs, certificates (all versions), seals, append-only seal lifecycle events.

Revision ID: keystore_0001
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "keystore_0001"
down_revision = "0001_base"
branch_labels = ("keystore",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ks_cas",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("key_label", sa.String(128), nullable=False),
        sa.Column("key_algorithm", sa.String(16), nullable=False),
        sa.Column("cert_serial", sa.String(64), nullable=False),
        sa.Column("cert_der", sa.LargeBinary, nullable=False),
        sa.Column("crl_number", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "ks_certificates",
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("issuer", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("seal_id", sa.String(64), nullable=True),
        sa.Column("key_label", sa.String(128), nullable=False),
        sa.Column("cert_der", sa.LargeBinary, nullable=False),
        sa.Column("not_before", TZ, nullable=False),
        sa.Column("not_after", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("revocation_reason", sa.String(32), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_ks_certificates_seal_id", "ks_certificates", ["seal_id"])
    op.create_index("ix_ks_certificates_issuer_revoked", "ks_certificates", ["issuer", "revoked_at"])
    op.create_table(
        "ks_seals",
        sa.Column("seal_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("live_name", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer, nullable=True),
        sa.Column("county", sa.String(128), nullable=False),
        sa.Column("township", sa.String(128), nullable=False),
        sa.Column("township_code", sa.String(32), nullable=False),
        sa.Column("department", sa.String(128), nullable=True),
        sa.Column("department_code", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("key_label", sa.String(128), nullable=False),
        sa.Column("key_algorithm", sa.String(16), nullable=False),
        sa.Column("key_generation", sa.Integer, nullable=False),
        sa.Column("cert_serial", sa.String(64), sa.ForeignKey("ks_certificates.serial"), nullable=False),
        sa.Column("custodian", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("township_code", "live_name", name="uq_ks_seals_live_name"),
    )
    op.create_table(
        "ks_seal_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("seal_id", sa.String(64), sa.ForeignKey("ks_seals.seal_id"), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=True),
        sa.Column("approver", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("cert_serial", sa.String(64), nullable=False),
        sa.Column("previous_cert_serial", sa.String(64), nullable=True),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index("ix_ks_seal_events_seal_id", "ks_seal_events", ["seal_id"])
    # The lifecycle record is append-only: the database itself refuses UPDATE and DELETE.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ks_seal_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'ks_seal_events is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER ks_seal_events_append_only BEFORE UPDATE OR DELETE ON ks_seal_events "
            "FOR EACH ROW EXECUTE FUNCTION ks_seal_events_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER ks_seal_events_no_{action.lower()} BEFORE {action} ON ks_seal_events "
                "BEGIN SELECT RAISE(ABORT, 'ks_seal_events is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ks_seal_events_append_only ON ks_seal_events")
        op.execute("DROP FUNCTION IF EXISTS ks_seal_events_append_only()")
    op.drop_table("ks_seal_events")
    op.drop_table("ks_seals")
    op.drop_table("ks_certificates")
    op.drop_table("ks_cas")
