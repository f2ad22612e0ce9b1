"""Issue 21, finding 6 ("Done when"): the hostile-PDF corpus is refused before any document number is drawn.

Every file of ``tests._fixtures.hostile.hostile_corpus`` (bombs, the 200 000-object and 60 000-page uploads,
a page-tree cycle, 100 000-deep nesting, scripts and actions as direct objects, layers, NeedAppearances, a
visible empty signature field, a page already printing a number of the centre's series, broken earlier
signatures from the foreign corpus …) is submitted through the real API (``POST /v1/signing-requests``)
by a clerk, twice: with the township's own seal (sealed at once when allowed) and with the bureau's No. 2
seal (waits for the principal, who approves). Each answer is a 4xx with the file's stable code, never a
201 or a 500. Then the tables: no number drawn (so none VOID), no gap, no ledger entry beyond the honest
document sealed last (which gets number 1), and ``check_invariants`` of the reliability suite holds.

Before this (2026-12-06): the content Flate bomb, the unreferenced Flate bomb, the 60 000-page file and two
foreign files with broken signatures were SEALED with official numbers, then rated TOTAL_FAILED by the
product's own verifier; the 200 000-object file and the xref-stream bomb were parsed in the server for
seconds (hundreds of MB) before being refused.

Real SoftHSM token, real pyHanko, SQLite and PostgreSQL (the signing workflow's ``county``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests._fixtures.hostile import hostile_corpus
from tests.integration.api.test_signing_workflow import HEALTH_LICENCE_FIRST, PDF, XJ, _submit, county
from tests.reliability._home import check_invariants

__all__ = ["county"]  # the signing workflow's county (real token, seals, policies)

pytestmark = pytest.mark.softhsm

#: The stable code each hostile file is refused with.
EXPECTED = {
    "200k-objects": "PDF_TOO_COMPLEX",
    "xref-stream-bomb": "PDF_TOO_COMPLEX",
    "page-tree-cycle": "PDF_STRUCTURE_INVALID",
    "deep-nesting-100k": "PDF_MALFORMED",
    "content-flate-bomb": "PDF_TOO_COMPLEX",
    "unreferenced-flate-bomb": "PDF_TOO_COMPLEX",
    "60k-pages": "PDF_TOO_COMPLEX",
    "direct-openaction-js": "PDF_ACTIVE_CONTENT",
    "direct-names-js": "PDF_ACTIVE_CONTENT",
    "direct-launch-link": "PDF_ACTIVE_CONTENT",
    "print-only-layer": "PDF_OPTIONAL_CONTENT",
    "off-layer": "PDF_OPTIONAL_CONTENT",
    "need-appearances": "PDF_NEEDS_APPEARANCES",
    "visible-empty-signature-field": "PDF_EMPTY_SIGNATURE_FIELD",
    "size-too-small": "PDF_STRUCTURE_INVALID",
    "prints-document-number": "PDF_SHOWS_DOCUMENT_NUMBER",
    "foreign:siwa.pdf": "PDF_STRUCTURE_INVALID",
    "foreign:BadEncodedCMS.pdf": "PDF_SIGNATURE_INVALID",
    "foreign:pdf-with-empty-sig.pdf": "PDF_SIGNATURE_INVALID",
    "foreign:pdf-signed-corrupted.pdf": "PDF_MALFORMED",
}


def _shows_own_number() -> bytes:
    from signer import render_template
    from tests._fixtures.signer import ACCEPTANCE_DATA

    data = {"issuer": "兴国县兴江乡人民政府", "date": "2026年11月22日", **ACCEPTANCE_DATA}
    # a bare number: it belongs to whatever series the seal draws from (the township's or the No. 2 seal's)
    return render_template("acceptance_notice", {**data, "document_number": "〔2026〕7号"})


def _plain_url(url: str) -> str:
    """The SQLAlchemy URL as ``check_invariants`` reads it (psycopg's plain ``postgresql://``)."""
    return "postgresql://" + url.split("://", 1)[1] if url.startswith("postgresql+") else url


def test_hostile_corpus_is_refused_before_a_number_is_drawn(county: Any) -> None:
    c, h, seals = county["client"], county["h"], county["seals"]
    corpus = hostile_corpus(PDF, _shows_own_number())
    assert set(corpus) == set(EXPECTED)
    own: dict[str, tuple[int, str | None]] = {}
    no2: dict[str, tuple[int, str | None]] = {}
    for i, (name, pdf) in enumerate(corpus.items()):
        # the township's own seal: allowed at once, so the bytes go straight to the sealer
        r = _submit(
            c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", f"own-{i:04d}", pdf
        )
        own[name] = (r.status_code, r.json().get("code"))
        # the No. 2 seal: the request waits for the principal; the refusal comes with the approval
        r = _submit(
            c,
            h["xj.clerk"],
            seals["no2"],
            HEALTH_LICENCE_FIRST,
            "审批",
            "许可证及其附件",
            f"no2-{i:04d}",
            pdf,
        )
        if r.status_code == 201:
            assert r.json()["status"] == "PENDING_APPROVAL", (name, r.json())
            r = c.post(
                f"/v1/signing-requests/{r.json()['request_id']}/approve",
                json={"comment": "同意"},
                headers=h["xj.principal"],
            )
        no2[name] = (r.status_code, r.json().get("code"))
    expected = {name: (400, code) for name, code in EXPECTED.items()}
    assert own == expected
    assert no2 == expected

    # nothing drawn for any of them: the tables hold no number, the ledger no seal entry
    services = c.app.state.services
    url = _plain_url(services.settings.effective_database_url)
    before = check_invariants(url)
    assert (before["used"], before["void"], before["documents"]) == (0, 0, 0), before

    # the honest document after all of them: number 1 of the series, and the invariants still hold
    r = _submit(c, h["xj.clerk"], seals[XJ], county["accept_matter"], "受理", "受理通知书", "own-honest", PDF)
    assert r.status_code == 201 and r.json()["status"] == "SEALED", r.text
    assert r.json()["document_number"].endswith("〕1号"), r.json()
    after = check_invariants(url)
    assert (after["used"], after["void"], after["documents"]) == (1, 0, 1), after
