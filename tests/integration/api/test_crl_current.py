"""``/pki/crl/*.crl`` always serves a current CRL (issue 19): real token, SQLite and PostgreSQL.

A suspension or resumption through the API is on the served CRL at once, with nobody calling
``crl publish``; a published CRL that is due (here: one dated a month ago) is replaced before it is served.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from tests.integration.api.test_county_admin import XJ, _issue, api_client  # noqa: F401 - the fixture

pytestmark = pytest.mark.softhsm


def _served(client) -> x509.CertificateRevocationList:  # type: ignore[no-untyped-def]
    r = client.get("/pki/crl/issuing.crl")
    assert r.status_code == 200, r.text
    return x509.load_der_x509_crl(r.content)


def test_suspension_is_on_the_served_crl_at_once(api_client, county_accounts) -> None:  # noqa: F811
    c, a = api_client, county_accounts
    seal_id = _issue(c, a["admin"], "兴江乡", XJ)
    serial = int(c.get(f"/v1/seals/{seal_id}", headers=a["admin"].headers).json()["cert_serial"], 16)
    custodian = a["xj.custodian"].headers
    r = c.post(f"/v1/seals/{seal_id}/suspend", json={"reason": "保管人休假"}, headers=custodian)
    assert r.status_code == 200, r.text
    entry = _served(c).get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.certificate_hold
    r = c.post(f"/v1/seals/{seal_id}/resume", json={}, headers=custodian)
    assert r.status_code == 200, r.text
    assert _served(c).get_revoked_certificate_by_serial_number(serial) is None


def test_a_due_crl_is_republished_before_it_is_served(api_client, county_pki) -> None:  # noqa: F811
    month_ago = datetime.now(UTC) - timedelta(days=30)
    old = county_pki.publish_crl(month_ago)  # as if nothing had published for a month
    served = _served(api_client)
    assert served.last_update_utc > month_ago + timedelta(days=29)
    assert served.next_update_utc is not None and served.next_update_utc > datetime.now(UTC) + timedelta(
        days=6
    )
    number = served.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > old.issuing_crl_number
