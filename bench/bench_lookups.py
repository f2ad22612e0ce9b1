"""What the decision status lookup and the trust-store lookup add to one verification (issue 19: ≤ 1 ms each).

    .venv/bin/python bench/bench_lookups.py [--rows 20000] [--counties 10] [--rounds 5] [--seconds 1]
                                            [--only sqlite|postgresql]

Each figure is the median over ``--rounds`` rounds of the mean time per call in a round of ``--seconds``,
set beside the bare operation measured in the same run:

* **status, in county** (``yizhang verify --home``, ``POST /v1/verify``, the page):
  ``api._status_list.decision_status_lookup`` by document number among ``--rows`` signing requests (one in
  20 not in force), for a decision in force and for a changed one (a second query names its successor);
  bare: the same SELECT through the database driver's own cursor, alone and with the transaction's end (the
  pool rolls back a connection it takes back). SQLite and PostgreSQL (a fresh database at
  YIZHANG_TEST_PG_URL, dropped afterwards; skipped when unreachable).
* **status, out of county** (``verify --bundle``, a trust-store county): ``StatusList.answer`` on a signed
  list of ``--rows``/20 entries, per document; opening the list (Ed25519 signature, JSON) happens once per
  bundle read and is shown apart. Bare: ``dict.get`` on the same entries.
* **trust store** (what ``POST /v1/verify`` and ``verify --home`` do per document: ``evidence_router`` (the
  store, re-read only when a file in it changed) + ``router.trust_list`` + ``router.for_seal``) with 0, 1 and
  ``--counties`` stored counties, each a signed bundle with roots, issuing CA, CRL, log key and status list;
  bare: ``TrustList.for_home`` alone, what a verification read before the trust store. The store's re-read
  after a change (every bundle's signature checked again, its status list opened) is shown apart.
* for scale, one strict verification in process (``verify_document``, no sandbox) of a B-LT permit.

JSON to bench/out/bench_lookups.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG_ADMIN = os.environ.get("YIZHANG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _per_call(fn: Callable[[], object], seconds: float, rounds: int) -> dict[str, float]:
    """Median and spread (µs per call) over ``rounds`` rounds of ``seconds`` each."""
    fn()  # warm-up
    means = []
    for _ in range(rounds):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        means.append(elapsed / n * 1e6)
    return {"median_us": statistics.median(means), "min_us": min(means), "max_us": max(means)}


# -- status, in county ---------------------------------------------------------------------------------------


def _number(i: int) -> str:
    return f"兴江审批〔2026〕{i + 1}号"


def _status_db(url: str, rows: int) -> Any:
    """A migrated database with ``rows`` sealed signing requests; every 20th not in force (every 100th
    changed, naming the next one as successor)."""
    from sqlalchemy import insert

    from api._storage import OutboxRow, SigningRequestRow
    from core.db import make_engine, migrate

    migrate(url)
    engine = make_engine(url)
    at = NOW - timedelta(days=30)
    requests, events = [], []
    for i in range(rows):
        status = "VALID"
        if i % 100 == 0:
            status = "CHANGED"
        elif i % 20 == 0:
            status = ("REVOKED", "WITHDRAWN", "CANCELLED")[i // 20 % 3]
        rid = str(uuid.UUID(int=i + 1))
        requests.append(
            {
                "request_id": rid,
                "submitted_by": str(uuid.UUID(int=10**6)),
                "idempotency_key": f"bench-{i}",
                "payload_sha256": "0" * 64,
                "seal_id": "seal-0001",
                "township_code": "360732-11",
                "matter_code": "SX-002",
                "stage": "受理",
                "document_kind": "受理通知书",
                "reason": "bench",
                "source": "template",
                "status": "SEALED",
                "reason_codes": "[]",
                "document_number": _number(i),
                "decision_status": status,
                "created_at": at,
                "updated_at": at,
            }
        )
        if status == "CHANGED":
            payload = {"request_id": rid, "successor": _number(i + 1)}
            events.append(
                {
                    "event": "DECISION_STATUS_CHANGED",
                    "request_id": rid,
                    "township_code": "360732-11",
                    "payload": json.dumps(payload),
                    "created_at": at,
                }
            )
    with engine.begin() as conn:
        for start in range(0, rows, 5000):
            conn.execute(insert(SigningRequestRow), requests[start : start + 5000])
        if events:
            conn.execute(insert(OutboxRow), events)
    return engine


def _bench_status_in_county(kind: str, url: str, rows: int, seconds: float, rounds: int) -> dict[str, Any]:
    from api._status_list import decision_status_lookup
    from api._storage import SigningRequestRow
    from ledger import DecisionStatus
    from verifier import BindingFacts

    engine = _status_db(url, rows)
    try:
        lookup = decision_status_lookup(engine)
        valid = BindingFacts(document_number=_number(rows // 2 + 1))
        changed = BindingFacts(document_number=_number(rows // 2 - rows // 2 % 100))
        answer = lookup(changed)
        assert answer is not None and answer.status is DecisionStatus.CHANGED and answer.successor, answer
        table = SigningRequestRow.__table__.name
        mark = "?" if kind == "sqlite" else "%s"
        sql = f"SELECT request_id, decision_status FROM {table} WHERE document_number = {mark} LIMIT 1"  # noqa: S608
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()

            def bare() -> object:
                cursor.execute(sql, (valid.document_number,))
                return cursor.fetchone()

            def bare_transaction() -> object:
                cursor.execute(sql, (valid.document_number,))
                row = cursor.fetchone()
                raw.rollback()  # as the pool does when the lookup's connection goes back
                return row

            out = {
                "bare_driver": _per_call(bare, seconds, rounds),
                "bare_driver_transaction": _per_call(bare_transaction, seconds, rounds),
                "lookup_in_force": _per_call(lambda: lookup(valid), seconds, rounds),
                "lookup_changed": _per_call(lambda: lookup(changed), seconds, rounds),
            }
        finally:
            raw.close()
    finally:
        engine.dispose()
    return out


def _pg_database() -> tuple[str, Callable[[], None]] | None:
    try:
        import psycopg

        name = f"yz_bench_lookups_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL here: its rows are skipped
        print(f"postgresql skipped: {exc}", file=sys.stderr)
        return None

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1), drop


# -- status, out of county; the trust store ------------------------------------------------------------------


class _LogKey:
    def __init__(self, name: str) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.name = name
        self._key = Ed25519PrivateKey.generate()
        self.public_key = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def _status_note(county: str, log: _LogKey, entries: int) -> str:
    from ledger._note import sign_note
    from verifier import status_list_body

    rows = [(_number(i * 20), ("revoked", "withdrawn", "cancelled")[i % 3], None) for i in range(entries)]
    body = status_list_body(county, NOW, NOW + timedelta(days=7), "https://x.example/pki/status", rows)
    return sign_note(body, log)


def _bench_status_out_of_county(entries: int, seconds: float, rounds: int) -> dict[str, Any]:
    from verifier import BindingFacts, StatusList

    log = _LogKey("bench.example/ledger")
    note = _status_note("兴国县", log, entries)
    opened = StatusList.open(note, log.public_key, log.name)
    listed = BindingFacts(document_number=_number(20 * (entries // 2)))
    in_force = BindingFacts(document_number=_number(20 * (entries // 2) + 1))
    assert opened.answer(listed) is not None and opened.answer(listed).status is not None  # type: ignore[union-attr]
    table = dict(opened.entries)
    return {
        "bare_dict_get": _per_call(lambda: table.get(in_force.document_number), seconds, rounds),
        "answer_in_force": _per_call(lambda: opened.answer(in_force), seconds, rounds),
        "answer_listed": _per_call(lambda: opened.answer(listed), seconds, rounds),
        "open_list_once_per_bundle": _per_call(
            lambda: StatusList.open(note, log.public_key, log.name), seconds, rounds
        ),
    }


def _county_bundle(i: int, out: Path) -> tuple[Path, str]:
    """Another county's signed trust bundle (as ``make_bundle`` + ``sign_bundle`` write it), in a file."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from ledger import vkey_for
    from tests.unit.verify._factory import CountyCA
    from verifier import BUNDLE_SIGNATURE_ALG, TrustList, bundle_signed_bytes, key_id_of, root_fingerprint

    ca = CountyCA(county=f"县{i:02d}")
    log = _LogKey(f"county{i}.example/ledger")
    bundle: dict[str, Any] = {"format": "yizhang-verify-bundle/1", "created_at": NOW.isoformat()}
    bundle.update(
        TrustList(roots=(ca.root.der,), intermediates=(ca.issuing.der,), crls=(ca.crl_der(NOW),)).to_bundle()
    )
    bundle["log_vkey"] = vkey_for(log.name, log.public_key)
    bundle["checkpoint"], bundle["checkpoint_at"] = None, None
    bundle["status_list"] = _status_note(f"县{i:02d}", log, 100)
    bundle["county"] = {"name": f"县{i:02d}", "code": f"3607{i:02d}"}
    bundle["url"] = f"https://county{i}.example/pki/trust-bundle.json"
    bundle["next_update"] = (NOW + timedelta(days=7)).isoformat()
    key = ca.root.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    value = key.sign(bundle_signed_bytes(bundle), ec.ECDSA(hashes.SHA256()))
    bundle["signature"] = {
        "alg": BUNDLE_SIGNATURE_ALG,
        "root_sha256": root_fingerprint(ca.root.der),
        "value": base64.b64encode(value).decode(),
    }
    path = out / f"county{i}.json"
    path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    return path, key_id_of(ca.issuing.der)


