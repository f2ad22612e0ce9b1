"""The seal lifecycle on SQLite and PostgreSQL (``db_url``) with a real token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import text

from core.errors import BadInput, Conflict, KeystoreError, NotFound
from keystore import TRANSITIONS, KeyAlgorithm, SealEventKind, SealKind, SealStatus
from tests._fixtures.keystore import FIXED_NOW, issue_township_seal

T1 = FIXED_NOW + timedelta(days=1)


def _activate(reg: Any, seal_id: str, now: Any = T1) -> Any:
    return reg.activate(seal_id, actor="张三", approved_by="王乡长", now=now)


def test_full_lifecycle_records_every_event(seal_registry: Any, keystore: Any) -> None:
    seal = issue_township_seal(seal_registry)
    assert seal.status is SealStatus.ISSUED
    sid = seal.seal_id
    ev = _activate(seal_registry, sid)
    assert (ev.event, ev.status, ev.actor, ev.approver, ev.at) == (
        SealEventKind.ACTIVATED,
        SealStatus.ACTIVE,
        "张三",
        "王乡长",
        T1,
    )
    seal_registry.require_signable(sid, now=T1)
    seal_registry.suspend(sid, actor="张三", reason="保管人休假", now=T1)
    with pytest.raises(Conflict) as err:
        seal_registry.require_signable(sid, now=T1)
    assert err.value.code == "SEAL_NOT_ACTIVE"
    seal_registry.resume(sid, actor="张三", now=T1)
    seal_registry.cancel(
        sid, actor="张三", approved_by="王乡长", reason="乡镇撤并", requested_by="乡政府", now=T1
    )
    seal_registry.retire(sid, actor="张三", reason="封存", now=T1)
    final = seal_registry.get(sid)
    assert final.status is SealStatus.RETIRED
    events = seal_registry.lifecycle_events(sid)
    assert [e.event for e in events] == [
        SealEventKind.ISSUED,
        SealEventKind.ACTIVATED,
        SealEventKind.SUSPENDED,
        SealEventKind.RESUMED,
        SealEventKind.CANCELLED,
        SealEventKind.RETIRED,
    ]
    assert events[0].requested_by == "兴江乡人民政府" and events[0].approver == "王乡长"
    assert [e.event_id for e in events] == sorted(e.event_id for e in events if e.event_id is not None)
    assert events[4].requested_by == "乡政府" and events[4].reason == "乡镇撤并"
    # 封存: the private key is gone from the token; the public key and certificate stay for verification.
    with pytest.raises(KeystoreError) as kerr:
        keystore.sign(final.key_label, b"x")
    assert kerr.value.code == "KEY_NOT_FOUND"
    assert keystore.public_key(final.key_label) is not None
    assert seal_registry.certificates(sid)[0].serial_number == final.cert_serial


def _seal_in(reg: Any, status: SealStatus, i: int) -> str:
    seal = issue_township_seal(reg, township=f"乡{i}", code=f"3607321{i:02d}")
    sid = seal.seal_id
    if status is SealStatus.ISSUED:
        return sid
    if status is SealStatus.CANCELLED:
        reg.cancel(sid, actor="a", approved_by="b", reason="r", now=T1)
        return sid
    _activate(reg, sid)
    if status is SealStatus.SUSPENDED:
        reg.suspend(sid, actor="a", reason="r", now=T1)
    elif status is SealStatus.RETIRED:
        reg.retire(sid, actor="a", reason="r", now=T1)
    return sid


def _attempt(reg: Any, event: SealEventKind, sid: str) -> Any:
    kw: dict[str, Any] = {"actor": "a", "now": T1}
    if event is SealEventKind.ACTIVATED:
        return reg.activate(sid, approved_by="b", **kw)
    if event is SealEventKind.SUSPENDED:
        return reg.suspend(sid, reason="r", **kw)
    if event is SealEventKind.RESUMED:
        return reg.resume(sid, **kw)
    if event is SealEventKind.CHANGED:
        return reg.change(sid, approved_by="b", requested_by="c", reason="r", **kw)
    if event is SealEventKind.CANCELLED:
        return reg.cancel(sid, approved_by="b", reason="r", **kw)
    return reg.retire(sid, reason="r", **kw)


def test_every_illegal_transition_is_refused_with_its_code(seal_registry: Any, keystore: Any) -> None:
    seals = {status: _seal_in(seal_registry, status, i) for i, status in enumerate(SealStatus)}
    refused = 0
    for status, sid in seals.items():
        labels_before = set(keystore.key_labels(f"seal:{sid}:"))
        for event, (allowed_from, target) in TRANSITIONS.items():
            if status in allowed_from:
                continue
            with pytest.raises(Conflict) as err:
                _attempt(seal_registry, event, sid)
            assert err.value.code == "SEAL_TRANSITION_INVALID", (status, event)
            assert err.value.details["from"] == status.value
            assert err.value.details["to"] == (target or status).value
            refused += 1
        assert seal_registry.get(sid).status is status  # nothing moved
        assert set(keystore.key_labels(f"seal:{sid}:")) == labels_before  # no key made by a refused change
    # No resurrecting: a cancelled seal can only be retired, a retired one can do nothing.
    assert refused == sum(1 for s in SealStatus for a, _ in TRANSITIONS.values() if s not in a)
    assert refused >= 16


def test_unknown_seal(seal_registry: Any) -> None:
    with pytest.raises(NotFound) as err:
        seal_registry.get("nope")
    assert err.value.code == "SEAL_NOT_FOUND"
    with pytest.raises(NotFound) as err2:
        seal_registry.activate("nope", actor="a", approved_by="b")
    assert err2.value.code == "SEAL_NOT_FOUND"


def test_get_reads_the_seal_with_its_current_certificate(seal_registry: Any) -> None:
    """``get`` (one Core row) answers as ``list`` (ORM rows) does, with the last change's certificate."""
    first = issue_township_seal(seal_registry)
    sid = first.seal_id
    _activate(seal_registry, sid)
    changed = seal_registry.change(sid, actor="a", approved_by="b", requested_by="c", reason="换钥", now=T1)
    got = seal_registry.get(sid)
    assert got == next(s for s in seal_registry.list() if s.seal_id == sid)
    assert got.status is SealStatus.ACTIVE and got.key_label != first.key_label
    assert got.cert_serial == changed.cert_serial != first.cert_serial
    cert = x509.load_der_x509_certificate(got.cert_der)
    assert cert.serial_number == got.cert_serial
    assert (got.not_before, got.not_after) == (cert.not_valid_before_utc, cert.not_valid_after_utc)


