"""Seal the document as it is shown (issue 18): the sealing gate on the real token, policies and ledger.

A PDF brought to be sealed that a viewer could show otherwise than it is sealed — scripts or actions in any
object form, layers that differ between screen and print, a visible empty signature field (Sneaky
Signature Attack), a form that asks for new appearances, a structure qpdf must repair — is refused with a
stable code *before* a document number is drawn: no number is reserved or voided, the ledger has no
entry and still audits.

And the other way round: a source PDF whose page holds an annotation written inline in ``/Annots`` is
sealed at B-LTA and verifies TOTAL_PASSED (it used to verify MODIFIED_AFTER_SIGNING).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name as n
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from tests._fixtures.signer import PERMIT_DATA

pytestmark = pytest.mark.softhsm

D = generic.DictionaryObject
A = generic.ArrayObject


#: A supplied PDF may not print a number of the centre's own series (PDF_SHOWS_DOCUMENT_NUMBER): the permit
#: as another organ would number it.
SUPPLIED_DATA = {**PERMIT_DATA, "document_number": "兴卫发〔2026〕1号"}


def _rect(*xs: float) -> generic.ArrayObject:
    return A([generic.FloatObject(x) for x in xs])


def _permit_with(mutate: Callable[[IncrementalPdfFileWriter, Any, Any], None]) -> bytes:
    """The real permit template, then one incremental update made by ``mutate(writer, page, page_ref)``."""
    from signer._templates import render_template

    w = IncrementalPdfFileWriter(BytesIO(render_template("public_place_hygiene_permit", SUPPLIED_DATA)))
    page_ref = w.root["/Pages"].raw_get("/Kids")[0]
    page = page_ref.get_object()
    mutate(w, page, page_ref)
    w.update_container(page)
    w.update_root()
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def _js() -> generic.DictionaryObject:
    return D({n("/S"): n("/JavaScript"), n("/JS"): generic.TextStringObject("app.alert(1)")})


def _inline_open_action(w: Any, page: Any, ref: Any) -> None:
    w.root[n("/OpenAction")] = _js()


def _inline_names_js(w: Any, page: Any, ref: Any) -> None:
    w.root[n("/Names")] = D({n("/JavaScript"): D({n("/Names"): A([generic.TextStringObject("a"), _js()])})})


def _inline_launch_link(w: Any, page: Any, ref: Any) -> None:
    action = D({n("/S"): n("/Launch"), n("/F"): generic.TextStringObject("calc.exe")})
    page[n("/Annots")] = A(
        [D({n("/Subtype"): n("/Link"), n("/Rect"): _rect(50, 50, 150, 70), n("/A"): action})]
    )


def _print_only_layer(w: Any, page: Any, ref: Any) -> None:
    usage = D({n("/Print"): D({n("/PrintState"): n("/ON")}), n("/View"): D({n("/ViewState"): n("/OFF")})})
    group = w.add_object(
        D({n("/Type"): n("/OCG"), n("/Name"): generic.TextStringObject("p"), n("/Usage"): usage})
    )
    w.root[n("/OCProperties")] = D(
        {
            n("/OCGs"): A([group]),
            n("/D"): D(
                {
                    n("/ON"): A([group]),
                    n("/AS"): A(
                        [
                            D(
                                {
                                    n("/Event"): n("/Print"),
                                    n("/OCGs"): A([group]),
                                    n("/Category"): A([n("/Print")]),
                                }
                            )
                        ]
                    ),
                }
            ),
        }
    )


def _off_layer(w: Any, page: Any, ref: Any) -> None:
    group = w.add_object(D({n("/Type"): n("/OCG"), n("/Name"): generic.TextStringObject("hidden")}))
    w.root[n("/OCProperties")] = D({n("/OCGs"): A([group]), n("/D"): D({n("/OFF"): A([group])})})


def _sig_field(box: tuple[float, ...], need_appearances: bool = False) -> Callable[[Any, Any, Any], None]:
    def mutate(w: Any, page: Any, ref: Any) -> None:
        field = w.add_object(
            D(
                {
                    n("/FT"): n("/Sig"),
                    n("/T"): generic.TextStringObject("Later1"),
                    n("/Type"): n("/Annot"),
                    n("/Subtype"): n("/Widget"),
                    n("/Rect"): _rect(*box),
                    n("/F"): generic.NumberObject(4),
                    n("/P"): ref,
                }
            )
        )
        page[n("/Annots")] = A([field])
        form = D({n("/Fields"): A([field])})
        if need_appearances:
            form[n("/NeedAppearances")] = generic.BooleanObject(True)
        w.root[n("/AcroForm")] = form

    return mutate


def _size_too_small(pdf: bytes) -> bytes:
    """The trailer's /Size below the highest object number: objects a reader may not see (qpdf warns)."""
    m = re.search(rb"/Size (\d+)", pdf)
    assert m is not None
    return pdf[: m.start(1)] + str(int(m.group(1)) - 3).encode().rjust(len(m.group(1))) + pdf[m.end(1) :]


