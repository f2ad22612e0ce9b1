"""Issue 21, findings 5, 8, 11, 12, 13 and 16: what the public sees, what a request may carry, what the
home's files allow, what spreadsheets run, and where PINs travel.

- 5: a receipt (what ``/v1/public/proofs/N`` serves) holds no username, approver or free-text reason; the
  verifier still matches it to the document's binding; an entry logged before salting is not public.
- 8/13: JSON bodies get 1 MiB on every route (a JSON route under an upload prefix got the PDF limit);
  template data and codes are bounded; control characters and lone surrogates are 400
  ``TEXT_INVALID_CHARACTER``; full-width codes are NFKC-normalised; seal names that a certificate cannot
  hold are 400 ``CERT_NAME_TOO_LONG`` with the limit.
- 12: CSV cells that a spreadsheet would run are neutralised.
- 11: ``county init`` under umask 022 leaves no file beyond 0600 and no directory beyond 0700.
- 16: ``county init`` hands no PIN to any child's command line (a recording ``softhsm2-util`` on PATH).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
YIZHANG = [sys.executable, "-c", "from api.cli import main; main()"]
PEOPLE = ("clerk-li", "principal-wang", "办理低保审批")


# --- 5: public proofs and receipts ----------------------------------------------------------------------


def test_receipt_holds_hashes_and_public_facts_only(ledger: Any, engine: Any, make_fields: Any) -> None:
    from core.db import transaction
    from ledger import verify_receipt
    from verifier import BindingFacts, entry_mismatch

    with transaction(engine) as s:
        entry = ledger.append(s, make_fields(0, applicant_name="张三"), "seal:k-0")
    receipt = ledger.receipt(entry.index)
    text = receipt.to_text()
    for clear in (*PEOPLE, "张三"):
        assert clear not in receipt.entry.decode("utf-8"), clear
    assert {"operator", "approver", "reason", "applicant_name"} <= set(entry.personal)
    assert all(v.startswith("hmac-sha256:") for v in entry.personal.values())
    # Still a receipt any verifier checks, and still about this document.
    verify_receipt(text, ledger.verifiers, ledger.origin)
    body = entry.body
    binding = BindingFacts(
        matter=body["matter"],
        stage=body["stage"],
        document_kind=body["document_kind"],
        document_number=body["document_number"],
    )
    assert entry_mismatch(receipt.entry, binding, (body["document_sha256"],)) is None
    # The service's own readers still see the people.
    assert {k: v for k, v in ledger.opened([entry])[0].items() if k in ("operator", "approver")} == {
        "operator": "clerk-li",
        "approver": "principal-wang",
    }
    (row,) = ledger.usage(body["seal_id"], "2026-03")
    assert (row.user, row.approver, row.reason) == PEOPLE


def test_entry_logged_before_salting_is_not_public(ledger: Any, engine: Any) -> None:
    """An entry whose body holds a person in clear (bytes that cannot change) is refused publicly."""
    from ledger import LedgerEntry
    from ledger._entry import ZERO_HASH, EntryKind, encode
    from tests._fixtures.ledger import BASE_TIME, seal_signed_body

    legacy = encode(0, ZERO_HASH, EntryKind.SEAL_SIGNED, BASE_TIME, seal_signed_body(0), {})
    assert LedgerEntry.from_encoded(legacy, "k").names_people
    fresh = LedgerEntry.from_encoded(
        encode(
            0,
            ZERO_HASH,
            EntryKind.SEAL_SIGNED,
            BASE_TIME,
            {k: v for k, v in seal_signed_body(0).items() if k not in ("operator", "approver", "reason")},
            {k: "hmac-sha256:00" for k in ("operator", "approver", "reason")},
        ),
        "k",
    )
    assert not fresh.names_people


# --- 8 and 13: limits and text ---------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Any:
    from starlette.testclient import TestClient

    from api.app import create_app
    from core.db import migrate
    from core.settings import Settings
    from tests._fixtures.api import make_county_accounts

    url = f"sqlite:///{tmp_path / 'api.db'}"
    migrate(url)
    settings = Settings(home=tmp_path / "home", database_url=url, max_pdf_bytes=50 * 1024 * 1024)
    app = create_app(settings, account_rate=(1000.0, 10_000), webhook_interval_s=None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, make_county_accounts(client)


def _template(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "seal_id": "seal-x",
        "matter_code": "m-1",
        "stage": "受理",
        "document_kind": "受理通知书",
        "reason": "办理",
        "idempotency_key": "hardening-0001",
        "template": "acceptance_notice",
        "data": {
            "issuer": "兴江乡",
            "applicant": "张三",
            "matter_name": "x",
            "submitted_date": "d",
            "date": "d",
        },
    }
    body.update(over)
    return body


def test_json_body_limit_is_one_mib_on_every_route(served: Any) -> None:
    client, people = served
    clerk = people["xj.clerk"].headers
    huge = _template(data={**_template()["data"], "matter_name": "办" * 5_000_000})
    r = client.post("/v1/signing-requests/from-template", json=huge, headers=clerk)
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert r.json()["details"]["limit_bytes"] == 1024 * 1024
    unused = _template(unused="x" * (40 * 1024 * 1024))
    r = client.post("/v1/signing-requests/from-template", json=unused, headers=clerk)
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_template_data_is_bounded(served: Any) -> None:
    client, people = served
    clerk = people["xj.clerk"].headers
    for data in (
        {**_template()["data"], "matter_name": "办" * 2001},  # one text over 2,000 characters
        {f"f{i}": "x" for i in range(65)},  # more fields than a template has
        {"Not A Field": "x"},
        {"nested": {"deep": "x"}},
    ):
        r = client.post("/v1/signing-requests/from-template", json=_template(data=data), headers=clerk)
        assert r.status_code == 422 and r.json()["code"] == "VALIDATION_FAILED", (list(data)[:2], r.text)


@pytest.mark.parametrize(
    "where",
    ["template data", "json name", "query", "form field"],
)
def test_control_characters_and_lone_surrogates_are_400(served: Any, where: str) -> None:
    client, people = served
    clerk, admin = people["xj.clerk"].headers, people["admin"].headers
    if where == "template data":
        raw = json.dumps(_template(data={**_template()["data"], "matter_name": "\ud800"}))
        r = client.post(
            "/v1/signing-requests/from-template",
            content=raw.encode(),
            headers={**clerk, "Content-Type": "application/json"},
        )
    elif where == "json name":
        body = {"kind": "township", "code": "x-1", "name": "章\x00名", "county_code": "xingguo"}
        r = client.post("/v1/organisations", json=body, headers=admin)
    elif where == "query":
        r = client.get("/v1/signing-requests", params={"status": "PENDING\x00"}, headers=clerk)
    else:
        r = client.post(
            "/v1/signing-requests",
            data={
                "seal_id": "seal-x",
                "matter_code": "m-1",
                "stage": "受理",
                "document_kind": "受理通知书",
                "reason": "办\x00理",
                "idempotency_key": "hardening-0002",
            },
            files={"file": ("a.pdf", b"%PDF-1.7\n", "application/pdf")},
            headers=clerk,
        )
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "TEXT_INVALID_CHARACTER"


def test_full_width_codes_are_normalised() -> None:
    from api.routes._policy import AgreementIn, OrganisationIn
    from api.routes._signing import SubmissionIn

    org = OrganisationIn(kind="township", code=" ３６０７３２-１１ ", name="兴江乡")
    assert org.code == "360732-11"
    sub = SubmissionIn(
        seal_id="ｓｅａｌ-１",
        matter_code="３６０７３２-ＸＫ-０１",
        stage="受理",
        document_kind="受理通知书",
        reason="办理",
        idempotency_key="abcdefgh",
    )
    assert (sub.seal_id, sub.matter_code) == ("seal-1", "360732-XK-01")
    agreement = AgreementIn(
        department_code="ｘｇ-health",
        township_code="３６０７３２",
        seal_number=2,
        matter_codes=["Ｍ-１"],
        starts_at="2026-01-01T00:00:00+08:00",  # type: ignore[arg-type]
    )
    assert (agreement.department_code, agreement.township_code, agreement.matter_codes) == (
        "xg-health",
        "360732",
        ["M-1"],
    )


@pytest.mark.parametrize("name", ["兴" * 22, "a" * 65])
def test_seal_name_over_what_a_certificate_holds_is_400(served: Any, name: str) -> None:
    client, people = served
    body = {
        "name": name,
        "kind": "TOWNSHIP_APPROVAL",
        "township": "兴江乡",
        "township_code": "360732101",
        "custodian": "李",
        "requested_by": "兴江乡人民政府",
        "approved_by": "县行政审批局",
    }
    r = client.post("/v1/seals", json=body, headers=people["admin"].headers)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "CERT_NAME_TOO_LONG"
    assert r.json()["details"]["limit_bytes"] == 64


# --- 12: CSV ---------------------------------------------------------------------------------------------


def test_csv_cells_a_spreadsheet_would_run_are_neutralised() -> None:
    import csv
    import io

    from api._csv import write_dicts, write_rows

    hostile = ['=HYPERLINK("http://evil/","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    text = write_rows(["h"], [[h] for h in hostile] + [[5], ["兴江乡"]])
    cells = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert cells[: len(hostile)] == ["'" + h for h in hostile]
    assert cells[len(hostile) :] == ["5", "兴江乡"]
    assert next(csv.reader(io.StringIO(write_dicts([{"=cmd": "=1"}]).splitlines()[1]))) == ["'=1"]


def test_every_csv_the_product_writes_goes_through_the_neutraliser() -> None:
    writers = []
    for package in ("api", "signer", "verifier", "ledger", "policies", "keystore", "core"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.name != "_csv.py" and (
                "csv.writer" in text or "csv.DictWriter" in text or "to_csv" in text
            ):
                writers.append(str(path.relative_to(ROOT)))
    assert writers == []


# --- 11 and 16: the home's files, and PINs never on a command line ----------------------------------------


def _init_county(home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("YIZHANG_", "SOFTHSM2_CONF"))}
    return subprocess.run(
        [
            *YIZHANG,
            "county",
            "init",
            "--county-code",
            "360732",
            "--county-name",
            "兴国县",
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, **env},
        timeout=300,
        check=False,
        preexec_fn=lambda: os.umask(0o022),  # noqa: PLW1509 - the permissive umask under test
    )


@pytest.mark.softhsm
def test_county_init_keeps_pins_off_command_lines_and_files_private(tmp_path: Path) -> None:
    import shutil

    real = shutil.which("softhsm2-util")
    assert real is not None
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    record = tmp_path / "argv.log"
    shim = shim_dir / "softhsm2-util"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{record}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    home = tmp_path / "home"
    res = _init_county(home, {"PATH": f"{shim_dir}:{os.environ['PATH']}"})
    assert res.returncode == 0, res.stdout + res.stderr

    pins = [(home / "secrets" / n).read_text().strip() for n in ("token.pin", "token.so-pin")]
    assert all(len(p) >= 4 for p in pins)
    calls = record.read_text() if record.exists() else ""
    for pin in pins:
        assert pin not in calls
    assert "--pin" not in calls and "--so-pin" not in calls

    loose = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        if (path.is_dir() and mode & 0o077) or (path.is_file() and mode & 0o177):
            loose.append(f"{path.relative_to(home)} {oct(mode)}")
    assert loose == []
    assert stat.S_IMODE((home / "yizhang.db").stat().st_mode) == 0o600


def test_sqlite_database_is_created_private_whatever_the_umask(tmp_path: Path) -> None:
    from sqlalchemy import text

    from core.db import make_engine

    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'y.db'}")
        with engine.begin() as c:
            c.execute(text("CREATE TABLE t (x TEXT)"))
        engine.dispose()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o700
    for name in ("y.db", "y.db-wal", "y.db-shm"):
        if (tmp_path / "sub" / name).exists():
            assert stat.S_IMODE((tmp_path / "sub" / name).stat().st_mode) == 0o600, name
