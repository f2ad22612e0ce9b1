"""The library patches Yizhang runs with, installed explicitly and once per process.

Nothing patches a library as a side effect of an import. :func:`install` is called where a process starts
doing Yizhang's work: the API's app factory (``api.app.create_app``, so every ``yizhang serve`` worker),
the ``yizhang`` command line (``api.cli.main``), and the test suite's ``tests/conftest.py``, the same way.
It is idempotent. Forked children (the verification sandbox) inherit what their parent installed.

Each patch gives the library's own result, only cheaper or, for oscrypto, at all; each has a test in
``tests/unit/verify/test_patches.py`` that fails when upstream fixes the cause (remove the patch then) or
changes what the patch replaces (check it then):

- pyHanko ``generic.read_hex_string_from_stream`` (a Python call per hex digit), ``read_until_delimiter``
  (per byte of every token), ``_decode_name`` (per byte of every name), ``PdfHandler._walk_page_tree``
  (every page dictionary before the one wanted): ``verifier._pdffast``. No upstream issue is filed;
  pyHanko 0.38.0 and its master branch still work this way.
- asn1crypto ``x509.Name.__eq__`` and ``Name.hashable`` (RFC 4518 preparation of every attribute of every
  freshly parsed name compared): ``verifier._pdffast``. No upstream issue is filed (asn1crypto 1.5.1).
- oscrypto 1.3.0's libcrypto version pattern, which cannot read "OpenSSL 3.0.19": an import hook in
  ``verifier._endesive`` applies upstream's fix, wbond/oscrypto#75 (fixed on master, d5f3437); #78 asks for
  the release that would carry it.

Not a patch but the same kind of dependency: ``signer._seal.KeystoreSigner`` overrides pyHanko's private
``Signer._signed_attr_providers`` (asn1crypto re-encodes a value built from Python objects on every dump,
wbond/asn1crypto#256); its test is ``tests/unit/signer/test_cms_encoding.py``.
"""

from __future__ import annotations

from verifier import _endesive, _pdffast


def install() -> None:
    """Install every patch above (idempotent)."""
    _pdffast.install()
    _endesive.install_oscrypto_fix()


def installed() -> bool:
    """Whether :func:`install` has run in this process (and nothing undid it)."""
    return _pdffast.installed() and _endesive.oscrypto_fix_installed()


__all__ = ["install", "installed"]