def test_duplicate_name_in_a_township_and_reuse_after_cancel(seal_registry: Any, keystore: Any) -> None:
    first = issue_township_seal(seal_registry)
    labels = set(keystore.key_labels("seal:360732100-"))
    with pytest.raises(Conflict) as err:
        issue_township_seal(seal_registry)
    assert err.value.code == "SEAL_NAME_DUPLICATE"
    assert set(keystore.key_labels("seal:360732100-")) == labels
    # The same name in another township is a different seal.
    issue_township_seal(seal_registry, name=first.name, code="360732199")
    # Once cancelled, the name may be issued again (the old seal keeps its history).
    seal_registry.cancel(first.seal_id, actor="a", approved_by="b", reason="re-make", now=T1)
    again = issue_township_seal(seal_registry)
    assert again.seal_id != first.seal_id


def test_issue_requires_the_consent_record(seal_registry: Any) -> None:
    with pytest.raises(BadInput) as err:
        issue_township_seal(seal_registry, approved_by=" ")
    assert err.value.code == "FIELD_REQUIRED" and err.value.details["field"] == "approved_by"
    with pytest.raises(BadInput) as err2:
        issue_township_seal(seal_registry, requested_by="")
    assert err2.value.details["field"] == "requested_by"


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"kind": SealKind.DEPARTMENT_NO2, "number": 36, "department": "民政局"}, "SEAL_NUMBER_INVALID"),
        ({"kind": SealKind.DEPARTMENT_NO2, "number": None, "department": "民政局"}, "SEAL_NUMBER_INVALID"),
        ({"kind": SealKind.DEPARTMENT_NO2, "number": 12}, "FIELD_REQUIRED"),
        ({"number": 12}, "SEAL_FIELDS_INVALID"),
        ({"algorithm": KeyAlgorithm.ED25519}, "KEY_ALGORITHM_INVALID"),
    ],
)
def test_bad_seal_fields(seal_registry: Any, kw: dict[str, Any], code: str) -> None:
    with pytest.raises(BadInput) as err:
        issue_township_seal(seal_registry, **kw)
    assert err.value.code == code


def test_failed_issue_leaves_no_key_and_no_row(seal_registry: Any, keystore: Any, engine: Any) -> None:
    before = set(keystore.key_labels("seal:"))
    # The database fails after the key was generated and the certificate signed.
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE ks_seal_events"))
    with pytest.raises(Exception) as err:  # noqa: PT011 - the database's own error travels up
        issue_township_seal(seal_registry)
    assert "ks_seal_events" in str(err.value)
    assert set(keystore.key_labels("seal:")) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ks_seals")).scalar() == 0
        assert (
            conn.execute(text("SELECT count(*) FROM ks_certificates WHERE subject_kind = 'seal'")).scalar()
            == 0
        )


