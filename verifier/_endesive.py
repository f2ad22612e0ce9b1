"""endesive as an independent second integrity check.

Why this module exists: ``import endesive.pdf`` fails on this system. endesive → certvalidator → oscrypto
1.3.0, whose libcrypto loader parses the version with ``\\b(\\d\\.\\d\\.\\d[a-z]*)\\b``; Debian's
"OpenSSL 3.0.19" has a two-digit patch number, the regex finds no match, and oscrypto raises
``LibraryNotFoundError('Error detecting the version of libcrypto')`` at import time.

How it is made to work, deliberately:

1. **The upstream fix, applied at import** (:func:`install_oscrypto_fix`). oscrypto's master branch fixed
   the pattern to ``\\b(\\d+\\.\\d+\\.\\d+[a-z]*)\\b`` (wbond/oscrypto#75; commit d5f3437, cited in #78), but
   no release carries it. An import hook rewrites exactly that one expression in the two modules that hold it
   (``oscrypto._openssl._libcrypto_cffi`` and ``_libcrypto_ctypes``) of oscrypto 1.3.0, and nothing else;
   another oscrypto version, or one where the old expression is gone, is left alone.
   ``tests/unit/verify/test_endesive_ready.py`` fails when an oscrypto release makes the fix unnecessary
   (remove it then) and when the cross-check is unavailable on the CI machine.
2. **Which libcrypto.** ``oscrypto.use_openssl(libcrypto_path, libssl_path)`` before anything imports
   oscrypto's backend, in this order: ``YIZHANG_OSCRYPTO_LIBCRYPTO`` / ``YIZHANG_OSCRYPTO_LIBSSL``
   (explicit configuration), the system library (Debian's, which the fix makes readable), and the OpenSSL
   build vendored in the psycopg-binary wheel. If none loads, the cross-check reports itself unavailable
   (reason CROSS_CHECK_UNAVAILABLE): never silently skipped.

Only endesive's digest and signature verification (``SignatureVerifier.decompose_signed_data``) is used:
its certificate-path code (certvalidator) does not know this project's trust list, and trust is judged by
pyHanko-certvalidator anyway. oscrypto is loaded but its crypto is not on the integrity path (endesive
verifies with ``cryptography``).
"""

from __future__ import annotations

import glob
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import sysconfig
from typing import Any

_STATE: dict[str, Any] = {"ready": None, "why": None}
#: oscrypto 1.3.0's version pattern as it appears in its source, and upstream's fix (wbond/oscrypto d5f3437).
_OSCRYPTO_OLD_PATTERN = "re.search('\\\\b(\\\\d\\\\.\\\\d\\\\.\\\\d[a-z]*)\\\\b', version_string)"
_OSCRYPTO_NEW_PATTERN = "re.search('\\\\b(\\\\d+\\\\.\\\\d+\\\\.\\\\d+[a-z]*)\\\\b', version_string)"
_OSCRYPTO_FIXED_MODULES = ("oscrypto._openssl._libcrypto_cffi", "oscrypto._openssl._libcrypto_ctypes")
_VERSION_RE = re.compile(r"\b(\d+\.\d+\.\d+[a-z]*)\b")  # the pattern oscrypto uses once fixed


class _OscryptoFixLoader(importlib.machinery.SourceFileLoader):
    """Loads one of oscrypto 1.3.0's libcrypto modules with upstream's version-pattern fix applied."""

    def get_code(self, fullname: str) -> Any:
        source = self.get_data(self.path).decode("utf-8")
        return compile(source.replace(_OSCRYPTO_OLD_PATTERN, _OSCRYPTO_NEW_PATTERN), self.path, "exec")


class _OscryptoFixFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in _OSCRYPTO_FIXED_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        if not _carries_old_pattern(spec.origin):
            return None  # not the 1.3.0 text: leave it to the normal import
        spec.loader = _OscryptoFixLoader(fullname, spec.origin or "")
        return spec


def oscrypto_needs_fix() -> bool:
    """Whether the installed oscrypto still carries the version pattern that cannot read "3.0.19"."""
    path = _oscrypto_path()
    return any(
        _carries_old_pattern(getattr(importlib.machinery.PathFinder.find_spec(name, path), "origin", None))
        for name in _OSCRYPTO_FIXED_MODULES
    )


def _carries_old_pattern(origin: str | None) -> bool:
    try:
        with open(origin or "", encoding="utf-8") as f:
            return _OSCRYPTO_OLD_PATTERN in f.read()
    except OSError:
        return False


def _oscrypto_path() -> list[str] | None:
    spec = importlib.util.find_spec("oscrypto._openssl")
    return list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else None


def install_oscrypto_fix() -> None:
    """Put the import hook in place (idempotent); it must run before oscrypto's backend is imported.

    Installed at process start by ``verifier.patches.install()``; :func:`prepare` installs it too, so a
    verifier used as a library still gets the cross-check rather than ``CROSS_CHECK_UNAVAILABLE``.
    Upstream: wbond/oscrypto#75 (the pattern; fixed on master, d5f3437), #78 (no release carries it)."""
    if not oscrypto_fix_installed():
        sys.meta_path.insert(0, _OscryptoFixFinder())


def oscrypto_fix_installed() -> bool:
    return any(isinstance(f, _OscryptoFixFinder) for f in sys.meta_path)


