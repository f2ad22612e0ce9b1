"""Issue 18's attack classes, built byte by byte against documents the real sealer has just made.

Every document here is sealed by ``Sealer.apply_seal`` with the SoftHSM token at B-LTA from a real template
(or from a supplied PDF prepared for the attack), then attacked by the builders in
``tests._fixtures.attacks`` and verified. Each attack must end TOTAL_FAILED with a code from an allowed set;
the positive controls (the sealed document, and it with an invisible document timestamp + DSS) must pass.
Where the sealing side is expected to refuse the attack's source, a separate test says so
(``test_sealer_refuses_*``), and the verifier side is tested on the same source signed by a test county CA.

The sealing fixtures are function-scoped (a fresh database per test); sealing once per module is done by
building the documents in the first test that needs them and keeping the bytes (``_world``). The database
kind plays no part in what the verifier sees, so this module runs on SQLite only (``db_url`` below).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests._fixtures import attacks as a
from tests._fixtures.signer import ACCEPTANCE_DATA, county_trust
from tests.unit.verify import _factory as f
from verifier import Indication, TrustList, VerificationReport, VerifyLimits, verify_document

pytestmark = pytest.mark.softhsm

FAST = VerifyLimits(sandbox=False)
VISIBLE = {"VISIBLE_WIDGET_AFTER_SEAL", "VISIBLE_CHANGE", "MODIFIED_AFTER_SIGNING"}
ACTIVE = {"ACTIVE_CONTENT"}
BROKEN = {
    "PDF_UNREADABLE",
    "CMS_MALFORMED",
    "BYTE_RANGE_INVALID",
    "CONTENTS_GAP_MISMATCH",
    "HASH_MISMATCH",
    "SIGNATURE_INVALID",
    "MODIFIED_AFTER_SIGNING",
    "NO_SIGNATURE",
    "STRUCTURE_INVALID",
    "XREF_INVALID",
}


@pytest.fixture
def db_url(tmp_path: Any) -> str:
    """SQLite only (overrides the SQLite + PostgreSQL pair of tests/conftest.py): see the module docstring."""
    from core.db import migrate

    url = f"sqlite:///{tmp_path / 'yizhang.db'}"
    migrate(url)
    return url


def _now() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=5)


def _trust(pki: Any) -> TrustList:
    return county_trust(pki)


def _request(seal: Any, clerk: Any, key: str, **kw: Any) -> Any:
    from signer import SealRequest

    args: dict[str, Any] = {
        "seal_id": seal.seal_id,
        "matter_code": "SX-002",
        "stage": "受理",
        "document_kind": "受理通知书",
        "idempotency_key": key,
        "operator": clerk,
        "reason": "受理临时救助申请",
        "level": "B-LTA",
    }
    args.update(kw)
    return SealRequest(**args)


def _source(number: str = "兴政发〔2026〕1号") -> bytes:
    """The acceptance notice as a supplied PDF (what a caller brings instead of a template). It shows a
    number of another organ's series: one of the centre's own series is refused at sealing (the service
    assigns those), see test_visible_number_differs_from_binding."""
    from signer import render_template

    return render_template(
        "acceptance_notice",
        {
            **ACCEPTANCE_DATA,
            "issuer": "兴国县兴江乡人民政府",
            "date": "2026年3月5日",
            "document_number": number,
        },
    )


def _forged_number(number: str) -> str:
    """The document number with its last digit changed, drawn from digits the embedded font has."""
    digit = "3" if not number.endswith("3号") else "2"
    return number[:-2] + digit + "号"


@dataclass
class World:
    """What the module's tests share: documents sealed once by the real sealer, and what verifies them."""

    sealed: bytes
    number: str
    trust: TrustList
    timestamper: Any  # the county TSA (CountyTimeStamper over Sealer.county_tsa())
    tsa_vc: Any  # a validation context for the county TSA's chain (DSS material)
    shadow: bytes | None  # the shadow-planted source, sealed (None when the sealer refused it)
    shadow_refusal: str | None
    shadow_obj: int
    shadow_number: str
    form_sealed: bytes  # a source with an empty text field, sealed
    rogue: f.CountyCA = field(default_factory=lambda: f.CountyCA(county="假县"))
    factory: f.CountyCA = field(default_factory=f.CountyCA)

    def forgery(self, number: str | None = None) -> a.Forgery:
        n = number or self.number
        return a.Forgery(old=n, new=_forged_number(n))

    def factory_sealed(self, source: bytes) -> bytes:
        """``source`` sealed by a plain pyHanko signer under the test county CA (CRL embedded)."""
        at = datetime.now(UTC) - timedelta(minutes=1)
        seal = self.factory.issue_seal(seal_id="FACTORY-1")
        crl = self.factory.crl_der(at - timedelta(hours=1))
        return f.sign_pdf(source, self.factory, seal, timestamp_at=at, crls=[crl])

    @property
    def factory_trust(self) -> TrustList:
        """The test county's root and the real county's (whose TSA stamps the attacks)."""
        return TrustList(
            roots=(self.factory.root.der, *self.trust.roots),
            intermediates=self.trust.intermediates,
            crls=self.trust.crls,
        )


