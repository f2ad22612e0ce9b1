"""The product, its demo and its tests stand alone: nothing reads beside the checkout (issue 20).

Two guards. The static one: no source, script or configuration in the repository names a path beside it
(``../shared``, ``<root>.parent / "shared"``). The run-time one (tests/conftest.py with
tests/_standalone/sitecustomize.py): every open or listing under the checkout's sibling ``shared/`` raises, in
the test process and in every Python process a test starts, and fails the session. The tests below show the
run-time guard is live, so the whole suite (demo, verify, vectors, corpus) ran under it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FORBIDDEN_DIR, OUTSIDE_READS_LOG, REPO

#: Files that construct the forbidden path on purpose: the guard itself, this test, and the contributor's
#: guide (which names the project's source documents for humans).
ALLOWED = {
    Path("tests/conftest.py"),
    Path("tests/test_standalone.py"),
    Path("tests/_standalone/sitecustomize.py"),
    Path("docs/contributing.md"),
}
SKIP_DIRS = {".git", ".venv", "node_modules", "test-output", "var", "build", "__pycache__", ".mypy_cache"}
SCANNED = {".py", ".sh", ".toml", ".cfg", ".ini", ".js", ".html", ".mako", ".json", ".md", ".yml", ".yaml"}
BESIDE = re.compile(
    r"""\.\./shared\b"""  # ../shared, ../shared/domain
    r"""|\.parent\s*/\s*["']shared["']"""  # ROOT.parent / "shared"
    r"""|parents\[\d+\]\s*/\s*["']shared["']"""  # Path(__file__).parents[4] / "shared"
    r"""|join(?:path)?\([^)\n]*["']\.\.["'][^)\n]*["']shared["']"""  # os.path.join(root, "..", "shared")
    r"""|YIZHANG_DOMAIN_DIR"""  # the demo's old way to find the catalogs beside the checkout
)


def _files() -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(REPO):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        rel_dir = Path(dirpath).relative_to(REPO)
        if rel_dir.parts[:2] == ("tests", "data"):
            continue
        out += [rel_dir / f for f in filenames if Path(f).suffix in SCANNED]
    return sorted(out)


def test_no_file_names_a_path_beside_the_checkout() -> None:
    files = _files()
    assert Path("api/cli/_demo.py") in files and Path("README.md") in files  # the walk sees the tree
    hits = []
    for rel in files:
        if rel in ALLOWED:
            continue
        text = (REPO / rel).read_text(encoding="utf-8", errors="replace")
        hits += [f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m[0]}" for m in BESIDE.finditer(text)]
    assert hits == []


def test_the_pattern_finds_what_it_must() -> None:
    # The forms that were in the tree before issue 20, so the static guard is not vacuous.
    for line in (
        'SHARED = Path(__file__).resolve().parents[1].parent / "shared"',
        'CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "foreign"',
        'candidates += [root.parent / "shared" / "domain"]',
        "yizhang catalog import ../shared/domain/shanxi_township_catalog.csv",
        'env = os.environ.get("YIZHANG_DOMAIN_DIR")',
    ):
        assert BESIDE.search(line), line


def _forget(marker: str) -> None:
    """Drop the attempts this module made on purpose from the session's log (they must not fail it)."""
    kept = [line for line in OUTSIDE_READS_LOG.read_text(encoding="utf-8").splitlines() if marker not in line]
    OUTSIDE_READS_LOG.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def test_reading_beside_the_checkout_fails_in_the_test_process() -> None:
    probe = FORBIDDEN_DIR / "domain" / "probe-in-process.csv"
    try:
        with pytest.raises(RuntimeError, match="must not read beside the checkout"):
            probe.read_bytes()
        with pytest.raises(RuntimeError, match="must not read beside the checkout"):
            os.listdir(FORBIDDEN_DIR)
        assert str(probe) in OUTSIDE_READS_LOG.read_text(encoding="utf-8")
    finally:
        _forget("probe-in-process")
        _forget(f"os.listdir {FORBIDDEN_DIR}\n".strip())


def test_reading_beside_the_checkout_fails_in_a_child_process(tmp_path: Path) -> None:
    # What `yizhang demo`, `yizhang verify` and `yizhang serve` run as: a new interpreter with the test
    # session's environment, started elsewhere (a relative path is resolved against its working directory).
    probe = FORBIDDEN_DIR / "corpus" / "probe-child.pdf"
    code = f"open({os.path.relpath(probe, tmp_path)!r}, 'rb')"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode != 0
        assert "ReadOutsideRepository" in proc.stderr
        assert str(probe) in OUTSIDE_READS_LOG.read_text(encoding="utf-8")
    finally:
        _forget("probe-child")


def test_catalogs_and_test_data_are_in_the_repository() -> None:
    from policies import BundledCatalog, bundled_catalog

    rows = {c: bundled_catalog(c).decode("utf-8").strip().count("\n") for c in BundledCatalog}
    assert rows == {
        BundledCatalog.SHANXI: 114,
        BundledCatalog.XINGGUO: 26,
        BundledCatalog.XINGGUO_NO2_SEALS: 25,
    }
    data = REPO / "tests" / "data"
    assert len(list((data / "merkle").rglob("*.json"))) == 197  # 196 cases and roots.json
    assert (data / "merkle" / "LICENSE").is_file()
    manifest = (data / "corpus" / "foreign" / "manifest.csv").read_text(encoding="utf-8").splitlines()
    assert len(manifest) == 17
    for line in manifest[1:]:
        assert (data / "corpus" / "foreign" / line.split(",", 1)[0]).is_file(), line
    for licence in ("LICENSE.LGPL-2.1", "LICENSE.pyHanko-MIT", "README.md"):
        assert (data / "corpus" / "foreign" / licence).is_file()
    assert (REPO / "policies" / "catalogs" / "README.md").is_file()
