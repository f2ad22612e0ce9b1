"""The county TSA on a real token, checked by ``openssl ts -verify``."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import tsp

from signer._tsa import _TimeStampResp

pytestmark = pytest.mark.softhsm


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True)


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # the TSA does not depend on the database kind
    from core.db import migrate

    migrate(sqlite_url)
    return sqlite_url


def test_openssl_query_verifies(county_tsa: Any, trust_pem: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"yizhang " * 1000)
    tsq = tmp_path / "req.tsq"
    r = _openssl("ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(tsq))
    assert r.returncode == 0, r.stderr
    tsr = tmp_path / "resp.tsr"
    tsr.write_bytes(county_tsa.respond(tsq.read_bytes()))
    r = _openssl(
        "ts",
        "-verify",
        "-in",
        str(tsr),
        "-queryfile",
        str(tsq),
        "-CAfile",
        str(trust_pem["root"]),
        "-untrusted",
        str(trust_pem["issuing"]),
    )
    assert r.returncode == 0 and "Verification: OK" in r.stdout, r.stdout + r.stderr
    r = _openssl(
        "ts",
        "-verify",
        "-in",
        str(tsr),
        "-data",
        str(data),
        "-CAfile",
        str(trust_pem["root"]),
        "-untrusted",
        str(trust_pem["issuing"]),
    )
    assert "Verification: OK" in r.stdout, r.stdout + r.stderr
    text = _openssl("ts", "-reply", "-in", str(tsr), "-text").stdout
    assert "Status: Granted" in text and "Nonce:" in text


def test_rejections_are_responses(county_tsa: Any) -> None:
    resp = _TimeStampResp.load(county_tsa.respond(b"not asn.1"))
    assert resp["status"]["status"].native == "rejection"
    req = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"short"},
        }
    )
    resp = _TimeStampResp.load(county_tsa.respond(req.dump()))
    assert resp["status"]["status"].native == "rejection"
    assert "bad_data_format" in resp["status"]["fail_info"].native
    req = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"x" * 32},
            "req_policy": "1.2.3.4",
        }
    )
    resp = _TimeStampResp.load(county_tsa.respond(req.dump()))
    assert "unaccepted_policy" in resp["status"]["fail_info"].native


def test_identity_is_reused(engine: Any, keystore: Any, county_pki: Any) -> None:
    from signer._tsa import ensure_county_tsa

    a = ensure_county_tsa(engine, keystore, county_pki, name="reuse")
    b = ensure_county_tsa(engine, keystore, county_pki, name="reuse")
    assert a.cert_der == b.cert_der


def test_http_time_stamper_against_the_county_tsa_over_http(
    county_tsa: Any, sealing_key: Any, keystore: Any, revocation: Any, permit_pdf: bytes
) -> None:
    """The external-TSA path (settings.tsa_url): RFC 3161 over HTTP, here served from the county TSA."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from core.errors import Unavailable
    from signer import HttpTimeStamper
    from signer._seal import SealJob, SignatureLevel, seal_pdf
    from tests._fixtures.signer import validate_all

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/broken":
                self.send_response(503)
                self.end_headers()
                return
            answer = county_tsa.respond(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        job = SealJob(key=sealing_key, binding={"matter": "M"}, level=SignatureLevel.B_T)
        sealed = seal_pdf(permit_pdf, job, keystore, HttpTimeStamper(url + "/tsa"), max_bytes=10**8)
        [status] = validate_all(sealed, revocation.root_der, revocation.crls_der)
        assert status.valid and status.trusted and status.timestamp_validity.valid
        with pytest.raises(Unavailable) as err:
            seal_pdf(permit_pdf, job, keystore, HttpTimeStamper(url + "/broken"), max_bytes=10**8)
        assert err.value.code == "TSA_UNAVAILABLE"
    finally:
        server.shutdown()
