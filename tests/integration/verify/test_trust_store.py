"""Trust across counties (issue 19, item 3): two county homes on one machine, each with its own token.

County A serves its signed trust bundle at ``/pki/trust-bundle.json`` (``yizhang serve`` on 127.0.0.1, a
random port); county B keeps it in its trust store (``yizhang trust add``, pinned to A's root) and then
verifies A's permit TOTAL_PASSED with ``yizhang verify --home B`` and ``POST /v1/verify`` on B's server. A
bundle past its nextUpdate is INDETERMINATE (``TRUST_BUNDLE_STALE``, naming its age and where to refresh it);
a bundle signed by another key is refused at ``trust add`` and ``trust refresh``; ``trust refresh`` brings A's
new CRL, after which a seal revoked before it sealed fails.

Before this change B had no trust store: A's permit was INDETERMINATE (SIGNER_UNTRUSTED) at B, and there
was no ``yizhang trust`` command.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability._home import free_port, wait_ready

pytestmark = pytest.mark.softhsm

ROOT = Path(__file__).resolve().parents[3]
YIZHANG = str(Path(sys.executable).parent / "yizhang")


def _env() -> dict[str, str]:
    """A separate deployment's environment: nothing of the test session's token or home."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("YIZHANG_", "SOFTHSM2_CONF"))}


def _yz(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [YIZHANG, *args, "--home", str(home)],
        env=_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _build(home: Path, out: Path, key: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "tests.integration.lifetime._home", str(home), str(out), key],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def _verify(doc: Path, home: Path) -> dict[str, Any]:
    res = _yz(home, "verify", str(doc), "--json")
    report: dict[str, Any] = json.loads(res.stdout)
    assert res.returncode == (0 if report["indication"] == "TOTAL_PASSED" else 1), res.stderr
    return report


def _codes(report: dict[str, Any]) -> set[str]:
    codes = {r["code"] for r in report["reasons"]}
    for sig in report["signatures"]:
        codes |= {r["code"] for r in sig["reasons"]}
    return codes


def _fingerprint(home: Path) -> str:
    return hashlib.sha256((home / "pki" / "root.crt").read_bytes()).hexdigest()


def _error(res: subprocess.CompletedProcess[str]) -> str:
    return str(json.loads(res.stdout)["error"]["code"])


@dataclass
class County:
    home: Path
    doc: Path
    base: str


@dataclass
class Counties:
    a: County
    b: County
    tmp: Path


def _serve(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [
                YIZHANG,
                "serve",
                "--home",
                str(home),
                "--port",
                str(port),
                "--workers",
                "1",
                "--log-level",
                "warning",
            ],
            env=_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, proc, log)
    return proc, base


@pytest.fixture(scope="module")
def counties(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Counties]:
    tmp = tmp_path_factory.mktemp("counties")
    homes = {}
    for name in ("a", "b"):
        home, doc = tmp / name, tmp / f"{name}.pdf"
        _build(home, doc, f"trust-{name}")
        homes[name] = (home, doc)
    procs = []
    try:
        proc_a, base_a = _serve(homes["a"][0], tmp / "serve-a.log")
        procs.append(proc_a)
        proc_b, base_b = _serve(homes["b"][0], tmp / "serve-b.log")
        procs.append(proc_b)
        yield Counties(County(*homes["a"], base_a), County(*homes["b"], base_b), tmp)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)


