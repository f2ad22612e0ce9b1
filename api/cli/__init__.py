"""The ``yizhang`` command line. Each area registers its own sub-app; this module only assembles them."""

from __future__ import annotations

import importlib
import os

import typer

app = typer.Typer(
    name="yizhang",
    help="Yizhang (一章): township e-seal signing service",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Areas are separate modules so that each package's commands live apart. A module registers itself by
# exposing ``register(app)``.
_AREAS = (
    "_county",
    "_seal",
    "_policy",
    "_ledger",
    "_sign",
    "_batch",
    "_attest",
    "_verify",
    "_trust",
    "_serve",
    "_demo",
    "_ltv",
    "_backup",
)

for _name in _AREAS:
    try:
        _mod = importlib.import_module(f"api.cli.{_name}")
    except ModuleNotFoundError as exc:  # an area not built yet
        if exc.name != f"api.cli.{_name}":
            raise
        continue
    _mod.register(app)


def main() -> None:
    # Everything the service writes in its home (database, token, keys, PINs, sealed documents) is the
    # owner's alone, whatever umask the shell had: files 0600, directories 0700 (issue 21). Children
    # (serve workers, softhsm2-util) inherit it.
    os.umask(0o077)
    from verifier import patches

    patches.install()  # pyHanko/asn1crypto/oscrypto patches, explicitly (verifier/patches.py)
    app()