def _home(tmp: Path) -> Path:
    from tests.unit.verify._factory import CountyCA

    ca = CountyCA()
    home = tmp / "home"
    (home / "pki" / "crl").mkdir(parents=True)
    (home / "pki" / "root.crt").write_bytes(ca.root.der)
    (home / "pki" / "issuing.crt").write_bytes(ca.issuing.der)
    (home / "pki" / "crl" / "issuing.crl").write_bytes(ca.crl_der(NOW))
    return home


def _bench_trust_store(tmp: Path, counties: int, seconds: float, rounds: int) -> dict[str, Any]:
    import api._trust_store as store
    from core.settings import load_settings
    from verifier import Evidence, SealFacts, TrustList

    home = _home(tmp)
    settings = load_settings(home)
    bundles = [_county_bundle(i, tmp) for i in range(counties)]
    home_evidence = Evidence()

    def per_document(seal: SealFacts) -> Callable[[], object]:
        def run() -> object:
            router = store.evidence_router(settings, home_evidence)
            trust = router.trust_list(TrustList.for_home(settings.home_dir))
            evidence, extra = router.for_seal(seal, NOW)
            return trust, evidence, extra

        return run

    out: dict[str, Any] = {"bare_for_home": _per_call(lambda: TrustList.for_home(home), seconds, rounds)}
    held = 0
    for want in sorted({0, 1, counties}):
        while held < want:
            path, _ = bundles[held]
            offer = store.read_offer(str(path))
            store.add(settings, offer, name=f"c{held}", fingerprint=offer.fingerprint)
            held += 1
        # the seal of the last county stored (the router scans them in order), or of an unknown one
        key_id = bundles[want - 1][1] if want else "00" * 20
        seal = SealFacts(subject="CN=seal", issuer="O=县", cert_serial_hex="1", issuer_key_id=key_id)
        router = store.evidence_router(settings, home_evidence)
        assert len(router.counties) == want and (router.county_of(seal) is not None) == bool(want)
        out[f"store_{want}"] = _per_call(per_document(seal), seconds, rounds)

    def reread() -> object:
        with store._cache_lock:
            store._cache.clear()
        return store.foreign_counties(settings)

    out[f"reread_after_change_{counties}"] = _per_call(reread, seconds, rounds)
    return out


