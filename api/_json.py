"""JSON documents as the API reads and answers them: named once, for what they are.

A route's ``dict`` answer is serialised by FastAPI; a decoded body or payload is whatever ``json.loads``
gives. Their values are JSON, not one Python type: these aliases name them (they check no more than the
dynamic type they stand for), and a collaborator is never typed by them.
"""

from __future__ import annotations

from typing import Any, TypeAlias

#: A JSON value (``json.loads``' result, or something FastAPI's encoder serialises).
JsonValue: TypeAlias = Any
#: A JSON object: a route's answer, a decoded body, an event payload.
JsonObject: TypeAlias = dict[str, JsonValue]