def _request(seal: Any, clerk: Any, pdf: bytes, key: str, level: str = "B-T") -> Any:
    from signer import SealRequest

    return SealRequest(
        seal_id=seal.seal_id,
        matter_code="SX-002",
        stage="受理",
        document_kind="受理通知书",
        idempotency_key=key,
        operator=clerk,
        reason="受理临时救助申请",
        unverified_pdf=pdf,
        level=level,
    )


def test_unsealable_inputs_are_refused_before_a_number_is_drawn(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, ledger: Any, engine: Any
) -> None:
    from core.db import transaction
    from core.errors import BadInput
    from signer._numbers import numbers
    from signer._templates import render_template

    cases = {
        "inline-openaction": (_permit_with(_inline_open_action), "PDF_ACTIVE_CONTENT"),
        "inline-names-js": (_permit_with(_inline_names_js), "PDF_ACTIVE_CONTENT"),
        "inline-launch-link": (_permit_with(_inline_launch_link), "PDF_ACTIVE_CONTENT"),
        "print-only-layer": (_permit_with(_print_only_layer), "PDF_OPTIONAL_CONTENT"),
        "off-layer": (_permit_with(_off_layer), "PDF_OPTIONAL_CONTENT"),
        "sneaky-field": (_permit_with(_sig_field((300, 100, 500, 160))), "PDF_EMPTY_SIGNATURE_FIELD"),
        "need-appearances": (_permit_with(_sig_field((0, 0, 0, 0), True)), "PDF_NEEDS_APPEARANCES"),
        "structure": (
            _size_too_small(render_template("public_place_hygiene_permit", SUPPLIED_DATA)),
            "PDF_STRUCTURE_INVALID",
        ),
    }
    codes: dict[str, str] = {}
    for i, (name, (pdf, _)) in enumerate(cases.items()):
        with pytest.raises(BadInput) as err:
            sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, pdf, f"gate-{i}"))
        codes[name] = err.value.code
    assert codes == {name: code for name, (_, code) in cases.items()}
    with transaction(engine) as s:
        assert numbers(s, xingjiang_seal.township_code, 2026) == []  # none drawn, so none voided
    report = ledger.audit()
    assert report.ok and report.size == 0  # no DOCUMENT_NUMBER_VOIDED, no entry at all

    # the clean permit and an invisible empty signature field pass the gate; the first number is 1
    ok = sealer.apply_seal(
        _request(xingjiang_seal, xingjiang_clerk, _permit_with(_sig_field((0, 0, 0, 0))), "gate-ok")
    )
    assert ok.document_number.endswith("〕1号")
    assert ledger.audit().ok


def _inline_uri_link(w: Any, page: Any, ref: Any) -> None:
    uri = D({n("/S"): n("/URI"), n("/URI"): generic.TextStringObject("https://example.org/")})
    page[n("/Annots")] = A(
        [
            D(
                {
                    n("/Type"): n("/Annot"),
                    n("/Subtype"): n("/Link"),
                    n("/Rect"): _rect(50, 50, 150, 70),
                    n("/A"): uri,
                }
            )
        ]
    )


def test_inline_annotation_document_seals_and_verifies(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any, county_pki: Any
) -> None:
    """Before: B-LTA sealed, then MODIFIED_AFTER_SIGNING ("Array contains direct objects"): the document
    timestamp's revision adds a field, and pyHanko's SigFieldCreationRule refuses a direct /Annots entry."""
    from cryptography.hazmat.primitives import serialization

    from verifier import Indication, TrustList, VerifyLimits, verify_document

    source = _permit_with(_inline_uri_link)
    doc = sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, source, "inline-annot", level="B-LTA"))
    der = serialization.Encoding.DER
    trust = TrustList(
        roots=(county_pki.root_certificate.public_bytes(der),),
        intermediates=(county_pki.issuing_certificate.public_bytes(der),),
        crls=(county_pki.crl_der("issuing"), county_pki.crl_der("root")),
    )
    now = datetime.now(UTC) + timedelta(minutes=5)
    r = verify_document(doc.pdf, trust, now=now, limits=VerifyLimits(sandbox=False))
    assert r.indication is Indication.TOTAL_PASSED, [
        (x.code, x.detail) for s in r.signatures for x in s.reasons
    ]
    assert r.signatures[-1].kind == "doc_timestamp"
    # the link is still there, unchanged, as an object of its own in the seal's revision
    from pyhanko.pdf_utils.reader import PdfFileReader

    page = PdfFileReader(BytesIO(doc.pdf)).root["/Pages"]["/Kids"][0]
    links = [a for a in page.raw_get("/Annots") if a.get_object()["/Subtype"] == "/Link"]
    assert len(links) == 1 and isinstance(links[0], generic.IndirectObject)
    assert str(links[0].get_object()["/A"]["/URI"]) == "https://example.org/"
