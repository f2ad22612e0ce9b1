"""``verifier._qpdf``: the qpdf CLI's own ``--check`` job run in-process says what the qpdf binary says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from verifier import _qpdf

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "foreign"


def _binary(path: Path) -> tuple[int, list[str]]:
    qpdf = shutil.which("qpdf")
    assert qpdf is not None, "qpdf is installed by scripts/setup.sh"
    p = subprocess.run([qpdf, "--check", str(path)], capture_output=True, text=True, check=False)  # noqa: S603
    return p.returncode, sorted((p.stdout + p.stderr).splitlines())


def test_libqpdf_is_usable_here() -> None:
    assert _qpdf.available()


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.pdf")))
def test_same_exit_code_and_messages_as_the_binary(name: str) -> None:
    """Foreign PDFs, damaged ones included: same exit code (0, 2 errors, 3 warnings), same lines (the
    binary prints info to stdout and warnings to stderr, so only their order may differ)."""
    path = CORPUS / name
    code, text = _qpdf.check_file(str(path))
    assert (code, sorted(text.splitlines())) == _binary(path)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 100 + b"\n%%EOF\n")
    code, text = _qpdf.check_file(str(junk))
    assert (code, sorted(text.splitlines())) == _binary(junk)
    assert code == 2
    code, text = _qpdf.check_file(str(tmp_path / "missing.pdf"))
    assert code == 2 and "missing.pdf" in text