def test_change_rekeys_renames_and_supersedes(seal_registry: Any, keystore: Any) -> None:
    seal = issue_township_seal(seal_registry)
    _activate(seal_registry, seal.seal_id)
    ev = seal_registry.change(
        seal.seal_id,
        actor="张三",
        approved_by="王乡长",
        requested_by="乡政府",
        reason="更名",
        new_name="兴国县兴江镇人民政府行政审批服务专用章",
        algorithm=KeyAlgorithm.EC_P256,
        now=T1,
    )
    assert ev.event is SealEventKind.CHANGED and ev.previous_cert_serial == seal.cert_serial
    new = seal_registry.get(seal.seal_id)
    assert new.status is SealStatus.ACTIVE
    assert new.name == "兴国县兴江镇人民政府行政审批服务专用章"
    assert new.key_label != seal.key_label and new.cert_serial == ev.cert_serial != seal.cert_serial
    cert = x509.load_der_x509_certificate(new.cert_der)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == new.name
    # The old certificate is revoked as superseded, the old private key destroyed.
    crl = x509.load_der_x509_crl(seal_registry.pki.crl_der(now=T1))
    entry = crl.get_revoked_certificate_by_serial_number(seal.cert_serial)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.superseded
    )
    assert crl.get_revoked_certificate_by_serial_number(new.cert_serial) is None
    with pytest.raises(KeystoreError):
        keystore.sign(seal.key_label, b"x")
    keystore.sign(new.key_label, b"x")
    assert len(seal_registry.certificates(seal.seal_id)) == 2
    # The old name is free again; renaming onto another live seal's name is refused (one approval seal per
    # township: the other live seal there is a department's No. 2 seal).
    other = issue_township_seal(
        seal_registry,
        name="兴国县民政局行政审批专用章（11）",
        kind=SealKind.DEPARTMENT_NO2,
        number=11,
        department="兴国县民政局",
    )
    with pytest.raises(Conflict) as err:
        seal_registry.change(
            other.seal_id, actor="a", approved_by="b", requested_by="c", reason="r", new_name=new.name, now=T1
        )
    assert err.value.code == "SEAL_NAME_DUPLICATE"


def test_list_filters(seal_registry: Any) -> None:
    a = issue_township_seal(seal_registry)
    issue_township_seal(seal_registry, township="梅窖镇", code="360732102")
    _activate(seal_registry, a.seal_id)
    assert [s.seal_id for s in seal_registry.list(status=SealStatus.ACTIVE)] == [a.seal_id]
    assert len(seal_registry.list()) == 2
    assert [s.township for s in seal_registry.list(township_code="360732102")] == ["梅窖镇"]


def test_expired_certificate_cannot_sign(seal_registry: Any) -> None:
    seal = issue_township_seal(seal_registry, validity_days=30)
    _activate(seal_registry, seal.seal_id)
    with pytest.raises(Conflict) as err:
        seal_registry.require_signable(seal.seal_id, now=FIXED_NOW + timedelta(days=31))
    assert err.value.code == "SEAL_CERT_EXPIRED"


def test_init_county_in_process_on_the_shared_token(softhsm_token: Any, keystore: Any, tmp_path: Any) -> None:
    """How other areas set up a whole deployment in-process: the shared token, a home of their own."""
    from keystore import init_county, open_registry
    from tests._fixtures.keystore import shared_token_settings

    settings = shared_token_settings(softhsm_token, tmp_path / "county")
    setup = init_county(settings, "360732", "兴国县", now=FIXED_NOW)
    assert setup.token_created is False and setup.pki_created is True
    assert not (tmp_path / "county" / "softhsm2.conf").exists()
    assert setup.published.issuing_crl.is_file()
    again = init_county(settings, "360732", "兴国县", now=FIXED_NOW)
    assert (
        again.pki_created is False
        and again.published.issuing_crl_number == setup.published.issuing_crl_number
    )
    with open_registry(settings) as registry:
        seal = issue_township_seal(registry)
        assert registry.get(seal.seal_id).status is SealStatus.ISSUED


def test_lifecycle_record_is_append_only_in_the_database(seal_registry: Any, engine: Any) -> None:
    from sqlalchemy.exc import DBAPIError

    issue_township_seal(seal_registry)
    for stmt in ("UPDATE ks_seal_events SET actor = 'someone else'", "DELETE FROM ks_seal_events"):
        with pytest.raises(DBAPIError) as err, engine.begin() as conn:
            conn.execute(text(stmt))
        assert "append-only" in str(err.value)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ks_seal_events")).scalar() == 1


def test_cancel_destroys_the_private_key(seal_registry: Any, keystore: Any) -> None:
    seal = issue_township_seal(seal_registry)
    keystore.sign(seal.key_label, b"x")
    seal_registry.cancel(seal.seal_id, actor="a", approved_by="b", reason="r", now=T1)
    with pytest.raises(KeystoreError) as err:
        keystore.sign(seal.key_label, b"x")
    assert err.value.code == "KEY_NOT_FOUND"
    assert keystore.public_key(seal.key_label) is not None