def _version_string(path: str) -> str | None:
    try:
        from cffi import FFI

        ffi = FFI()
        ffi.cdef("const char *OpenSSL_version(int type);")
        lib = ffi.dlopen(path)
        return str(ffi.string(lib.OpenSSL_version(0)).decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - a candidate that cannot be loaded is just not a candidate
        return None


def _candidates() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    env_c, env_s = os.environ.get("YIZHANG_OSCRYPTO_LIBCRYPTO"), os.environ.get("YIZHANG_OSCRYPTO_LIBSSL")
    if env_c and env_s:
        out.append((env_c, env_s))
    import ctypes.util

    sys_c, sys_s = ctypes.util.find_library("crypto"), ctypes.util.find_library("ssl")
    if sys_c and sys_s:
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/lib"):
            if os.path.exists(os.path.join(d, sys_c)):
                out.append((os.path.join(d, sys_c), os.path.join(d, sys_s)))
                break
    site = sysconfig.get_paths()["purelib"]
    for libdir in sorted(glob.glob(os.path.join(site, "*.libs"))):
        cs = sorted(glob.glob(os.path.join(libdir, "libcrypto*.so*")))
        ss = sorted(glob.glob(os.path.join(libdir, "libssl*.so*")))
        if cs and ss:
            out.append((cs[0], ss[0]))
    return out


def prepare() -> str | None:
    """Make ``endesive.verifier`` importable; ``None`` on success, else why not."""
    if _STATE["ready"] is not None:
        return None if _STATE["ready"] else str(_STATE["why"])
    install_oscrypto_fix()
    tried = []
    for crypto_path, ssl_path in _candidates():
        version = _version_string(crypto_path)
        tried.append(f"{crypto_path}: {version!r}")
        if not version or not _VERSION_RE.search(version):
            continue
        try:
            import oscrypto

            oscrypto.use_openssl(crypto_path, ssl_path)
            import endesive.verifier  # noqa: F401

            # endesive logs every failed signature check with a stack trace; hostile input makes that noise.
            logging.getLogger("endesive").setLevel(logging.CRITICAL)
            _STATE.update(ready=True, why=None, lib=crypto_path, version=version)
            _verifier()  # made in the parent: forked verifier workers start with it
            return None
        except Exception as exc:  # noqa: BLE001 - report exactly why the second verifier is unavailable
            tried.append(f"{type(exc).__name__}: {exc}")
            break
    _STATE.update(ready=False, why="no libcrypto oscrypto 1.3.0 can parse; tried " + "; ".join(tried))
    return str(_STATE["why"])


def _verifier() -> Any:
    """One ``SignatureVerifier`` per process. Its constructor parses certifi's whole CA bundle (about 120
    certificates, a third of the cross-check's time) into ``trusted_certs``, which only endesive's path
    validation reads; ``decompose_signed_data`` keeps no state on the instance."""
    v = _STATE.get("verifier")
    if v is None:
        from endesive.verifier import SignatureVerifier

        v = _STATE["verifier"] = SignatureVerifier(trusted_certs=[])
    return v


#: ``Certificate.native`` by DER (bounded). endesive finds the signer among a CMS's certificates by turning
#: every certificate into Python values (``.native``) to read its serial number: about 80 % of the cross-check
#: on a sealed permit. That form is a pure function of the certificate's encoding, and every document of a
#: county carries the same few certificates, so it is computed once per worker and handed to each freshly
#: parsed copy. Only the ``SignedData`` this module parses for endesive receives it; nothing else reads it.
_NATIVE_MAX = 64  # entries of at most _NATIVE_MAX_BYTES: about a megabyte of encodings
_NATIVE_MAX_BYTES = 16_384
_natives: dict[bytes, Any] = {}


def _prime_natives(signed_data: Any) -> None:
    for choice in signed_data["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        der = cert.dump()
        native = _natives.get(der)
        if native is None:
            native = cert.native
            if len(der) <= _NATIVE_MAX_BYTES:
                if len(_natives) >= _NATIVE_MAX:
                    _natives.clear()
                _natives[der] = native
        else:
            cert._native = native  # noqa: SLF001 - asn1crypto's own slot for the computed form


def library() -> str | None:
    return _STATE.get("lib")


def integrity(data: bytes, byte_ranges: list[tuple[int, ...] | None]) -> list[tuple[bool, str] | None] | str:
    """For each byte range, endesive's (digest ok and signature ok, note); a string if unavailable."""
    why = prepare()
    if why:
        return why
    verifier = _verifier()
    out: list[tuple[bool, str] | None] = []
    for br in byte_ranges:
        if br is None or len(br) != 4:
            out.append(None)
            continue
        o1, l1, o2, l2 = br
        try:
            contents = data[o1 + l1 + 1 : o2 - 1]
            sig_bytes = bytes.fromhex(contents.decode("ascii"))
            signed = data[o1 : o1 + l1] + data[o2 : o2 + l2]
            from asn1crypto import cms

            sd = cms.ContentInfo.load(sig_bytes)["content"]
            _prime_natives(sd)
            eci = sd["encap_content_info"]
            if eci["content_type"].native == "tst_info":
                # Document timestamp: endesive checks the TSA's signature over the TSTInfo; the TSTInfo's
                # message imprint must be the digest of the byte ranges.
                tst_bytes = eci["content"].contents
                result = verifier.decompose_signed_data(sd, tst_bytes)
                imprint = eci["content"].parsed["message_imprint"]
                algo = imprint["hash_algorithm"]["algorithm"].native
                imprint_ok = hashlib.new(algo, signed).digest() == imprint["hashed_message"].native
                ok = bool(result.hashok) and bool(result.signatureok) and imprint_ok
            else:
                result = verifier.decompose_signed_data(sd, signed)
                ok = bool(result.hashok) and bool(result.signatureok)
            out.append((ok, f"hash={result.hashok} signature={result.signatureok}"))
        except Exception as exc:  # noqa: BLE001 - endesive failing on bad CMS means "not intact"
            out.append((False, f"{type(exc).__name__}: {str(exc)[:120]}"))
    return out
