"""A fault-injecting PKCS#11 proxy around the real SoftHSM2 module (``pkcs11_fault.c``), built with gcc.

Point a keystore at the built module (``YIZHANG_PKCS11_URI=pkcs11:token=...?module-path=<it>``), set
``PKCS11_FAULT_FILE`` in the process's environment, and the token fails while that file exists: content
``removed`` (or empty) pulls the token out (every session closed, no token in the slot list,
CKR_TOKEN_NOT_PRESENT / CKR_DEVICE_REMOVED), ``error`` makes it answer CKR_DEVICE_ERROR. Delete the file and
the real token answers again. ``PKCS11_FAULT_MODULE`` names the real module (default: SoftHSM2's).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("pkcs11_fault.c")


def build_fault_module(out_dir: Path) -> Path:
    """Compile the proxy into ``out_dir`` (once per source version) and return the shared object's path."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("gcc is needed to build the PKCS#11 fault proxy (apt-get install gcc)")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    out = out_dir / f"libpkcs11fault-{digest}.so"
    if not out.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(
            [cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(SOURCE), "-ldl"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        tmp.replace(out)
    return out


def fault_on(control: Path, mode: str = "removed") -> None:
    control.write_text(mode, encoding="ascii")


def fault_off(control: Path) -> None:
    control.unlink(missing_ok=True)