_WORLD: list[World] = []


def _build_world(request: pytest.FixtureRequest) -> World:
    from asn1crypto import crl as asn1_crl
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import ValidationContext

    from core.errors import BadInput
    from signer import CountyTimeStamper

    sealer = request.getfixturevalue("sealer")
    seal = request.getfixturevalue("xingjiang_seal")
    clerk = request.getfixturevalue("xingjiang_clerk")
    pki = request.getfixturevalue("county_pki")
    doc = sealer.apply_seal(
        _request(seal, clerk, "attacks-main", template="acceptance_notice", template_data=ACCEPTANCE_DATA)
    )
    trust = _trust(pki)
    timestamper = CountyTimeStamper(sealer.county_tsa())
    tsa_vc = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(r) for r in trust.roots],
        other_certs=[asn1_x509.Certificate.load(c) for c in trust.intermediates],
        crls=[asn1_crl.CertificateList.load(c) for c in trust.crls],
        allow_fetching=False,
    )
    # 2. the shadow source: the overlay planted, unreferenced, before sealing
    shadow_number = "兴政发〔2026〕1号"
    source = _source(shadow_number)
    shadow_obj = a.trailer_size(source)
    planted = a.plant_orphan_overlay(source, a.Forgery(old=shadow_number, new=_forged_number(shadow_number)))
    shadow: bytes | None = None
    refusal: str | None = None
    try:
        shadow = sealer.apply_seal(_request(seal, clerk, "attacks-shadow", unverified_pdf=planted)).pdf
    except BadInput as exc:
        refusal = exc.code
    form = sealer.apply_seal(
        _request(seal, clerk, "attacks-form", unverified_pdf=a.add_text_field(_source()))
    )
    return World(
        sealed=doc.pdf,
        number=str(doc.document_number),
        trust=trust,
        timestamper=timestamper,
        tsa_vc=tsa_vc,
        shadow=shadow,
        shadow_refusal=refusal,
        shadow_obj=shadow_obj,
        shadow_number=shadow_number,
        form_sealed=form.pdf,
    )


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    if not _WORLD:
        _WORLD.append(_build_world(request))
    return _WORLD[0]


def _verify(pdf: bytes, trust: TrustList, limits: VerifyLimits = FAST, **kw: Any) -> VerificationReport:
    return verify_document(pdf, trust, now=_now(), limits=limits, **kw)


def _detail(r: VerificationReport) -> list[tuple[str, str | None]]:
    return [(x.code, x.detail) for x in r.reasons] + [
        (x.code, x.detail) for s in r.signatures for x in s.reasons
    ]


def assert_fails(r: VerificationReport, allowed: set[str]) -> None:
    assert r.indication is Indication.TOTAL_FAILED, (r.indication, _detail(r))
    assert allowed & set(r.codes), (sorted(allowed), _detail(r))


# ---------------------------------------------------------------------------------------------------------
# positive controls


@pytest.mark.parametrize("limits", [FAST, VerifyLimits()], ids=["in-process", "sandbox"])
def test_control_fresh_seal_passes(world: World, limits: VerifyLimits) -> None:
    r = _verify(world.sealed, world.trust, limits)
    assert r.indication is Indication.TOTAL_PASSED, _detail(r)
    assert r.facts.document_number == world.number


def test_control_invisible_county_timestamp_with_dss_passes(world: World) -> None:
    renewed = a.invisible_document_timestamp(world.sealed, world.timestamper, world.tsa_vc)
    assert renewed.startswith(world.sealed)
    r = _verify(renewed, world.trust)
    assert r.indication is Indication.TOTAL_PASSED, _detail(r)
    assert [s.kind for s in r.signatures][-1] == "doc_timestamp"