def _bench_verification(seconds: float, rounds: int) -> dict[str, Any]:
    from tests.unit.verify._factory import CountyCA, blank_pdf, sign_pdf
    from verifier import Indication, TrustList, VerifyLimits, verify_document

    ca = CountyCA()
    crl = ca.crl_der(datetime(2026, 2, 28, tzinfo=UTC))
    pdf = sign_pdf(
        blank_pdf("Permit 2026-001"),
        ca,
        ca.issue_seal(),
        timestamp_at=datetime(2026, 3, 1, tzinfo=UTC),
        crls=[crl],
    )
    trust = TrustList(roots=(ca.root.der,))
    limits = VerifyLimits(sandbox=False)

    def run() -> None:
        r = verify_document(pdf, trust, now=NOW, limits=limits)
        assert r.indication is Indication.TOTAL_PASSED, r.codes

    return {"strict_in_process": _per_call(run, seconds, rounds)}


def _ms(row: dict[str, float]) -> str:
    return f"{row['median_us'] / 1000:.3f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--counties", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    for var in [v for v in os.environ if v.startswith("YIZHANG_") and v != "YIZHANG_TEST_PG_URL"]:
        del os.environ[var]  # the bench's own homes and databases, nothing of a deployment

    results: dict[str, Any] = {"args": vars(args), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        if args.only in (None, "sqlite"):
            url = f"sqlite:///{tmp / 'status.db'}"
            results["status_in_county_sqlite"] = _bench_status_in_county(
                "sqlite", url, args.rows, args.seconds, args.rounds
            )
        if args.only in (None, "postgresql"):
            pg = _pg_database()
            if pg is not None:
                url, drop = pg
                try:
                    results["status_in_county_postgresql"] = _bench_status_in_county(
                        "postgresql", url, args.rows, args.seconds, args.rounds
                    )
                finally:
                    drop()
        results["status_out_of_county"] = _bench_status_out_of_county(
            max(1, args.rows // 20), args.seconds, args.rounds
        )
        results["trust_store"] = _bench_trust_store(tmp, args.counties, args.seconds, args.rounds)
        results["verification"] = _bench_verification(args.seconds, args.rounds)
    results["load_after"] = os.getloadavg()

    print(f"medians of {args.rounds} rounds x {args.seconds:g} s; load {results['load_before'][0]:.2f}")
    for group, rows in results.items():
        if not isinstance(rows, dict) or group == "args":
            continue
        print(group)
        for name, row in rows.items():
            spread = f"(rounds {row['min_us'] / 1000:.3f}-{row['max_us'] / 1000:.3f})"
            print(f"  {name:32s} {_ms(row):>12s}  {spread}")
    store = results["trust_store"]
    added = (store[f"store_{args.counties}"]["median_us"] - store["bare_for_home"]["median_us"]) / 1000
    print(f"trust store, {args.counties} counties: +{added:.3f} ms per verification over for_home alone")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_lookups.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
