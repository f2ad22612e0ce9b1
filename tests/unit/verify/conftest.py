"""Fixtures for the verifier's own tests: a test county PKI and documents sealed with real crypto."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.verify._factory import CountyCA, Issued, blank_pdf, sign_pdf
from verifier import TrustList, VerifyLimits

SIGNED_AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
FAST = VerifyLimits(sandbox=False)


@pytest.fixture(scope="session")
def county() -> CountyCA:
    return CountyCA()


@pytest.fixture(scope="session")
def seal(county: CountyCA) -> Issued:
    return county.issue_seal()


@pytest.fixture(scope="session")
def trust(county: CountyCA) -> TrustList:
    return TrustList(roots=(county.root.der,))


@pytest.fixture(scope="session")
def crl(county: CountyCA) -> bytes:
    return county.crl_der(datetime(2026, 2, 28, tzinfo=UTC))


@pytest.fixture(scope="session")
def sealed(county: CountyCA, seal: Issued, crl: bytes) -> bytes:
    """A one-page permit sealed at SIGNED_AT, signature timestamp, CRL in the DSS (B-LT shaped)."""
    return sign_pdf(blank_pdf(), county, seal, timestamp_at=SIGNED_AT, crls=[crl])


@pytest.fixture(scope="session")
def sealed_form(county: CountyCA, seal: Issued, crl: bytes) -> bytes:
    return sign_pdf(blank_pdf(with_form_field=True), county, seal, timestamp_at=SIGNED_AT, crls=[crl])
