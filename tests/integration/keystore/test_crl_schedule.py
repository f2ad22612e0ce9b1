"""CRLs that are always current (issue 19), with an injected clock: real token, SQLite and PostgreSQL.

Suspension puts the certificate on hold (certificateHold, dated at the suspension) and publishes at once;
resumption lifts the hold (the next CRL leaves it out) and publishes at once; cancelling or re-keying a
suspended seal keeps the hold's date. The schedule republishes when the published CRLs are older than
``crl_republish_s`` (at most half their validity), one publisher at a time, CRL numbers always rising. The
names in certificates are those fixed at ``county init``, whatever ``public_base_url`` says later.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests._fixtures.keystore import FIXED_NOW, issue_township_seal

pytestmark = pytest.mark.softhsm
ACTOR = "县行政审批局-张三"


def _crl(home: Path, name: str = "issuing") -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl((home / "pki" / "crl" / f"{name}.crl").read_bytes())


def _number(crl: x509.CertificateRevocationList) -> int:
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def _reason(crl: x509.CertificateRevocationList, serial: int) -> x509.ReasonFlags | None:
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def _active_seal(registry: Any) -> Any:
    seal = issue_township_seal(registry)
    registry.activate(seal.seal_id, actor=ACTOR, approved_by="王乡长", now=FIXED_NOW)
    return registry.get(seal.seal_id)


def test_suspend_and_resume_publish_the_hold_at_once(seal_registry: Any, ks_settings: Any) -> None:
    home = ks_settings.home_dir
    seal = _active_seal(seal_registry)
    t_suspend = FIXED_NOW + timedelta(days=2)
    seal_registry.suspend(seal.seal_id, actor=ACTOR, reason="印章保管人调动", now=t_suspend)
    held = _crl(home)
    entry = held.get_revoked_certificate_by_serial_number(seal.cert_serial)
    assert entry is not None and entry.revocation_date_utc == t_suspend
    assert _reason(held, seal.cert_serial) is x509.ReasonFlags.certificate_hold
    assert held.last_update_utc == t_suspend  # published by the suspension itself, at its time

    t_resume = t_suspend + timedelta(hours=5)
    seal_registry.resume(seal.seal_id, actor=ACTOR, now=t_resume)
    lifted = _crl(home)
    assert lifted.get_revoked_certificate_by_serial_number(seal.cert_serial) is None
    assert lifted.last_update_utc == t_resume and _number(lifted) > _number(held)
    assert seal_registry.require_signable(seal.seal_id, now=t_resume).status.value == "ACTIVE"


def test_cancel_or_change_of_a_suspended_seal_keeps_the_hold_date(
    seal_registry: Any, ks_settings: Any
) -> None:
    home = ks_settings.home_dir
    t_suspend = FIXED_NOW + timedelta(days=1)
    later = t_suspend + timedelta(days=3)

    cancelled = _active_seal(seal_registry)
    seal_registry.suspend(cancelled.seal_id, actor=ACTOR, reason="疑似被盗用", now=t_suspend)
    seal_registry.cancel(cancelled.seal_id, actor=ACTOR, approved_by="王乡长", reason="注销", now=later)
    crl = _crl(home)
    entry = crl.get_revoked_certificate_by_serial_number(cancelled.cert_serial)
    assert entry is not None and entry.revocation_date_utc == t_suspend  # unusable since the hold began
    assert _reason(crl, cancelled.cert_serial) is x509.ReasonFlags.cessation_of_operation

    rekeyed = issue_township_seal(seal_registry, township="古龙岗镇", code="360732101")
    seal_registry.activate(rekeyed.seal_id, actor=ACTOR, approved_by="王镇长", now=FIXED_NOW)
    seal_registry.suspend(rekeyed.seal_id, actor=ACTOR, reason="暂停", now=t_suspend)
    seal_registry.change(
        rekeyed.seal_id,
        actor=ACTOR,
        approved_by="王镇长",
        requested_by="古龙岗镇人民政府",
        reason="换钥",
        now=later,
    )
    new = seal_registry.get(rekeyed.seal_id)
    assert new.status.value == "SUSPENDED" and new.cert_serial != rekeyed.cert_serial
    crl = _crl(home)
    assert _reason(crl, rekeyed.cert_serial) is x509.ReasonFlags.superseded
    old_entry = crl.get_revoked_certificate_by_serial_number(rekeyed.cert_serial)
    assert old_entry is not None and old_entry.revocation_date_utc == t_suspend
    # the suspension goes on with the new key: its certificate is on hold from the re-key
    assert _reason(crl, new.cert_serial) is x509.ReasonFlags.certificate_hold
    seal_registry.resume(rekeyed.seal_id, actor=ACTOR, now=later + timedelta(hours=1))
    crl = _crl(home)
    assert crl.get_revoked_certificate_by_serial_number(new.cert_serial) is None
    assert _reason(crl, rekeyed.cert_serial) is x509.ReasonFlags.superseded  # a revocation is never lifted


def test_schedule_republishes_well_inside_next_update(county_pki: Any) -> None:
    t0 = FIXED_NOW
    assert county_pki.crl_due(t0) == "missing"
    first = county_pki.ensure_current_crls(t0)
    assert first is not None
    home = county_pki._settings.home_dir
    crl = _crl(home)
    assert crl.next_update_utc == t0 + timedelta(days=7)  # crl_validity_days
    assert county_pki.republish_every == timedelta(days=1)  # crl_republish_s
    assert county_pki.crl_due(t0 + timedelta(hours=23)) is None
    assert county_pki.ensure_current_crls(t0 + timedelta(hours=23)) is None
    assert _number(_crl(home)) == _number(crl)  # nothing spent while current
    assert county_pki.crl_due(t0 + timedelta(days=1)) == "age"
    again = county_pki.ensure_current_crls(t0 + timedelta(days=1))
    assert again is not None and again.issuing_crl_number > first.issuing_crl_number
    # the root CRL is renewed with it
    assert _crl(home, "root").last_update_utc == t0 + timedelta(days=1)


def test_republish_interval_is_kept_inside_the_validity(
    engine: Any, keystore: Any, ks_settings: Any, county_pki: Any
) -> None:
    from keystore import CountyPKI

    slow = CountyPKI(engine, keystore, ks_settings.model_copy(update={"crl_republish_s": 30 * 86400.0}))
    assert slow.republish_every == timedelta(days=3.5)  # half of the 7 days


def test_one_publisher_at_a_time_and_numbers_rise(county_pki: Any) -> None:
    home = county_pki._settings.home_dir
    county_pki.publish_crl(FIXED_NOW)
    before = _number(_crl(home))
    due_at = FIXED_NOW + timedelta(days=2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(county_pki.ensure_current_crls(due_at))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r is not None for r in results) == 1  # one published, the others found it done
    assert _number(_crl(home)) == before + 1


def test_an_older_crl_never_replaces_a_newer_one(county_pki: Any) -> None:
    from keystore._pki import _write_crl_if_newer

    home = county_pki._settings.home_dir
    older = county_pki.crl_der("issuing", FIXED_NOW)
    county_pki.publish_crl(FIXED_NOW + timedelta(minutes=1))
    newest = (home / "pki" / "crl" / "issuing.crl").read_bytes()
    _write_crl_if_newer(home / "pki" / "crl" / "issuing.crl", older)
    assert (home / "pki" / "crl" / "issuing.crl").read_bytes() == newest


def test_a_change_that_could_not_publish_is_published_by_the_next_round(county_pki: Any) -> None:
    home = county_pki._settings.home_dir
    county_pki.publish_crl(FIXED_NOW)
    (home / "pki" / "crl" / ".stale").write_text("TOKEN_UNAVAILABLE\n")  # what publish_after_change leaves
    assert county_pki.crl_due(FIXED_NOW + timedelta(minutes=1)) == "changed"
    assert county_pki.ensure_current_crls(FIXED_NOW + timedelta(minutes=1)) is not None
    assert not (home / "pki" / "crl" / ".stale").exists()


def test_names_in_certificates_are_those_fixed_at_init(
    engine: Any, keystore: Any, ks_settings: Any, county_pki: Any
) -> None:
    """Changing public_base_url after `county init` changes nothing a certificate or checkpoint names."""
    from core.identity import deployment_identity, forget_identity
    from keystore import SealRegistry
    from ledger import origin_for

    moved = ks_settings.model_copy(update={"public_base_url": "https://seal.example.test/"})
    forget_identity(moved)
    assert deployment_identity(moved).base_url == "http://127.0.0.1:8000"
    assert origin_for(moved) == "127.0.0.1:8000/ledger"
    registry = SealRegistry(engine, keystore, moved)  # a new process, under the new address
    seal = issue_township_seal(registry)
    cert = x509.load_der_x509_certificate(seal.cert_der)
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [str(n.value) for d in dp for n in d.full_name or ()] == [
        "http://127.0.0.1:8000/pki/crl/issuing.crl"
    ]
    # `county init` again under the new address: the stored names stay
    registry.pki.initialize("360732", "兴国县", now=FIXED_NOW)
    forget_identity(moved)
    assert deployment_identity(moved).log_origin == "127.0.0.1:8000/ledger"
