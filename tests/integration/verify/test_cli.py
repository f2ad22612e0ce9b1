"""`yizhang verify` exit codes and JSON; `yizhang verify-bundle` round trip."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from tests.unit.verify._factory import CountyCA, blank_pdf, sign_pdf
from tests.unit.verify.conftest import SIGNED_AT

runner = CliRunner()


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    from datetime import UTC, datetime

    ca = CountyCA()
    seal = ca.issue_seal()
    crl = ca.crl_der(datetime(2026, 2, 28, tzinfo=UTC))
    doc = tmp_path / "permit.pdf"
    doc.write_bytes(sign_pdf(blank_pdf(), ca, seal, timestamp_at=SIGNED_AT, crls=[crl]))
    root = tmp_path / "root.crt"
    root.write_bytes(ca.root.der)
    home = tmp_path / "home"
    (home / "pki" / "crl").mkdir(parents=True)
    (home / "pki" / "root.crt").write_bytes(ca.root.der)
    (home / "pki" / "issuing.crt").write_bytes(ca.issuing.der)
    (home / "pki" / "crl" / "issuing.crl").write_bytes(crl)
    return doc, root, home


def test_verify_exit_codes(tmp_path: Path) -> None:
    doc, root, home = _setup(tmp_path)
    ok = runner.invoke(app, ["verify", str(doc), "--trust", str(root), "--json", "--home", str(home)])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output)
    assert report["indication"] == "TOTAL_PASSED" and report["facts"]["township"] == "兴江乡"

    other = CountyCA(county="于都县")
    other_root = tmp_path / "other.crt"
    other_root.write_bytes(other.root.der)
    untrusted = runner.invoke(app, ["verify", str(doc), "--trust", str(other_root), "--json"])
    assert untrusted.exit_code == 1 and json.loads(untrusted.output)["indication"] == "INDETERMINATE"

    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(doc.read_bytes() + b"junk")
    bad = runner.invoke(app, ["verify", str(tampered), "--trust", str(root)])
    assert bad.exit_code == 1 and "TRAILING_DATA" in bad.output

    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"not a pdf")
    unreadable = runner.invoke(app, ["verify", str(junk), "--trust", str(root), "--json"])
    assert unreadable.exit_code == 2 and "PDF_UNREADABLE" in unreadable.output

    missing = runner.invoke(app, ["verify", str(tmp_path / "nope.pdf"), "--trust", str(root)])
    assert missing.exit_code == 2


def test_default_trust_is_the_home_county_and_bundle_round_trip(tmp_path: Path) -> None:
    doc, _root, home = _setup(tmp_path)
    r = runner.invoke(app, ["verify", str(doc), "--home", str(home)])
    assert r.exit_code == 0, r.output
    bundle = tmp_path / "bundle.json"
    made = runner.invoke(app, ["verify-bundle", "--out", str(bundle), "--home", str(home), "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["roots"] == 1
    offline = runner.invoke(app, ["verify", str(doc), "--bundle", str(bundle), "--json"])
    assert offline.exit_code == 0, offline.output
    no_root = runner.invoke(app, ["verify", str(doc), "--home", str(tmp_path / "empty")])
    assert no_root.exit_code == 2 and "TRUST_ROOT_MISSING" in no_root.output
