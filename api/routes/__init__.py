"""HTTP routes, one module per concern. Every route declares ``require(...)`` or ``public()``."""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from api._errors import ERROR_RESPONSES
from core.settings import Settings

_MODULES = (
    "_ops",
    "_auth",
    "_accounts",
    "_public",
    "_seals",
    "_policy",
    "_ledger",
    "_signing",
    "_webhooks",
    "_attest",
)


def include_all(app: FastAPI, settings: Settings) -> None:
    for name in _MODULES:
        try:
            mod = importlib.import_module(f"api.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"api.routes.{name}":
                raise
            continue
        app.include_router(mod.router_for(settings), responses=ERROR_RESPONSES)
