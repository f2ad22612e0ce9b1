"""After the seal nothing a person sees may change, whoever signs or timestamps it (issue 18).

Each attack is built here, byte by byte with pyHanko's incremental writer, against a document freshly sealed
by the test county (real crypto). Before this rule the overlays below verified TOTAL_PASSED: pyHanko rates a
new visible signature field FORM_FILLING, and the old rule for later signatures looked at ``/Sig`` only,
never at ``/DocTimeStamp``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyhanko.pdf_utils import generic

from tests.unit.verify import _factory as f
from tests.unit.verify.conftest import FAST, NOW, SIGNED_AT
from verifier import Indication, TrustList, verify_document

LATER = datetime(2026, 3, 5, tzinfo=UTC)
_n = generic.NameObject


def _verify(pdf: bytes, trust: TrustList):  # type: ignore[no-untyped-def]
    return verify_document(pdf, trust, now=NOW, limits=FAST)


def _details(r) -> list[str]:  # type: ignore[no-untyped-def]
    return [x.detail or "" for x in r.reasons] + [x.detail or "" for s in r.signatures for x in s.reasons]


def test_visible_document_timestamp_by_the_county_tsa_is_an_overlay(
    sealed: bytes, trust: TrustList, county: f.CountyCA
) -> None:
    forged = f.add_visible_document_timestamp(sealed, county, LATER)
    r = _verify(forged, trust)
    assert r.indication is Indication.TOTAL_FAILED, r.codes
    assert "VISIBLE_WIDGET_AFTER_SEAL" in r.codes
    ts = r.signatures[-1]
    assert ts.kind == "doc_timestamp" and "VISIBLE_WIDGET_AFTER_SEAL" in [x.code for x in ts.reasons]


def test_visible_document_timestamp_by_a_self_made_tsa_fails_not_just_indeterminate(
    sealed: bytes, trust: TrustList
) -> None:
    forged = f.add_visible_document_timestamp(sealed, f.CountyCA(county="某县"), LATER)
    r = _verify(forged, trust)
    assert r.indication is Indication.TOTAL_FAILED and "VISIBLE_WIDGET_AFTER_SEAL" in r.codes


def test_invisible_document_timestamp_with_an_appearance_still_passes(
    sealed: bytes, trust: TrustList, county: f.CountyCA
) -> None:
    # a zero-area widget shows nothing whatever its appearance stream says (pyHanko rates it FORM_FILLING)
    doc = f.add_visible_document_timestamp(sealed, county, LATER, rect=(0, 0, 0, 0))
    r = _verify(doc, trust)
    assert r.indication is Indication.TOTAL_PASSED, (r.codes, _details(r))


def test_hidden_flag_makes_a_widget_invisible_but_noview_does_not() -> None:
    from verifier._pdfgraph import widget_visible as is_widget_visible

    def annot(flags: int, rect: tuple[int, ...] = (10, 10, 200, 60)) -> generic.DictionaryObject:
        return generic.DictionaryObject(
            {
                _n("/F"): generic.NumberObject(flags),
                _n("/Rect"): generic.ArrayObject(map(generic.NumberObject, rect)),
            }
        )

    assert not is_widget_visible(annot(2))  # Hidden
    assert is_widget_visible(annot(32))  # NoView: not on screen, but printed
    assert is_widget_visible(annot(4))
    assert not is_widget_visible(annot(4, (10, 10, 10, 60)))  # zero width
    bad = generic.DictionaryObject({_n("/Rect"): generic.TextStringObject("nonsense")})
    assert is_widget_visible(bad)  # unreadable rectangle: fail closed


def test_sneaky_signature_field_filled_after_the_seal_fails(
    county: f.CountyCA, seal: f.Issued, crl: bytes, trust: TrustList
) -> None:
    # Mainka et al., "Sneaky Signature Attack" (IEEE S&P 2021): the empty field is covered by the seal...
    source = f.with_empty_signature_field(f.blank_pdf(), "Sneaky", (60, 700, 420, 750))
    sealed = f.sign_pdf(source, county, seal, timestamp_at=SIGNED_AT, crls=[crl])
    assert _verify(sealed, trust).indication is Indication.TOTAL_PASSED
    # ...and filled afterwards by a trusted document timestamp whose appearance is the forgery
    forged = f.add_visible_document_timestamp(sealed, county, LATER, field_name="Sneaky", existing_field=True)
    r = _verify(forged, trust)
    assert r.indication is Indication.TOTAL_FAILED, r.codes
    assert "VISIBLE_WIDGET_AFTER_SEAL" in r.codes
    assert any("existed before the seal" in d for d in _details(r))


def test_sneaky_field_filled_by_a_trusted_second_seal_fails(
    county: f.CountyCA, seal: f.Issued, crl: bytes, trust: TrustList
) -> None:
    # even a trusted signer may not fill a field the seal covered empty: only a new field is an attestation
    source = f.with_empty_signature_field(f.blank_pdf(), "Sneaky", (60, 700, 420, 750))
    sealed = f.sign_pdf(source, county, seal, timestamp_at=SIGNED_AT, crls=[crl])
    dept = county.issue_seal(name="兴国县行政审批局行政审批专用章", township="行政审批局", seal_id="DEPT-S")
    crl2 = county.crl_der(datetime(2026, 3, 2, tzinfo=UTC))
    twice = f.sign_pdf(sealed, county, dept, field_name="Sneaky", timestamp_at=LATER, crls=[crl2])
    r = _verify(twice, trust)
    assert r.indication is Indication.TOTAL_FAILED and "VISIBLE_WIDGET_AFTER_SEAL" in r.codes


def test_need_appearances_set_after_the_seal_fails(sealed_form: bytes, trust: TrustList) -> None:
    r = _verify(f.append_acroform_entry(sealed_form, "/NeedAppearances", generic.BooleanObject(True)), trust)
    assert r.indication is Indication.TOTAL_FAILED and "MODIFIED_AFTER_SIGNING" in r.codes


def test_default_appearance_changed_after_the_seal_fails(sealed_form: bytes, trust: TrustList) -> None:
    r = _verify(
        f.append_acroform_entry(sealed_form, "/DA", generic.TextStringObject("/Helv 0 Tf 1 g")), trust
    )
    assert r.indication is Indication.TOTAL_FAILED and "MODIFIED_AFTER_SIGNING" in r.codes


def test_optional_content_switched_after_the_seal_fails(sealed: bytes, trust: TrustList) -> None:
    def ocprops(w):  # type: ignore[no-untyped-def]
        ocg = w.add_object(
            generic.DictionaryObject(
                {_n("/Type"): _n("/OCG"), _n("/Name"): generic.TextStringObject("print")}
            )
        )
        return generic.DictionaryObject(
            {
                _n("/OCGs"): generic.ArrayObject([ocg]),
                _n("/D"): generic.DictionaryObject({_n("/OFF"): generic.ArrayObject([ocg])}),
            }
        )

    r = _verify(f.append_catalog_entry(sealed, "/OCProperties", ocprops), trust)
    assert r.indication is Indication.TOTAL_FAILED and "MODIFIED_AFTER_SIGNING" in r.codes


def test_page_labels_changed_after_the_seal_fail(sealed: bytes, trust: TrustList) -> None:
    def labels(w):  # type: ignore[no-untyped-def]
        return generic.DictionaryObject(
            {
                _n("/Nums"): generic.ArrayObject(
                    [
                        generic.NumberObject(0),
                        generic.DictionaryObject({_n("/P"): generic.TextStringObject("X")}),
                    ]
                )
            }
        )

    r = _verify(f.append_catalog_entry(sealed, "/PageLabels", labels), trust)
    assert r.indication is Indication.TOTAL_FAILED and "MODIFIED_AFTER_SIGNING" in r.codes


def test_the_after_seal_rule_names_the_object(sealed: bytes, trust: TrustList) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    from verifier._after_seal import later_revision_problems

    forged = f.append_page_content_change(sealed)
    import io

    reader = PdfFileReader(io.BytesIO(forged), strict=True)
    problems = later_revision_problems(reader, reader.xrefs.total_revisions - 2)
    assert problems and "revision" in problems[0]
    assert any("page object" in p or "new object" in p for p in problems), problems


def test_ltv_only_revisions_have_no_problems(sealed: bytes, county: f.CountyCA) -> None:
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    from verifier._after_seal import later_revision_problems

    lta = f.add_document_timestamp(sealed, county, LATER)
    reader = PdfFileReader(io.BytesIO(lta), strict=True)
    assert later_revision_problems(reader, 1) == []


# --- the after-seal rule on its own: hijacked roles and shadow slots (named whatever pyHanko says)


def _problems(pdf: bytes) -> list[str]:
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    from verifier._after_seal import later_revision_problems

    reader = PdfFileReader(io.BytesIO(pdf), strict=True)
    return later_revision_problems(reader, 1)  # revision 1: the seal (revision 0 is the source)


def _content_ref(w):  # type: ignore[no-untyped-def]
    _ref, page = f._page(w)
    return page.raw_get("/Contents")


def _rewrite_content(w, text: str = "Permit 2036-999"):  # type: ignore[no-untyped-def]
    ref = _content_ref(w)
    stream = ref.get_object()
    stream._data = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    stream._encoded_data = None
    w.mark_update(ref)
    return ref


def test_content_rewritten_and_posing_as_document_info_is_named(sealed: bytes) -> None:
    def mutate(w):  # type: ignore[no-untyped-def]
        w.trailer[_n("/Info")] = _rewrite_content(w)

    problems = _problems(f._incremental(sealed, mutate))
    assert any("changed object" in p for p in problems), problems


def test_content_rewritten_and_hung_under_the_dss_is_named(sealed: bytes) -> None:
    def mutate(w):  # type: ignore[no-untyped-def]
        ref = _rewrite_content(w)
        w.root[_n("/DSS")] = generic.DictionaryObject({_n("/Certs"): generic.ArrayObject([ref])})
        w.update_root()

    problems = _problems(f._incremental(sealed, mutate))
    assert any("changed object" in p for p in problems), problems


def test_content_retyped_as_metadata_is_named(sealed: bytes) -> None:
    def mutate(w):  # type: ignore[no-untyped-def]
        ref = _rewrite_content(w)
        stream = ref.get_object()
        stream[_n("/Type")] = _n("/Metadata")
        stream[_n("/Subtype")] = _n("/XML")

    problems = _problems(f._incremental(sealed, mutate))
    assert any("changed object" in p for p in problems), problems


def test_object_added_where_the_sealed_page_already_pointed_is_a_shadow(
    county: f.CountyCA, seal: f.Issued, crl: bytes, trust: TrustList
) -> None:
    # the source page draws [its content, 900 0 R]; object 900 does not exist when it is sealed (null)
    def dangle(w):  # type: ignore[no-untyped-def]
        page_ref, page = f._page(w)
        page[_n("/Contents")] = generic.ArrayObject(
            [page.raw_get("/Contents"), generic.IndirectObject(900, 0, w)]
        )
        w.mark_update(page_ref)

    source = f._incremental(f.blank_pdf(), dangle)
    sealed = f.sign_pdf(source, county, seal, timestamp_at=SIGNED_AT, crls=[crl])

    def reveal(w):  # type: ignore[no-untyped-def]
        # an "XMP metadata" stream under the number the page already draws: white box + new text
        stream = generic.StreamObject(
            {_n("/Type"): _n("/Metadata"), _n("/Subtype"): _n("/XML")},
            stream_data=b"1 1 1 rg 60 700 400 60 re f 0 g BT /F1 24 Tf 72 720 Td (Permit 2036-999) Tj ET",
        )
        w.objects[(0, 900)] = stream  # placed under the number the page refers to
        w.root[_n("/Metadata")] = generic.IndirectObject(900, 0, w)
        w.update_root()

    try:
        forged = f._incremental(sealed, reveal)
    except Exception:  # noqa: BLE001 - pyHanko's writer refuses a chosen object number
        import pytest

        pytest.skip("the writer cannot place an object under a chosen number")
    problems = _problems(forged)
    assert any("shadow" in p for p in problems), problems
    r = _verify(forged, trust)
    assert r.indication is Indication.TOTAL_FAILED