def test_control_factory_sealed_source_passes(world: World) -> None:
    # the verifier-side tests below seal attack sources with the test county CA: without the attack the
    # same source passes, so their TOTAL_FAILED is the attack's doing
    r = _verify(world.factory_sealed(_source()), world.factory_trust)
    assert r.indication is Indication.TOTAL_PASSED, _detail(r)


def test_control_forgery_changes_what_is_seen(world: World) -> None:
    # the overlay really covers the number and draws another one (so the attacks below are forgeries)
    import pypdfium2 as pdfium

    forged = a.overlay_page_content(world.sealed, world.forgery())
    doc = pdfium.PdfDocument(forged)
    try:
        text = doc[0].get_textpage().get_text_range()
    finally:
        doc.close()
    assert _forged_number(world.number) in text


# ---------------------------------------------------------------------------------------------------------
# 1. a visible document timestamp as an overlay (county TSA and a self-made TSA)


def _self_made_timestamper(ca: f.CountyCA) -> Any:
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    return DummyTimeStamper(
        tsa_cert=ca.tsa.asn1,
        tsa_key=ca.tsa.asn1_key,
        certs_to_embed=SimpleCertificateStore.from_certs([ca.root.asn1]),
        fixed_dt=datetime.now(UTC),
    )


def test_visible_timestamp_overlay_county_tsa(world: World) -> None:
    attacked = a.visible_timestamp_overlay(world.sealed, world.timestamper, world.forgery())
    assert_fails(_verify(attacked, world.trust), VISIBLE)


def test_visible_timestamp_overlay_self_made_tsa(world: World) -> None:
    attacked = a.visible_timestamp_overlay(world.sealed, _self_made_timestamper(world.rogue), world.forgery())
    assert_fails(_verify(attacked, world.trust), VISIBLE)


# ---------------------------------------------------------------------------------------------------------
# 2. shadow "hide": the overlay planted before sealing, revealed by a visible timestamp


def test_shadow_hide_with_visible_timestamp(world: World) -> None:
    if world.shadow is None:  # refused at sealing: the attack has no sealed document to start from
        assert world.shadow_refusal, "the sealer refused without a code"
        return
    attacked = a.visible_timestamp_overlay(
        world.shadow,
        world.timestamper,
        a.Forgery(old=world.shadow_number, new=_forged_number(world.shadow_number)),
        appearance_obj=world.shadow_obj,
    )
    assert_fails(_verify(attacked, world.trust), VISIBLE)


# ---------------------------------------------------------------------------------------------------------
# 3. Sneaky Signature Attack (Mainka et al., IEEE S&P 2021)

SNEAKY_BOX = (72.0, 560.0, 520.0, 700.0)


def test_sealer_refuses_sneaky_signature_field(
    sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any
) -> None:
    """SEALING SIDE: an empty signature field in the source must be refused (PDF_EMPTY_SIGNATURE_FIELD)."""
    from core.errors import BadInput

    sneaky = a.place_empty_signature_field(_source(), "Approval", SNEAKY_BOX)
    with pytest.raises(BadInput) as exc:
        sealer.apply_seal(_request(xingjiang_seal, xingjiang_clerk, "sneaky", unverified_pdf=sneaky))
    assert exc.value.code == "PDF_EMPTY_SIGNATURE_FIELD"


def test_sneaky_signature_attack_verifier_side(world: World) -> None:
    sneaky = a.place_empty_signature_field(_source("兴江审批〔2026〕1号"), "Approval", SNEAKY_BOX)
    sealed = world.factory_sealed(sneaky)
    forgery = a.Forgery(old="兴江审批〔2026〕1号", new="兴江审批〔2026〕3号")
    attacked = a.fill_sneaky_field(sealed, world.timestamper, "Approval", forgery)
    assert_fails(_verify(attacked, world.factory_trust), VISIBLE)


# ---------------------------------------------------------------------------------------------------------
# 4. active content, direct and indirect, after the seal and before it

ACTIVE_BUILDERS: dict[str, Callable[[bytes], bytes]] = {
    "open-action-js-inline": lambda b: a.add_open_action_javascript(b, inline=True),
    "names-js-inline": lambda b: a.add_names_javascript(b, inline=True),
    "launch-link-inline": lambda b: a.add_launch_link(b, inline=True),
    "open-action-js-indirect": lambda b: a.add_open_action_javascript(b, inline=False),
    "names-js-indirect": lambda b: a.add_names_javascript(b, inline=False),
    "launch-link-indirect": lambda b: a.add_launch_link(b, inline=False),
}


