"""Fixtures for the signer package's tests (owned by that area): the county TSA on the real token."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def county_tsa(engine: Any, keystore: Any, county_pki: Any) -> Any:
    from signer._tsa import CountyTsa, ensure_county_tsa

    return CountyTsa(keystore, ensure_county_tsa(engine, keystore, county_pki))


@pytest.fixture
def trust_pem(tmp_path: Any, county_pki: Any) -> dict[str, Any]:
    """The county root (trust anchor) and issuing CA as PEM files, for openssl and pdfsig."""
    from cryptography.hazmat.primitives import serialization

    root = tmp_path / "root.pem"
    root.write_bytes(county_pki.root_certificate.public_bytes(serialization.Encoding.PEM))
    issuing = tmp_path / "issuing.pem"
    issuing.write_bytes(county_pki.issuing_certificate.public_bytes(serialization.Encoding.PEM))
    return {"root": root, "issuing": issuing}


PERMIT_DATA = {
    "issuer": "兴国县兴江乡人民政府",
    "unit_name": "兴国县兴江乡好客来宾馆",
    "legal_representative": "刘某某",
    "address": "兴国县兴江乡兴江大道88号",
    "licensed_items": "住宿（旅店业）",
    "valid_from": "2026年3月5日",
    "valid_until": "2030年3月4日",
    "date": "2026年3月5日",
    "document_number": "兴江审批〔2026〕1号",
}

# The templates issue 22 added: 不予行政许可决定书 (行政许可法 第三十八条) and two more permits of the
# Xingguo list (XG-12 林木采伐许可证, XG-22 农药经营许可证).
LICENCE_REFUSAL_DATA = {
    "issuer": "兴国县兴江乡人民政府",
    "applicant": "兴国县兴江乡好客来宾馆",
    "matter_name": "公共场所卫生许可（首次）",
    "submitted_date": "2026年3月1日",
    "reasons": ["经营场所的卫生设施不符合要求", "未提交从业人员健康合格证明"],
    "basis": "《公共场所卫生管理条例》第八条",
    "review_body": "兴国县人民政府",
    "date": "2026年3月5日",
    "document_number": "兴江审批〔2026〕1号",
}
FELLING_PERMIT_DATA = {
    "issuer": "兴国县兴江乡人民政府",
    "holder": "刘某某",
    "location": "兴国县兴江乡兴江村老屋下组（小地名：背山岭）",
    "forest_type": "商品林（用材林）",
    "species": "杉木",
    "felling_type": "主伐",
    "felling_method": "皆伐",
    "area": "1.2公顷",
    "volume": "18.6立方米",
    "valid_from": "2026年3月5日",
    "valid_until": "2026年12月31日",
    "regeneration": "2027年12月31日前完成更新造林1.2公顷",
    "date": "2026年3月5日",
    "document_number": "兴江审批〔2026〕1号",
}
PESTICIDE_PERMIT_DATA = {
    "issuer": "兴国县兴江乡人民政府",
    "unit_name": "兴国县兴江乡丰收农资经营部",
    "credit_code": "92360732MA3XXXXX0K",
    "legal_representative": "刘某某",
    "address": "兴国县兴江乡兴江大道88号",
    "business_premises": "兴国县兴江乡兴江大道88号",
    "storage_premises": "兴国县兴江乡兴江大道90号仓库",
    "valid_from": "2026年3月5日",
    "valid_until": "2031年3月4日",
    "date": "2026年3月5日",
    "document_number": "兴江审批〔2026〕1号",
}


@pytest.fixture(scope="session")
def permit_pdf() -> bytes:
    from signer._templates import render_template

    return render_template("public_place_hygiene_permit", PERMIT_DATA)


@pytest.fixture
def active_seal(seal_registry: Any) -> Any:
    """An ACTIVE township approval seal of 兴江乡 on the real token."""
    from tests._fixtures.keystore import FIXED_NOW, issue_township_seal

    seal = issue_township_seal(seal_registry)
    seal_registry.activate(seal.seal_id, actor="县行政审批局-张三", approved_by="王乡长", now=FIXED_NOW)
    return seal_registry.get(seal.seal_id)


@pytest.fixture
def sealing_key(seal_registry: Any, active_seal: Any) -> Any:
    from signer._seal import SealingKey

    return SealingKey(
        key_label=active_seal.key_label,
        algorithm=active_seal.key_algorithm.value,
        chain_der=tuple(seal_registry.chain_der(active_seal)),
        seal_name=active_seal.name,
        seal_number=active_seal.number,
    )


@pytest.fixture
def revocation(county_pki: Any) -> Any:
    from cryptography.hazmat.primitives import serialization

    from signer._seal import RevocationMaterial

    der = serialization.Encoding.DER
    return RevocationMaterial(
        root_der=county_pki.root_certificate.public_bytes(der),
        intermediates_der=(county_pki.issuing_certificate.public_bytes(der),),
        crls_der=(county_pki.crl_der("issuing"), county_pki.crl_der("root")),
    )


def validate_all(pdf: bytes, root_der: bytes, crls: tuple[bytes, ...] = ()) -> list[Any]:
    """pyHanko's validator over every signature, county root as the only trust anchor."""
    from io import BytesIO

    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(BytesIO(pdf))
    out = []
    for emb in reader.embedded_signatures:
        vc = ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(root_der)], crls=list(crls), allow_fetching=False
        )
        if emb.sig_object.get("/Type") == "/DocTimeStamp":
            out.append(validate_pdf_timestamp(emb, validation_context=vc))
        else:
            out.append(validate_pdf_signature(emb, signer_validation_context=vc))
    return out


