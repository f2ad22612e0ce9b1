"""Base: the names a deployment's signed artefacts carry (issue 19), fixed at ``county init``.

``public_base_url`` is the base of the CRL distribution points and verification links in what is signed,
``log_origin`` the ledger's checkpoint origin (and log key name). Before, both followed the setting
``YIZHANG_PUBLIC_BASE_URL``, so serving under another address made every earlier checkpoint fail. A
deployment set up before this revision gets them from what it already signed: the issuing CA certificate's
CRL distribution point (``<base>/pki/crl/root.crl``) and the origin of its latest checkpoint.

Revision ID: 0002_identity
Revises: 0001_base
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_identity"
down_revision = "0001_base"
branch_labels = None
# The backfill reads the keystore's CAs and the ledger's checkpoints.
depends_on = ("keystore_0001", "ledger_0001")


def _base_from_issuing_ca(conn: sa.Connection) -> str | None:
    from cryptography import x509

    der = conn.execute(sa.text("SELECT cert_der FROM ks_cas WHERE name = 'issuing'")).scalar()
    if der is None:
        return None
    try:
        dps = x509.load_der_x509_certificate(bytes(der)).extensions.get_extension_for_class(
            x509.CRLDistributionPoints
        )
    except (ValueError, x509.ExtensionNotFound):
        return None
    for dp in dps.value:
        for name in dp.full_name or ():
            url = str(name.value)
            if url.endswith("/pki/crl/root.crl"):
                return url.removesuffix("/pki/crl/root.crl")
    return None


def upgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.add_column(sa.Column("public_base_url", sa.String(512), nullable=True))
        batch.add_column(sa.Column("log_origin", sa.String(200), nullable=True))
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM deployment WHERE id = 1")).first() is None:
        return  # a fresh database: `county init` fixes the names
    base = _base_from_issuing_ca(conn)
    origin = conn.execute(
        sa.text("SELECT origin FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
    ).scalar()
    if base is None:
        return  # nothing signed with a base URL yet: `county init` (run again) fixes the names
    if origin is None:
        from core.identity import origin_from

        origin = origin_from(base)
    op.execute(
        sa.text("UPDATE deployment SET public_base_url = :u, log_origin = :o WHERE id = 1").bindparams(
            u=base, o=str(origin)
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.drop_column("log_origin")
        batch.drop_column("public_base_url")
