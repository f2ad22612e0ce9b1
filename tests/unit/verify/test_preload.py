"""A process that imports only the verifier (``yizhang verify``, a sandbox parent) has everything the checks
use loaded by ``preload()``: sandbox children run unprivileged and may not be able to import anything.

Until issue 24 ``import signer`` loaded many of these modules first; a verifier-only process then failed
documents with XMP metadata (``No module named 'gzip'`` in the child, ``MODIFIED_AFTER_SIGNING``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.verify._factory import CountyCA
from tests.unit.verify.conftest import FAST, NOW
from verifier import TrustList, verify_document

ROOT = Path(__file__).resolve().parents[3]
CODE = """
import json, sys
from datetime import datetime
from pathlib import Path
from verifier import TrustList, VerifyLimits, patches, verify_document
from verifier._core import preload

patches.install()
preload()
before = set(sys.modules)
trust = TrustList(roots=(Path(sys.argv[2]).read_bytes(),))
out = []
for doc in sys.argv[3:]:
    r = verify_document(Path(doc).read_bytes(), trust, now=datetime.fromisoformat(sys.argv[1]),
                        limits=VerifyLimits(sandbox=False))
    out.append(r.indication.name)
print(json.dumps({"indications": out, "new": sorted(set(sys.modules) - before),
                  "signer": sorted(m for m in sys.modules if m == "signer" or m.startswith("signer."))}))
"""


def test_a_verifier_only_process_imports_nothing_during_a_verification(
    county: CountyCA, sealed: bytes, sealed_form: bytes, tmp_path: Path
) -> None:
    root = tmp_path / "root.der"
    root.write_bytes(county.root.der)
    docs = []
    for name, data in (("sealed.pdf", sealed), ("form.pdf", sealed_form)):
        (tmp_path / name).write_bytes(data)
        docs.append(str(tmp_path / name))
    cmd = [sys.executable, "-c", CODE, NOW.isoformat(), str(root), *docs]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    trust = TrustList(roots=(county.root.der,))
    expected = [
        verify_document(d, trust, now=NOW, limits=FAST).indication.name for d in (sealed, sealed_form)
    ]
    assert got["indications"] == expected
    assert got["signer"] == []  # the verifier stands alone
    assert got["new"] == [], (
        f"imported lazily during a verification: add to verifier._core.preload: {got['new']}"
    )
