"""The verifier against attacks on documents it sealed itself (real crypto, test county PKI)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.verify import _factory as f
from tests.unit.verify.conftest import FAST, NOW, SIGNED_AT
from verifier import Indication, TrustList, VerifyLimits, verify_document


def _verify(pdf: bytes, trust: TrustList, limits: VerifyLimits = FAST):  # type: ignore[no-untyped-def]
    return verify_document(pdf, trust, now=NOW, limits=limits)


def test_trusted_seal_passes_with_facts(sealed: bytes, trust: TrustList) -> None:
    r = _verify(sealed, trust)
    assert r.indication is Indication.TOTAL_PASSED, r.codes
    assert r.facts.seal_name == "兴国县兴江乡人民政府行政审批服务专用章"
    assert r.facts.county == "兴国县" and r.facts.township == "兴江乡" and r.facts.seal_id == "SEAL-0001"
    assert r.facts.signing_time == SIGNED_AT and r.facts.signing_time_proven
    sig = r.signatures[0]
    assert sig.cross_check == "agree"
    assert sig.trusted and sig.intact and sig.crypto_valid
    assert {"qpdf", "strict-xref", "strict-diff", "endesive"} <= set(r.checks)


def test_trusted_seal_passes_in_the_sandbox(sealed: bytes, trust: TrustList) -> None:
    r = _verify(sealed, trust, VerifyLimits())
    assert r.indication is Indication.TOTAL_PASSED, r.codes


def test_untrusted_but_intact_is_indeterminate(sealed: bytes) -> None:
    r = _verify(sealed, TrustList.empty())
    assert r.indication is Indication.INDETERMINATE
    assert "SIGNER_UNTRUSTED" in r.codes


def test_other_county_root_is_not_trusted(sealed: bytes) -> None:
    other = f.CountyCA(county="于都县")
    r = _verify(sealed, TrustList(roots=(other.root.der,)))
    assert r.indication is Indication.INDETERMINATE and "SIGNER_UNTRUSTED" in r.codes


def _signed_offsets(pdf: bytes) -> tuple[int, int]:
    import re

    m = list(re.finditer(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", pdf))[0]
    return int(m.group(2)), int(m.group(3))


@pytest.mark.parametrize("where", ["early", "before_gap", "after_gap"])
def test_byte_flip_inside_signed_range_fails(sealed: bytes, trust: TrustList, where: str) -> None:
    gap_start, gap_end = _signed_offsets(sealed)
    pos = {"early": 400, "before_gap": gap_start - 40, "after_gap": gap_end + 20}[where]
    b = bytearray(sealed)
    b[pos] ^= 0x01
    r = _verify(bytes(b), trust)
    assert r.indication is Indication.TOTAL_FAILED, r.codes


def test_byte_flip_in_signature_value_fails(sealed: bytes, trust: TrustList) -> None:
    from asn1crypto import cms

    gap_start, gap_end = _signed_offsets(sealed)
    der = bytes.fromhex(sealed[gap_start + 1 : gap_end - 1].decode())
    sig_value = cms.ContentInfo.load(der)["content"]["signer_infos"][0]["signature"].native
    pos = sealed.lower().index(sig_value.hex().encode(), gap_start) + 20
    b = bytearray(sealed)
    b[pos] = ord("0") if b[pos] != ord("0") else ord("1")
    r = _verify(bytes(b), trust)
    assert r.indication is Indication.TOTAL_FAILED
    assert "SIGNATURE_INVALID" in r.codes


def test_unused_byte_in_signature_container_is_harmless_but_noted(sealed: bytes, trust: TrustList) -> None:
    # Flipping a byte in the zero padding after the DER leaves the CMS untouched: not an attack.
    gap_start, gap_end = _signed_offsets(sealed)
    b = bytearray(sealed)
    b[gap_end - 3] = ord("0") if b[gap_end - 3] != ord("0") else ord("1")
    r = _verify(bytes(b), trust)
    assert r.indication is not Indication.TOTAL_PASSED or r.signatures[0].intact


def test_whitespace_smuggled_into_the_gap_is_wrapping(sealed: bytes, trust: TrustList) -> None:
    # Hex strings may legally contain whitespace, so the CMS still parses and pyHanko says "intact"; the gap
    # then is room for something other than the signature value.
    gap_start, gap_end = _signed_offsets(sealed)
    b = bytearray(sealed)
    b[gap_end - 41 : gap_end - 1] = b" " * 40  # padding zeros → spaces
    r = _verify(bytes(b), trust)
    assert r.indication is Indication.TOTAL_FAILED
    assert "CONTENTS_GAP_MISMATCH" in r.codes


def test_trailing_bytes_fail(sealed: bytes, trust: TrustList) -> None:
    r = _verify(sealed + b"% hidden note\n", trust)
    assert r.indication is Indication.TOTAL_FAILED and "TRAILING_DATA" in r.codes


@pytest.mark.parametrize(
    "attack",
    [
        f.append_page_content_change,
        f.append_annotation,
        f.append_font_swap,
        f.append_image_xobject,
    ],
    ids=lambda a: a.__name__,
)
def test_incremental_update_after_seal_fails(sealed: bytes, trust: TrustList, attack) -> None:  # type: ignore[no-untyped-def]
    r = _verify(attack(sealed), trust)
    assert r.indication is Indication.TOTAL_FAILED, r.codes
    assert "MODIFIED_AFTER_SIGNING" in r.codes


def test_form_filling_after_seal_fails_although_pyhanko_accepts_it(
    sealed_form: bytes, trust: TrustList
) -> None:
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature

    attacked = f.append_form_fill(sealed_form)
    # pyHanko's default policy: FORM_FILLING is a permitted modification level for an approval signature.
    status = validate_pdf_signature(PdfFileReader(io.BytesIO(attacked)).embedded_signatures[0])
    assert status.intact and status.modification_level is not None
    assert status.modification_level.name == "FORM_FILLING"
    r = _verify(attacked, trust)
    assert r.indication is Indication.TOTAL_FAILED and "MODIFIED_AFTER_SIGNING" in r.codes


@pytest.mark.parametrize(
    "attack",
    [f.append_raw_update_with_broken_xref, f.append_orphan_update_with_broken_xref],
    ids=["redefine", "orphan"],
)
def test_appended_update_with_broken_xref_fails(sealed: bytes, trust: TrustList, attack) -> None:  # type: ignore[no-untyped-def]
    r = _verify(attack(sealed), trust)
    assert r.indication is Indication.TOTAL_FAILED
    assert set(r.codes) & {"XREF_INVALID", "STRUCTURE_INVALID"}


def test_replaced_xref_entry_fails(sealed: bytes, trust: TrustList) -> None:
    r = _verify(f.replace_last_xref(sealed), trust)
    assert r.indication is Indication.TOTAL_FAILED, r.codes


def test_second_seal_by_untrusted_signer_fails(sealed: bytes, trust: TrustList) -> None:
    rogue_ca = f.CountyCA(county="假县")
    rogue = rogue_ca.issue_seal(name="假县某乡人民政府行政审批服务专用章", seal_id="ROGUE")
    twice = f.sign_pdf(
        sealed, rogue_ca, rogue, field_name="Seal2", timestamp_at=datetime(2026, 3, 2, tzinfo=UTC)
    )
    r = _verify(twice, trust)
    assert r.indication is Indication.TOTAL_FAILED
    assert "LATER_SIGNATURE_UNAUTHORISED" in r.codes


def test_county_attestation_after_seal_passes(sealed: bytes, trust: TrustList, county: f.CountyCA) -> None:
    dept = county.issue_seal(name="兴国县行政审批局行政审批专用章", township="行政审批局", seal_id="DEPT-1")
    crl = county.crl_der(datetime(2026, 3, 2, tzinfo=UTC))
    twice = f.sign_pdf(
        sealed, county, dept, field_name="Attest", timestamp_at=datetime(2026, 3, 3, tzinfo=UTC), crls=[crl]
    )
    r = _verify(twice, trust)
    assert r.indication is Indication.TOTAL_PASSED, r.codes
    assert r.facts.attested_by == ("兴国县行政审批局行政审批专用章",)
    assert r.facts.seal_name == "兴国县兴江乡人民政府行政审批服务专用章"


def test_seal_cancelled_after_signing_still_passes(county: f.CountyCA, trust: TrustList) -> None:
    seal = county.issue_seal(seal_id="SEAL-LATER")
    crl_then = county.crl_der(datetime(2026, 2, 28, tzinfo=UTC))
    doc = f.sign_pdf(f.blank_pdf(), county, seal, timestamp_at=SIGNED_AT, crls=[crl_then])
    county.revoke(seal, datetime(2026, 4, 1, tzinfo=UTC))
    crl_now = county.crl_der(datetime(2026, 5, 30, tzinfo=UTC))
    r = _verify(doc, TrustList(roots=trust.roots, crls=(crl_now,)))
    assert r.indication is Indication.TOTAL_PASSED, r.codes
    assert "CERT_REVOKED_AFTER_SIGNING" in r.codes


def test_seal_cancelled_before_signing_fails(county: f.CountyCA, trust: TrustList) -> None:
    seal = county.issue_seal(seal_id="SEAL-BEFORE")
    county.revoke(seal, datetime(2026, 2, 1, tzinfo=UTC))
    crl = county.crl_der(datetime(2026, 2, 28, tzinfo=UTC))
    # pyHanko refuses to sign with a revoked certificate, so the CRL reaches the verifier by the trust list.
    doc = f.sign_pdf(f.blank_pdf(), county, seal, timestamp_at=SIGNED_AT)
    r = _verify(doc, TrustList(roots=trust.roots, crls=(crl,)))
    assert r.indication is Indication.TOTAL_FAILED
    assert "CERT_REVOKED" in r.codes


def test_no_revocation_information_is_indeterminate(county: f.CountyCA, trust: TrustList) -> None:
    seal = county.issue_seal(seal_id="SEAL-NOCRL")
    doc = f.sign_pdf(f.blank_pdf(), county, seal, timestamp_at=SIGNED_AT)
    r = _verify(doc, trust)
    assert r.indication is Indication.INDETERMINATE and "REVOCATION_UNKNOWN" in r.codes


def test_document_timestamp_after_seal_passes(sealed: bytes, trust: TrustList, county: f.CountyCA) -> None:
    lta = f.add_document_timestamp(sealed, county, datetime(2026, 3, 5, tzinfo=UTC))
    r = _verify(lta, trust)
    assert r.indication is Indication.TOTAL_PASSED, r.codes
    assert [s.kind for s in r.signatures] == ["signature", "doc_timestamp"]
    assert r.signatures[-1].covers_whole_file and r.signatures[-1].cross_check == "agree"


def test_document_timestamp_by_untrusted_tsa_is_indeterminate(sealed: bytes, trust: TrustList) -> None:
    other = f.CountyCA(county="某县")
    r = _verify(f.add_document_timestamp(sealed, other, datetime(2026, 3, 5, tzinfo=UTC)), trust)
    assert r.indication is Indication.INDETERMINATE and "TIMESTAMP_UNTRUSTED" in r.codes


def test_change_after_document_timestamp_fails(sealed: bytes, trust: TrustList, county: f.CountyCA) -> None:
    lta = f.add_document_timestamp(sealed, county, datetime(2026, 3, 5, tzinfo=UTC))
    r = _verify(f.append_annotation(lta), trust)
    assert r.indication is Indication.TOTAL_FAILED and "MODIFIED_AFTER_SIGNING" in r.codes


def test_seal_not_yet_valid_at_signing_time_fails(county: f.CountyCA, trust: TrustList) -> None:
    seal = county.issue_seal(seal_id="SEAL-FUTURE", not_before=datetime(2026, 4, 1, tzinfo=UTC))
    doc = f.sign_pdf(f.blank_pdf(), county, seal, timestamp_at=SIGNED_AT)
    r = _verify(doc, trust)
    assert r.indication is Indication.TOTAL_FAILED and "CERT_OUT_OF_VALIDITY" in r.codes


def test_empty_signature_field_added_after_sealing_fails(sealed: bytes, trust: TrustList) -> None:
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field

    def mutate(w):  # type: ignore[no-untyped-def]
        append_signature_field(w, SigFieldSpec("Overlay", box=(0, 0, 612, 792)))

    r = _verify(f._incremental(sealed, mutate), trust)
    assert r.indication is Indication.TOTAL_FAILED and "UNSIGNED_FIELD_ADDED" in r.codes


def test_untrusted_signature_before_the_seal(county: f.CountyCA, trust: TrustList, crl: bytes) -> None:
    # An applicant signed the form before the township sealed it: the seal is the primary signature, the
    # applicant's untrusted signature keeps the document from passing but is not an unauthorised change.
    applicant_ca = f.CountyCA(county="个人")
    applicant = applicant_ca.issue_seal(name="刘某某", seal_id="P-1")
    signed = f.sign_pdf(
        f.blank_pdf(), applicant_ca, applicant, field_name="Applicant", timestamp_at=SIGNED_AT
    )
    seal = county.issue_seal(seal_id="SEAL-AFTER-APPLICANT")
    doc = f.sign_pdf(
        signed, county, seal, field_name="Seal", timestamp_at=datetime(2026, 3, 2, tzinfo=UTC), crls=[crl]
    )
    r = _verify(doc, trust)
    assert r.indication is Indication.INDETERMINATE, r.codes
    assert "LATER_SIGNATURE_UNAUTHORISED" not in r.codes
    assert r.facts.seal_id == "SEAL-AFTER-APPLICANT"


def test_javascript_in_the_sealed_document_is_not_a_pass(
    county: f.CountyCA, trust: TrustList, crl: bytes
) -> None:
    from pyhanko.pdf_utils import generic

    def add_js(w):  # type: ignore[no-untyped-def]
        js = w.add_object(
            generic.DictionaryObject(
                {
                    generic.NameObject("/S"): generic.NameObject("/JavaScript"),
                    generic.NameObject("/JS"): generic.TextStringObject(
                        "this.getField('x').display = display.hidden;"
                    ),
                }
            )
        )
        w.root[generic.NameObject("/OpenAction")] = js
        w.update_root()

    doc = f._incremental(f.blank_pdf(), add_js)
    sealed = f.sign_pdf(doc, county, county.issue_seal(seal_id="SEAL-JS"), timestamp_at=SIGNED_AT, crls=[crl])
    r = _verify(sealed, trust)
    assert r.indication is Indication.TOTAL_FAILED and "ACTIVE_CONTENT" in r.codes