XINGJIANG = "360732-11"  # 兴江乡 in the Xingguo No. 2 seal list


@pytest.fixture
def xingjiang_seal(seal_registry: Any, policy_store: Any) -> Any:
    """兴江乡's township approval seal (ACTIVE), with every Shanxi matter on its list of powers."""
    from tests._fixtures.keystore import FIXED_NOW, issue_township_seal

    policy_store.grant_powers(XINGJIANG, None, actor="admin")
    seal = issue_township_seal(seal_registry, township="兴江乡", code=XINGJIANG)
    seal_registry.activate(seal.seal_id, actor="县行政审批局-张三", approved_by="王乡长", now=FIXED_NOW)
    return seal_registry.get(seal.seal_id)


@pytest.fixture
def xingjiang_clerk(policy_store: Any) -> Any:
    from policies import Actor, Role

    centre = policy_store.organisation(XINGJIANG).service_centre
    return Actor(user_id="clerk-li", role=Role.TOWNSHIP_CLERK, org_code=XINGJIANG, service_centre=centre)


@pytest.fixture
def sealer(
    engine: Any,
    ks_settings: Any,
    keystore: Any,
    seal_registry: Any,
    county_pki: Any,
    policy_store: Any,
    ledger: Any,
) -> Any:
    from signer import Sealer

    return Sealer(
        engine=engine,
        settings=ks_settings,
        keystore=keystore,
        registry=seal_registry,
        pki=county_pki,
        policy_store=policy_store,
        ledger=ledger,
    )


ACCEPTANCE_DATA = {
    "applicant": "刘某某",
    "matter_name": "临时救助",
    "submitted_date": "2026年3月1日",
}


def seal_acceptance_notice(sealer: Any, seal: Any, clerk: Any, *, key: str, level: str = "B-LTA") -> Any:
    """Seal the acceptance-notice template (SX-002, 受理) with ``seal`` for ``clerk``: the document the
    verifier's and the long-term tests start from."""
    from signer import SealRequest

    return sealer.apply_seal(
        SealRequest(
            seal_id=seal.seal_id,
            matter_code="SX-002",
            stage="受理",
            document_kind="受理通知书",
            idempotency_key=key,
            operator=clerk,
            reason="受理临时救助申请",
            template="acceptance_notice",
            template_data=ACCEPTANCE_DATA,
            level=level,
        )
    )


def county_trust(pki: Any, crl_at: Any = None) -> Any:
    """The county's root, issuing CA and both CRLs (as of ``crl_at``, default now) as a TrustList."""
    from cryptography.hazmat.primitives import serialization

    from verifier import TrustList

    der = serialization.Encoding.DER
    return TrustList(
        roots=(pki.root_certificate.public_bytes(der),),
        intermediates=(pki.issuing_certificate.public_bytes(der),),
        crls=(pki.crl_der("issuing", now=crl_at), pki.crl_der("root", now=crl_at)),
    )
