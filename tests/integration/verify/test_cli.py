"""`yizhang verify` exit codes and JSON; `yizhang verify-bundle` round trip; a bundle past its own
``next_update`` is INDETERMINATE (``TRUST_BUNDLE_STALE``) however good the document (issue 19)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from tests.unit.verify._factory import CountyCA, blank_pdf, sign_pdf
from tests.unit.verify.conftest import SIGNED_AT

runner = CliRunner()


def _setup(tmp_path: Path, *, home_crl_at: datetime | None = None) -> tuple[Path, Path, Path]:
    """A document sealed on 2026-03-01 carrying the CRL of the day before, and a county home whose
    published CRL is the one of ``home_crl_at`` (default: the document's)."""
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
    (home / "pki" / "crl" / "issuing.crl").write_bytes(
        crl if home_crl_at is None else ca.crl_der(home_crl_at)
    )
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
    # the county publishes a current CRL: the bundle made from its home now is fresh
    doc, _root, home = _setup(tmp_path, home_crl_at=datetime.now(UTC))
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


def test_a_bundle_past_its_next_update_is_never_total_passed(tmp_path: Path) -> None:
    """The county's CRL in the bundle ran out (nextUpdate 7 days after 2026-02-28), so the bundle did: it
    cannot vouch that the seal was not revoked since, however well the document itself verifies."""
    doc, _root, home = _setup(tmp_path)
    bundle = tmp_path / "bundle.json"
    made = runner.invoke(app, ["verify-bundle", "--out", str(bundle), "--home", str(home), "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(bundle.read_text())["next_update"] == "2026-03-07T00:00:00+00:00"
    stale = runner.invoke(app, ["verify", str(doc), "--bundle", str(bundle), "--json"])
    assert stale.exit_code == 1, stale.output
    report = json.loads(stale.output)
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "TRY_LATER")
    (found,) = [r for r in report["reasons"] if r["code"] == "TRUST_BUNDLE_STALE"]
    assert "past its nextUpdate 2026-03-07T00:00:00+00:00" in found["detail"]
    assert "get a new bundle from that county" in found["detail"]
    # said in the human output too, with the detail
    human = runner.invoke(app, ["verify", str(doc), "--bundle", str(bundle)])
    assert (
        human.exit_code == 1
        and "TRUST_BUNDLE_STALE" in human.output
        and "past its nextUpdate" in human.output
    )

    # a bundle whose next_update cannot be read is refused as input, not taken as fresh
    data = json.loads(bundle.read_text())
    data["next_update"] = "soon"
    bundle.write_text(json.dumps(data))
    bad = runner.invoke(app, ["verify", str(doc), "--bundle", str(bundle), "--json"])
    assert bad.exit_code == 2 and "BUNDLE_INVALID" in bad.output
