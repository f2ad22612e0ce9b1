"""The token fails under a running service, and is missing or refuses its PIN at start: 503, then recovery
by itself; nothing lost, nothing doubled, nothing half-written.

``yizhang serve --workers 2`` on a demo county on its own PostgreSQL database, with the PKCS#11 module set
(``YIZHANG_PKCS11_URI ...?module-path=``) to the fault-injecting proxy around the real SoftHSM2 module
(``tests/reliability/pkcs11_fault``): while the control file exists the token is pulled out (every session
closed, login lost, CKR_DEVICE_REMOVED / CKR_TOKEN_NOT_PRESENT) or answers CKR_DEVICE_ERROR.

``test_token_fails_under_signing_load``: ``YIZHANG_TOKEN_CLIENTS`` (8) clients seal ``YIZHANG_TOKEN_REQUESTS``
(36) documents over HTTP across the three township seals, retrying 503/429/connection errors with the same
idempotency key (and ``POST .../seal`` for a request left APPROVED by a failed sealing), as a real client
does. The token is pulled out for ``YIZHANG_TOKEN_FAULT_S`` (3) seconds when a quarter are sealed, and made to
answer device errors as long when half are. Asserted: ``/readyz`` 503 with ``TOKEN_UNAVAILABLE`` while the
fault lasts and 200 again by itself after; no 5xx but 503; every 503 of the token carries
``TOKEN_UNAVAILABLE`` and Retry-After; every request sealed exactly once (one stored document and one
``SEAL_SIGNED`` per request, the number and sha256 the client was told are the stored ones);
``check_invariants`` (numbers without gap or duplicate, voids logged, no half-written rows); the ledger audit
ok; every document verifies.

``test_start_with_a_failing_token_then_a_rotated_pin``: with the service stopped the user PIN is rotated on
the token (``pkcs11-tool --change-pin``) while the PIN file keeps the old one, and the token is pulled out.
The service starts unready (``TOKEN_NOT_FOUND``) and answers signing with 503 ``TOKEN_UNAVAILABLE`` +
Retry-After; the token comes back: unready ``TOKEN_PIN_INCORRECT`` (the refused PIN is not offered to the
token again); the new PIN is written to the PIN file: ready by itself, and it seals.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._home import (
    ACCEPTANCE,
    YIZHANG,
    DemoHome,
    _rows,
    check_invariants,
    free_port,
    stop_server,
    verify_stored,
    wait_ready,
)
from .pkcs11_fault import build_fault_module, fault_off, fault_on

REQUESTS = int(os.environ.get("YIZHANG_TOKEN_REQUESTS", "36"))
CLIENTS = int(os.environ.get("YIZHANG_TOKEN_CLIENTS", "8"))
FAULT_S = float(os.environ.get("YIZHANG_TOKEN_FAULT_S", "3"))
TOWNSHIPS = ("兴江乡", "古龙岗镇", "梅窖镇")
CLERKS = {"兴江乡": "xj.clerk", "古龙岗镇": "glg.clerk", "梅窖镇": "mj.clerk"}
#: The 503s a token fault may surface as: the token itself, or the county TSA whose key is in the token.
TOKEN_503 = {"TOKEN_UNAVAILABLE", "TSA_UNAVAILABLE"}

pytestmark = [pytest.mark.postgres, pytest.mark.softhsm, pytest.mark.timeout(900)]


@dataclass
class Faulty:
    demo: DemoHome
    module: Path
    control: Path

    def env(self) -> dict[str, str]:
        return {
            **self.demo.env,
            "YIZHANG_PKCS11_URI": f"pkcs11:token=yizhang?module-path={self.module}",
            "SOFTHSM2_CONF": str(self.demo.home / "softhsm2.conf"),
            "PKCS11_FAULT_FILE": str(self.control),
            "YIZHANG_CHECKPOINT_INTERVAL_S": "5",
        }


@pytest.fixture(scope="module")
def faulty(pg_demo: DemoHome, tmp_path_factory: pytest.TempPathFactory) -> Faulty:
    module = build_fault_module(tmp_path_factory.mktemp("pkcs11-fault"))
    return Faulty(pg_demo, module, tmp_path_factory.mktemp("fault-control") / "token.fault")


@contextmanager
def serving(faulty: Faulty, log: Path, *, ready: bool = True) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("ab") as sink:
        server = subprocess.Popen(
            [YIZHANG, "serve", "--home", str(faulty.demo.home), "--port", str(port), "--workers", "2"],
            env=faulty.env(), stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        if ready:
            wait_ready(base, server, log)
        else:
            _wait_answering(base, server, log)
        yield base
    finally:
        stop_server(server)


def _wait_answering(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        try:
            httpx.get(f"{base}/healthz", timeout=5)
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError("serve never answered: " + log.read_text(errors="replace")[-3000:])


def _readyz(base: str) -> tuple[int | str, str | None]:
    """(status, the token check) of one /readyz answer."""
    try:
        r = httpx.get(f"{base}/readyz", timeout=10)
    except httpx.HTTPError as exc:
        return type(exc).__name__, None
    return r.status_code, r.json().get("checks", {}).get("token")


def _ready_again(base: str, polls: int = 240) -> int:
    """Poll /readyz until both workers answer 200 (six in a row); returns the polls it took (a bound
    against hangs, not a timing assertion)."""
    in_a_row = 0
    for n in range(polls):
        in_a_row = in_a_row + 1 if _readyz(base)[0] == 200 else 0
        if in_a_row >= 6:
            return n
        time.sleep(0.5)
    raise AssertionError(f"/readyz not 200 again after {polls} polls")


def _tokens(demo: DemoHome) -> dict[str, dict[str, str]]:
    people = {}
    for username in CLERKS.values():
        issued = json.loads(
            demo.run("account", "token", "--username", username, "--ttl-days", "1", "--json").stdout
        )
        token = next(v for v in issued.values() if isinstance(v, str) and v.startswith("yz_"))
        people[username] = {"Authorization": f"Bearer {token}"}
    return people


def _body(demo: DemoHome, township: str, key: str) -> dict[str, Any]:
    return {
        "seal_id": demo.seals[township]["seal_id"], "matter_code": "SX-002", "stage": "受理",
        "document_kind": "受理通知书", "reason": "token fault", "idempotency_key": key,
        "template": "acceptance_notice", "data": {**ACCEPTANCE, "issuer": f"兴国县{township}人民政府"},
    }  # fmt: skip


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[int] = field(default_factory=Counter)
    codes_503: Counter[str] = field(default_factory=Counter)
    transport: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # 5xx other than 503
    without_retry_after: list[str] = field(default_factory=list)  # token 503s without Retry-After

    def saw(self, r: httpx.Response) -> None:
        with self.lock:
            self.statuses[r.status_code] += 1
            if r.status_code == 503:
                code = str(r.json().get("code"))
                self.codes_503[code] += 1
                if code == "TOKEN_UNAVAILABLE" and "retry-after" not in r.headers:
                    self.without_retry_after.append(r.text[:200])
            elif r.status_code >= 500:
                self.server_errors.append(f"{r.status_code} {r.request.url.path}: {r.text[:300]}")


def _call(client: httpx.Client, tally: Tally, method: str, url: str, **kw: Any) -> httpx.Response:
    """One logical call, retried on 503, 429 and connection errors (same body, same idempotency key)."""
    deadline = time.monotonic() + 120
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        try:
            r = client.request(method, url, **kw)
        except httpx.TransportError as exc:
            with tally.lock:
                tally.transport[type(exc).__name__] += 1
            time.sleep(min(2.0, 0.1 * attempt))
            continue
        tally.saw(r)
        if r.status_code in (429, 503):
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 2.0) * random.uniform(0.5, 1.0))
            continue
        return r
    raise AssertionError(f"{method} {url}: no answer but 503/429/errors for 120 s ({attempt} attempts)")


def _seal(client: httpx.Client, tally: Tally, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = _call(client, tally, "POST", "/v1/signing-requests/from-template", headers=auth, json=body)
    assert r.status_code in (200, 201), f"{body['idempotency_key']}: {r.status_code} {r.text[:300]}"
    view = r.json()
    if view["status"] != "SEALED":  # the sealing step met the fault: ask for it again
        r = _call(client, tally, "POST", f"/v1/signing-requests/{view['request_id']}/seal", headers=auth)
        assert r.status_code == 200, f"{body['idempotency_key']}: seal again {r.status_code} {r.text[:300]}"
        view = r.json()
    assert view["status"] == "SEALED", view
    # A retry of the whole request with the same key answers the same sealed document.
    again = _call(client, tally, "POST", "/v1/signing-requests/from-template", headers=auth, json=body)
    assert again.status_code == 200 and again.json()["request_id"] == view["request_id"], again.text[:300]
    assert (again.json()["document_number"], again.json()["sealed_sha256"]) == (
        view["document_number"],
        view["sealed_sha256"],
    )
    return view  # type: ignore[no-any-return]


def test_token_fails_under_signing_load(faulty: Faulty, work_dir: Path) -> None:
    demo = faulty.demo
    people = _tokens(demo)
    before = {
        "documents": int(_rows(demo.url, "SELECT count(*) FROM sig_documents")[0][0]),
        "signed": int(
            _rows(demo.url, "SELECT count(*) FROM ledger_entries WHERE kind = 'SEAL_SIGNED'")[0][0]
        ),
    }
    keys = [(f"token-{i:04d}", TOWNSHIPS[i % 3]) for i in range(REQUESTS)]
    finals: dict[str, dict[str, Any]] = {}
    tally = Tally()
    stop = threading.Event()
    faults: list[dict[str, Any]] = []

    def worker(batch: list[tuple[str, str]], base: str) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            for key, township in batch:
                if stop.is_set():
                    return
                try:
                    view = _seal(client, tally, people[CLERKS[township]], _body(demo, township, key))
                except BaseException:
                    stop.set()
                    raise
                with tally.lock:
                    finals[key] = view

    def chaos(base: str) -> None:
        for mode, at in (("removed", REQUESTS // 4), ("error", REQUESTS // 2)):
            while len(finals) < at:
                if stop.is_set():
                    return
                time.sleep(0.1)
            seen: list[tuple[int | str, str | None]] = []
            fault_on(faulty.control, mode)
            t0 = time.monotonic()
            while time.monotonic() - t0 < FAULT_S:
                seen.append(_readyz(base))
                time.sleep(0.3)
            fault_off(faulty.control)
            t1 = time.monotonic()
            polls = _ready_again(base)
            faults.append(
                {"mode": mode, "at_sealed": at, "readyz": seen, "recovered_s": time.monotonic() - t1,
                 "polls": polls}
            )  # fmt: skip

    log = work_dir / "serve.log"
    started = time.monotonic()
    try:
        with serving(faulty, log) as base:
            threads = [threading.Thread(target=chaos, args=(base,))] + [
                threading.Thread(target=worker, args=(keys[k::CLIENTS], base)) for k in range(CLIENTS)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        fault_off(faulty.control)
    elapsed = time.monotonic() - started
    assert not stop.is_set(), "a client failed (see its assertion above)"

    # Both faults were seen by /readyz and survived by the service without a restart.
    assert [f["mode"] for f in faults] == ["removed", "error"], faults
    for f in faults:
        codes = {token for status, token in f["readyz"] if status == 503}
        assert "TOKEN_UNAVAILABLE" in codes, f
    assert not tally.server_errors, tally.server_errors[:5]
    assert set(tally.codes_503) <= TOKEN_503 | {"DATABASE_UNAVAILABLE"}, tally.codes_503
    assert tally.codes_503["TOKEN_UNAVAILABLE"] > 0, "no signing met the fault"
    assert not tally.without_retry_after, tally.without_retry_after[:3]

    # One sealed document and one SEAL_SIGNED entry per request: the numbers and hashes the clients got.
    assert len(finals) == REQUESTS
    numbers = [v["document_number"] for v in finals.values()]
    assert len(set(numbers)) == REQUESTS, "a document number was given to two requests"
    stored = {
        number: (sha, idx)
        for number, sha, idx in _rows(
            demo.url, "SELECT document_number, sha256, ledger_index FROM sig_documents"
        )
    }
    for view in finals.values():
        assert stored[view["document_number"]] == (view["sealed_sha256"], view["ledger_index"]), view
    after_docs = int(_rows(demo.url, "SELECT count(*) FROM sig_documents")[0][0])
    after_signed = int(
        _rows(demo.url, "SELECT count(*) FROM ledger_entries WHERE kind = 'SEAL_SIGNED'")[0][0]
    )
    assert after_docs - before["documents"] == REQUESTS
    assert after_signed - before["signed"] == REQUESTS
    counts = check_invariants(demo.url)
    report = demo.audit()

    # Every document the service handed out verifies.
    result = verify_stored(demo, set(numbers), work_dir / "sealed", timeout=1800)
    assert result["checked"] == REQUESTS and result["passed"] == REQUESTS, result

    summary = [
        {"mode": f["mode"], "at_sealed": f["at_sealed"],
         "readyz": dict(Counter(f"{s}:{t}" for s, t in f["readyz"])),
         "ready_again_s": round(f["recovered_s"], 1)}
        for f in faults
    ]  # fmt: skip
    print(
        f"\ntoken faults: requests={REQUESTS} clients={CLIENTS} fault_s={FAULT_S} elapsed={elapsed:.0f}s "
        f"faults={summary} statuses={dict(sorted(tally.statuses.items()))} 503={dict(tally.codes_503)} "
        f"transport_errors={dict(tally.transport)} server_errors=0 lost=0 duplicates=0 "
        f"used={counts['used']} void={counts['void']} entries={counts['entries']} audit_ok={report['ok']} "
        f"verified={result['passed']}/{result['checked']}"
    )


def test_start_with_a_failing_token_then_a_rotated_pin(faulty: Faulty, work_dir: Path) -> None:
    demo = faulty.demo
    people = _tokens(demo)
    tally = Tally()
    log = work_dir / "serve.log"
    township = TOWNSHIPS[0]
    auth = people[CLERKS[township]]
    body = _body(demo, township, "token-start-0")

    # While the service is stopped the user PIN is rotated on the token; the PIN file keeps the old one,
    # and the token is pulled out before the service starts.
    pin_file = demo.home / "secrets" / "token.pin"
    old_pin = pin_file.read_text(encoding="utf-8").strip()
    new_pin = old_pin[::-1] + "R"
    rotated = subprocess.run(
        ["pkcs11-tool", "--module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label", "yizhang",
         "--login", "--pin", old_pin, "--change-pin", "--new-pin", new_pin],
        env=faulty.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    fault_on(faulty.control, "removed")
    try:
        with serving(faulty, log, ready=False) as base:
            # 1. No token: unready with the keystore's code, and signing is a 503 to retry.
            seen = [_readyz(base) for _ in range(4)]
            assert all(s == (503, "TOKEN_NOT_FOUND") for s in seen), seen
            r = httpx.post(f"{base}/v1/signing-requests/from-template", headers=auth, json=body, timeout=60)
            assert r.status_code == 503 and r.json()["code"] == "TOKEN_UNAVAILABLE", r.text
            assert int(r.headers["Retry-After"]) >= 1
            # 2. The token is back, but the PIN in the file is the old one: refused, and not offered again.
            fault_off(faulty.control)
            seen, in_a_row = [], 0
            while in_a_row < 6:  # both workers (each has its own keystore) say so
                assert len(seen) < 240, seen[-10:]
                seen.append(_readyz(base))
                in_a_row = in_a_row + 1 if seen[-1] == (503, "TOKEN_PIN_INCORRECT") else 0
                time.sleep(0.3)
            assert set(seen) <= {(503, "TOKEN_NOT_FOUND"), (503, "TOKEN_PIN_INCORRECT")}, seen
            # 3. The operator writes the new PIN into the PIN file (replaced whole, as a secret manager
            #    does): the service opens the token, wires the signer and becomes ready by itself.
            tmp = pin_file.with_suffix(".new")
            tmp.write_text(new_pin + "\n", encoding="utf-8")
            tmp.chmod(0o600)
            tmp.replace(pin_file)
            _ready_again(base)
            with httpx.Client(base_url=base, timeout=120) as client:
                sealed = _seal(client, tally, auth, body)
    finally:
        fault_off(faulty.control)

    assert sealed["status"] == "SEALED"
    assert not tally.server_errors, tally.server_errors
    check_invariants(demo.url)
    demo.audit()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert old_pin not in text and new_pin not in text  # no PIN in any log line
    print(
        "\ntoken at start: removed → TOKEN_NOT_FOUND; back with a rotated PIN → TOKEN_PIN_INCORRECT; PIN file"
    )
    print(f"corrected → ready by itself and sealed {sealed['document_number']}; 503={dict(tally.codes_503)}")
