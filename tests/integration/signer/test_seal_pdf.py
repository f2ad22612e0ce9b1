"""Sealing on the real token: pyHanko validator (county root as anchor), pdfsig, qpdf, openssl ts."""

from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from tests._fixtures.signer import validate_all

pytestmark = pytest.mark.softhsm
OUT = Path(__file__).resolve().parents[3] / "test-output" / "signer"


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    from core.db import migrate

    migrate(sqlite_url)
    return sqlite_url


@pytest.fixture
def stamper(county_tsa: Any) -> Any:
    from signer._tsa import CountyTimeStamper

    return CountyTimeStamper(county_tsa)


def _seal(
    pdf: bytes, key: Any, keystore: Any, stamper: Any, level: str, revocation: Any = None, **kw: Any
) -> bytes:
    from signer._seal import SealJob, SignatureLevel, seal_pdf

    binding = {
        "matter": "M-001",
        "stage": "审批",
        "document_kind": "许可证及其附件",
        "document_number": "兴江审批〔2026〕1号",
        "idempotency_key": "k-1",
    }
    job = SealJob(key=key, binding=binding, level=SignatureLevel.parse(level), revocation=revocation, **kw)
    return seal_pdf(pdf, job, keystore, stamper, max_bytes=50 * 1024 * 1024)


def test_b_t_validates_everywhere(
    permit_pdf: bytes, sealing_key: Any, keystore: Any, stamper: Any, revocation: Any, tmp_path: Path
) -> None:
    from signer._seal import read_binding

    sealed = _seal(permit_pdf, sealing_key, keystore, stamper, "B-T")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "permit_sealed_bt.pdf").write_bytes(sealed)
    [status] = validate_all(sealed, revocation.root_der, revocation.crls_der)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.timestamp_validity is not None and status.timestamp_validity.intact
    assert status.coverage.name == "ENTIRE_FILE"
    assert read_binding(sealed)[0]["document_number"] == "兴江审批〔2026〕1号"

    f = tmp_path / "s.pdf"
    f.write_bytes(sealed)
    r = subprocess.run(["pdfsig", str(f)], capture_output=True, text=True)
    assert "Signature is Valid" in r.stdout and "Total document signed" in r.stdout, r.stdout
    r = subprocess.run(["qpdf", "--check", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    subprocess.run(
        ["pdftoppm", "-r", "80", "-png", "-l", "1", str(f), str(OUT / "permit_sealed_bt")], check=True
    )


def test_b_lta_and_timestamp_tokens_verify_with_openssl(
    permit_pdf: bytes,
    sealing_key: Any,
    keystore: Any,
    stamper: Any,
    revocation: Any,
    trust_pem: dict[str, Path],
    tmp_path: Path,
) -> None:
    from asn1crypto import cms
    from pyhanko.pdf_utils.reader import PdfFileReader

    sealed = _seal(permit_pdf, sealing_key, keystore, stamper, "B-LTA", revocation)
    statuses = validate_all(sealed, revocation.root_der, revocation.crls_der)
    assert len(statuses) == 2
    assert all(s.intact and s.valid and s.trusted for s in statuses)
    reader = PdfFileReader(BytesIO(sealed))
    assert "/DSS" in reader.root and "/CRLs" in reader.root["/DSS"]
    # The signature timestamp token: extract it and let openssl verify it against the signature value.
    emb = reader.embedded_signatures[0]
    signer_info = emb.signed_data["signer_infos"][0]
    token = signer_info["unsigned_attrs"][0]["values"][0]
    assert isinstance(token, cms.ContentInfo)
    tok = tmp_path / "token.der"
    tok.write_bytes(token.dump())
    data = tmp_path / "sig.bin"
    data.write_bytes(signer_info["signature"].native)
    r = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-token_in",
            "-in",
            str(tok),
            "-data",
            str(data),
            "-CAfile",
            str(trust_pem["root"]),
            "-untrusted",
            str(trust_pem["issuing"]),
        ],
        capture_output=True,
        text=True,
    )
    assert "Verification: OK" in r.stdout, r.stdout + r.stderr
    # The document timestamp (B-LTA): openssl checks its token against the digest of its byte range.
    doc_ts = reader.embedded_signatures[1]
    assert doc_ts.sig_object.get("/Type") == "/DocTimeStamp"
    tok.write_bytes(cms.ContentInfo({"content_type": "signed_data", "content": doc_ts.signed_data}).dump())
    r = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-token_in",
            "-in",
            str(tok),
            "-digest",
            doc_ts.compute_digest().hex(),
            "-CAfile",
            str(trust_pem["root"]),
            "-untrusted",
            str(trust_pem["issuing"]),
        ],
        capture_output=True,
        text=True,
    )
    assert "Verification: OK" in r.stdout, r.stdout + r.stderr
    f = tmp_path / "lta.pdf"
    f.write_bytes(sealed)
    assert subprocess.run(["qpdf", "--check", str(f)], capture_output=True).returncode == 0


def test_attestation_keeps_first_signature_valid(
    permit_pdf: bytes, sealing_key: Any, keystore: Any, stamper: Any, revocation: Any, seal_registry: Any
) -> None:
    from signer._seal import Placement, SealingKey
    from tests._fixtures.keystore import FIXED_NOW

    first = _seal(permit_pdf, sealing_key, keystore, stamper, "B-T")
    # A county department's seal: here a second township-kind seal of the county stands in for it.
    from tests._fixtures.keystore import issue_township_seal

    dept = issue_township_seal(
        seal_registry, township="县行政审批局", code="360732999", name="兴国县行政审批局行政审批专用章"
    )
    seal_registry.activate(dept.seal_id, actor="a", approved_by="b", now=FIXED_NOW)
    key2 = SealingKey(
        key_label=dept.key_label,
        algorithm=dept.key_algorithm.value,
        chain_der=tuple(seal_registry.chain_der(dept)),
        seal_name=dept.name,
    )
    second = _seal(
        first, key2, keystore, stamper, "B-T", placement=Placement(page=-1, box=(100, 110, 219, 229))
    )
    assert second.startswith(first)
    statuses = validate_all(second, revocation.root_der, revocation.crls_der)
    assert len(statuses) == 2 and all(s.intact and s.valid and s.trusted for s in statuses)
    assert statuses[0].coverage.name == "ENTIRE_REVISION" and statuses[1].coverage.name == "ENTIRE_FILE"
    assert statuses[0].modification_level.name in ("FORM_FILLING", "LTA_UPDATES")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "permit_attested.pdf").write_bytes(second)