def _add_a(c: Counties) -> None:
    """County A in B's trust store under the name ``county-a`` (pinned to A's root), once."""
    if (c.b.home / "trust" / "county-a.json").is_file():
        return
    res = _yz(
        c.b.home, "trust", "add", f"{c.a.base}/pki/trust-bundle.json",
        "--fingerprint", _fingerprint(c.a.home), "--name", "county-a", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr


def test_county_b_verifies_county_a_permit_after_trust_add(counties: Counties) -> None:
    c = counties
    url = f"{c.a.base}/pki/trust-bundle.json"
    # before: A's root is unknown at B
    before = _verify(c.a.doc, c.b.home)
    assert before["indication"] == "INDETERMINATE" and "SIGNER_UNTRUSTED" in _codes(before)

    # trust add shows the root's fingerprint and adds nothing unless it is confirmed or given
    res = _yz(c.b.home, "trust", "add", url, "--json", stdin="n\n")
    assert res.returncode == 2 and _error(res) == "TRUST_NOT_CONFIRMED"
    fp = _fingerprint(c.a.home)
    assert ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper() in res.stderr
    assert json.loads(_yz(c.b.home, "trust", "list", "--json").stdout) == []
    wrong = _yz(c.b.home, "trust", "add", url, "--fingerprint", _fingerprint(c.b.home), "--json")
    assert wrong.returncode == 2 and _error(wrong) == "TRUST_FINGERPRINT_MISMATCH"
    own = _yz(c.b.home, "trust", "add", f"{c.b.base}/pki/trust-bundle.json", "--json", stdin="y\n")
    assert own.returncode == 2 and _error(own) == "TRUST_SELF"

    _add_a(c)
    listed = json.loads(_yz(c.b.home, "trust", "list", "--json").stdout)
    assert [(e["name"], e["root_sha256"], e["source"], e["stale"]) for e in listed] == [
        ("county-a", fp, url, False)
    ]

    # A's permit at B: the CLI and B's public verification
    report = _verify(c.a.doc, c.b.home)
    assert report["indication"] == "TOTAL_PASSED", _codes(report)
    assert report["facts"]["status"] == "valid"  # from A's signed status list in A's bundle
    with c.a.doc.open("rb") as fh:
        served = httpx.post(
            f"{c.b.base}/v1/verify", files={"file": ("a.pdf", fh, "application/pdf")}, timeout=120
        )
    assert served.status_code == 200 and served.json()["indication"] == "TOTAL_PASSED", served.text
    # B's own permit still verifies with B's own records
    assert _verify(c.b.doc, c.b.home)["indication"] == "TOTAL_PASSED"

    # removed: untrusted again
    assert _yz(c.b.home, "trust", "remove", "county-a").returncode == 0
    assert _verify(c.a.doc, c.b.home)["indication"] == "INDETERMINATE"
    _add_a(c)


def test_a_stale_bundle_is_indeterminate_naming_its_age_and_where_to_refresh(counties: Counties) -> None:
    from api._trust_store import evidence_router, get
    from core.settings import load_settings
    from verifier import Evidence, TrustList, VerifyLimits, verify_document

    c = counties
    _add_a(c)
    settings = load_settings(c.b.home)
    next_update = get(settings, "county-a").next_update
    assert next_update is not None
    router = evidence_router(settings, Evidence())
    trust = router.trust_list(TrustList.for_home(c.b.home))
    data = c.a.doc.read_bytes()
    limits = VerifyLimits(sandbox=False)

    fresh = verify_document(data, trust, now=next_update - timedelta(hours=1), limits=limits, evidence=router)
    assert fresh.passed and "TRUST_BUNDLE_STALE" not in fresh.codes, fresh.codes

    late = next_update + timedelta(days=3, hours=2)
    stale = verify_document(data, trust, now=late, limits=limits, evidence=router)
    assert stale.indication.value == "INDETERMINATE" and "TRUST_BUNDLE_STALE" in stale.codes, stale.codes
    (found,) = [r for r in stale.reasons if r.code == "TRUST_BUNDLE_STALE"]
    assert found.sub_indication is not None and found.sub_indication.value == "TRY_LATER"
    assert found.detail is not None
    assert "3 d 2 h past its nextUpdate" in found.detail
    assert (
        "yizhang trust refresh county-a" in found.detail
        and f"{c.a.base}/pki/trust-bundle.json" in found.detail
    )
    # B's own documents are not judged by A's bundle
    own = verify_document(c.b.doc.read_bytes(), trust, now=late, limits=limits, evidence=router)
    assert "TRUST_BUNDLE_STALE" not in own.codes


def _forged(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle signed by a key of our own, still naming the county's root as its signer."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from verifier import bundle_signed_bytes

    key = ec.generate_private_key(ec.SECP256R1())
    forged = dict(bundle)
    forged["signature"] = dict(bundle["signature"])
    forged["signature"]["value"] = base64.b64encode(
        key.sign(bundle_signed_bytes(bundle), ec.ECDSA(hashes.SHA256()))
    ).decode()
    return forged


def test_a_bundle_signed_by_another_key_is_refused_at_add_and_refresh(counties: Counties) -> None:
    c = counties
    a_bundle = httpx.get(f"{c.a.base}/pki/trust-bundle.json", timeout=60).json()
    fp_a = _fingerprint(c.a.home)
    home = c.tmp / "a"  # A's own store takes B: nothing of the other tests' store is touched

    # add: a bundle signed by another key than the root it names, or altered after signing
    forged = c.tmp / "forged.json"
    forged.write_text(json.dumps(_forged(a_bundle)), encoding="utf-8")
    res = _yz(c.b.home, "trust", "add", str(forged), "--fingerprint", fp_a, "--name", "forged", "--json")
    assert res.returncode == 2 and _error(res) == "TRUST_BUNDLE_SIGNATURE_INVALID", res.stdout
    altered = dict(a_bundle, crls=a_bundle["crls"][:1])
    forged.write_text(json.dumps(altered), encoding="utf-8")
    res = _yz(c.b.home, "trust", "add", str(forged), "--fingerprint", fp_a, "--name", "forged", "--json")
    assert res.returncode == 2 and _error(res) == "TRUST_BUNDLE_SIGNATURE_INVALID", res.stdout
    assert not (c.b.home / "trust" / "forged.json").exists()

    # refresh: B pinned in A's store from a file; the file is then replaced
    b_file = c.tmp / "b-bundle.json"
    assert _yz(c.b.home, "verify-bundle", "--out", str(b_file)).returncode == 0
    res = _yz(
        home, "trust", "add", str(b_file), "--fingerprint", _fingerprint(c.b.home), "--name", "b", "--json"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    pinned = (home / "trust" / "b.json").read_bytes()
    b_bundle = json.loads(b_file.read_text(encoding="utf-8"))

    b_file.write_text(json.dumps(a_bundle), encoding="utf-8")  # another county's root signed this one
    res = _yz(home, "trust", "refresh", "b", "--json")
    assert res.returncode == 1 and json.loads(res.stdout)[0]["code"] == "TRUST_ROOT_CHANGED", res.stdout
    b_file.write_text(json.dumps(_forged(b_bundle)), encoding="utf-8")  # B's root named, another key
    res = _yz(home, "trust", "refresh", "b", "--json")
    assert res.returncode == 1 and json.loads(res.stdout)[0]["code"] == "TRUST_BUNDLE_SIGNATURE_INVALID"
    assert (home / "trust" / "b.json").read_bytes() == pinned  # what was pinned and held is unchanged


_CANCEL = """
import sys
from datetime import datetime, timedelta
from api.cli._common import settings_for
from keystore import open_registry
from tests._fixtures.signer import XINGJIANG
with open_registry(settings_for(sys.argv[1])) as registry:
    seal = next(s for s in registry.list(township_code=XINGJIANG))
    at = datetime.fromisoformat(sys.argv[2]) - timedelta(minutes=1)
    registry.cancel(seal.seal_id, actor="县行政审批局-张三", approved_by="王局长", reason="印章遗失", now=at)
"""


def test_trust_refresh_brings_a_new_crl_and_a_seal_revoked_before_it_sealed_fails(counties: Counties) -> None:
    c = counties
    _add_a(c)
    report = _verify(c.a.doc, c.b.home)
    assert report["indication"] == "TOTAL_PASSED", _codes(report)
    signed_at = report["facts"]["signing_time"]

    # A cancels the seal, dated (key compromise found later) a minute before the permit was sealed
    res = subprocess.run(
        [sys.executable, "-c", _CANCEL, str(c.a.home), signed_at],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr

    # B still holds A's old CRLs: nothing changes until it refreshes
    assert _verify(c.a.doc, c.b.home)["indication"] == "TOTAL_PASSED"
    res = _yz(c.b.home, "trust", "refresh", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)[0]["ok"], res.stdout + res.stderr
    after = _verify(c.a.doc, c.b.home)
    assert after["indication"] == "TOTAL_FAILED" and "CERT_REVOKED" in _codes(after), _codes(after)