@pytest.mark.parametrize("attack", list(ACTIVE_BUILDERS))
def test_active_content_added_after_seal(world: World, attack: str) -> None:
    attacked = ACTIVE_BUILDERS[attack](world.sealed)
    assert_fails(_verify(attacked, world.trust), ACTIVE | VISIBLE)


def test_sealer_refuses_active_content(sealer: Any, xingjiang_seal: Any, xingjiang_clerk: Any) -> None:
    """SEALING SIDE: a source carrying active content in any form must be refused (PDF_ACTIVE_CONTENT)."""
    from core.errors import BadInput

    accepted = []
    for i, (name, build) in enumerate(ACTIVE_BUILDERS.items()):
        try:
            sealer.apply_seal(
                _request(xingjiang_seal, xingjiang_clerk, f"active-{i}", unverified_pdf=build(_source()))
            )
        except BadInput as exc:
            assert exc.code == "PDF_ACTIVE_CONTENT", (name, exc.code)
        else:
            accepted.append(name)
    assert not accepted, f"the sealer sealed sources with active content: {accepted}"


@pytest.mark.parametrize("attack", list(ACTIVE_BUILDERS))
def test_active_content_present_before_sealing_verifier_side(world: World, attack: str) -> None:
    sealed = world.factory_sealed(ACTIVE_BUILDERS[attack](_source()))
    assert_fails(_verify(sealed, world.factory_trust), ACTIVE)


# ---------------------------------------------------------------------------------------------------------
# 5. the visible number differs from the bound one


def test_visible_number_differs_from_binding(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    county_pki: Any,
    ledger: Any,
    ledger_signer: Any,
    engine: Any,
    tmp_path: Any,
) -> None:
    """Accepted outcomes, either: the sealer refuses the source (a BadInput code), or the sealed document
    verifies TOTAL_FAILED with BINDING_TEXT_MISMATCH — also when the ledger entry is checked."""
    from api._local_evidence import local_evidence
    from core.errors import BadInput
    from ledger import vkey_for

    shown = "兴江审批〔2026〕2号"
    try:
        doc = sealer.apply_seal(
            _request(xingjiang_seal, xingjiang_clerk, "shown-2", unverified_pdf=_source(shown))
        )
    except BadInput as exc:  # outcome A: refused at sealing
        assert exc.code, exc
        return
    assert doc.document_number != shown  # a fresh county: the sealer drew 〔2026〕1号
    trust = _trust(county_pki)
    assert_fails(_verify(doc.pdf, trust), {"BINDING_TEXT_MISMATCH"})
    ledger.checkpoint()
    vkey = tmp_path / "log.vkey"
    vkey.write_text(vkey_for(ledger_signer.name, ledger_signer.public_key))
    r = _verify(doc.pdf, trust, evidence=local_evidence(engine, vkey))
    assert r.facts.ledger_verified is True  # the entry is there and agrees with the binding ...
    assert_fails(r, {"BINDING_TEXT_MISMATCH"})  # ... and the page still shows another number


# ---------------------------------------------------------------------------------------------------------
# 6. a document with no ledger entry (signed with the seal key outside the service)


def test_document_without_ledger_entry_fails_when_ledger_is_available(
    sealer: Any,
    xingjiang_seal: Any,
    xingjiang_clerk: Any,
    seal_registry: Any,
    county_pki: Any,
    keystore: Any,
    ledger: Any,
    ledger_signer: Any,
    engine: Any,
    tmp_path: Any,
) -> None:
    from api._local_evidence import local_evidence
    from ledger import vkey_for
    from signer import CountyTimeStamper
    from signer._seal import SealingKey, SealJob, SignatureLevel, seal_pdf

    # one document through the service, so the ledger has an entry and a signed checkpoint
    real = sealer.apply_seal(
        _request(
            xingjiang_seal,
            xingjiang_clerk,
            "ledger-real",
            template="acceptance_notice",
            template_data=ACCEPTANCE_DATA,
        )
    )
    ledger.checkpoint()
    # the same seal key, used directly on the token: no number drawn, no entry logged
    key = SealingKey(
        key_label=xingjiang_seal.key_label,
        algorithm=xingjiang_seal.key_algorithm.value,
        chain_der=tuple(seal_registry.chain_der(xingjiang_seal)),
        seal_name=xingjiang_seal.name,
        seal_number=xingjiang_seal.number,
    )
    binding = {
        "matter": "SX-002",
        "stage": "ACCEPT",
        "document_kind": "ACCEPTANCE_NOTICE",
        "document_number": "兴江审批〔2026〕9号",
        "idempotency_key": "outside-the-service",
        "seal_id": xingjiang_seal.seal_id,
    }
    job = SealJob(
        key=key, binding=binding, level=SignatureLevel.B_LTA, revocation=sealer.revocation_material()
    )
    outside = seal_pdf(
        _source("兴江审批〔2026〕9号"), job, keystore, CountyTimeStamper(sealer.county_tsa()), max_bytes=10**7
    )
    vkey = tmp_path / "log.vkey"
    vkey.write_text(vkey_for(ledger_signer.name, ledger_signer.public_key))
    evidence = local_evidence(engine, vkey)
    trust = _trust(county_pki)
    control = _verify(real.pdf, trust, evidence=evidence)
    assert control.indication is Indication.TOTAL_PASSED and control.facts.ledger_verified is True, _detail(
        control
    )
    r = _verify(outside, trust, evidence=evidence)
    assert_fails(r, {"LEDGER_ENTRY_MISSING"})


# ---------------------------------------------------------------------------------------------------------
# 7. print-only optional content; /NeedAppearances and /DA


def test_print_only_content_in_page(world: World) -> None:
    attacked = a.add_print_only_page_content(world.sealed, world.forgery())
    assert_fails(_verify(attacked, world.trust), VISIBLE | {"OPTIONAL_CONTENT_VARIES"})


def test_print_only_visible_timestamp(world: World) -> None:
    attacked = a.visible_timestamp_overlay(world.sealed, world.timestamper, world.forgery(), print_only=True)
    assert_fails(_verify(attacked, world.trust), VISIBLE | {"OPTIONAL_CONTENT_VARIES"})


def test_need_appearances_set_after_seal(world: World) -> None:
    assert_fails(_verify(a.set_need_appearances(world.sealed), world.trust), VISIBLE)


def test_default_appearance_changed_after_seal(world: World) -> None:
    assert_fails(_verify(a.change_default_appearance(world.sealed), world.trust), VISIBLE)


# ---------------------------------------------------------------------------------------------------------
# 8. regression: what already holds


def test_page_content_changed_after_seal(world: World) -> None:
    assert_fails(_verify(a.overlay_page_content(world.sealed, world.forgery()), world.trust), VISIBLE)


def test_stamp_appearance_replaced(world: World) -> None:
    assert_fails(_verify(a.replace_stamp_appearance(world.sealed), world.trust), VISIBLE)


def test_form_filled_after_seal(world: World) -> None:
    control = _verify(world.form_sealed, world.trust)
    assert control.indication is Indication.TOTAL_PASSED, _detail(control)
    assert_fails(_verify(a.fill_text_field(world.form_sealed), world.trust), VISIBLE)


@pytest.mark.parametrize("variant", a.USF_VARIANTS)
def test_universal_signature_forgery(world: World, variant: str) -> None:
    attacked = a.universal_signature_forgery(world.sealed, variant, world.forgery())
    assert_fails(_verify(attacked, world.trust), BROKEN)


def test_signature_wrapping_relocated_revision(world: World) -> None:
    assert_fails(_verify(a.signature_wrapping(world.sealed), world.trust), BROKEN)


def test_signature_wrapping_in_the_gap(world: World) -> None:
    assert_fails(_verify(a.wrap_in_the_gap(world.sealed), world.trust), BROKEN)


def test_later_visible_signature_by_untrusted_signer(world: World) -> None:
    rogue = world.rogue.issue_seal(name="假县某乡人民政府行政审批服务专用章", seal_id="ROGUE")
    attacked = a.sign_visibly(
        world.sealed, rogue.asn1, rogue.asn1_key, [world.rogue.issuing.asn1, world.rogue.root.asn1]
    )
    assert_fails(_verify(attacked, world.trust), {"LATER_SIGNATURE_UNAUTHORISED"} | VISIBLE)


def test_empty_signature_field_added_after_seal(world: World) -> None:
    attacked = a.add_empty_signature_field(world.sealed)
    assert_fails(_verify(attacked, world.trust), {"UNSIGNED_FIELD_ADDED"} | VISIBLE)


def test_page_swapped_in_object_stream(world: World) -> None:
    attacked = a.page_swap_in_object_stream(world.sealed, world.forgery())
    assert_fails(_verify(attacked, world.trust), VISIBLE | {"STRUCTURE_INVALID", "XREF_INVALID"})
