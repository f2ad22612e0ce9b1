"""Hostile input on every route, as every role: answers are 4xx (or 503 for a missing service), never 500.

Complements test_schemathesis.py (cases generated from the OpenAPI document) with hand-made hostile input:
for each route and method, malformed JSON, wrong types, oversized strings, odd path parameters and junk
multipart bodies.
"""

from __future__ import annotations

import re

from api._authz import access_of, iter_routes

ODD_PATH_VALUES = ["-1", "%2e%2e", "兴江乡" + "a" * 300, "99999999999999999999999"]
BODIES = [
    {"content": b"{", "headers": {"Content-Type": "application/json"}},
    {"content": b"\xff\xfe\xfd", "headers": {"Content-Type": "application/json"}},
    {"json": []},
    {"json": {"status": 12, "reason": ["x"], "comment": {"a": 1}, "seal_id": None, "name": "x" * 5000}},
    {"json": {"month": "2026-13", "matter_codes": "XG-14", "starts_at": "yesterday", "ttl_days": -1}},
    {
        "content": b'--zz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
        "headers": {"Content-Type": "multipart/form-data; boundary=zz"},
    },
    {"content": b"junk", "headers": {"Content-Type": "application/timestamp-query"}},
]
# Server-rendered pages answer errors as pages; everything else as the JSON error body.
HTML_PAGES = ("/ui/", "/verify")
QUERIES = ["", "?cursor=-5&limit=0", "?month=2026-1&seal_id=", "?first=9&second=x", "?status=" + "x" * 100]


def test_no_500_anywhere(county_accounts_sqlite) -> None:
    client, accounts = county_accounts_sqlite
    failures = []
    for route in iter_routes(client.app.routes):
        marker = access_of(route)
        if marker is None or route.path == "/v1/me/password":
            continue
        methods = sorted((route.methods or set()) - {"HEAD"})
        for value in ODD_PATH_VALUES:
            path = re.sub(r"\{[^}]+\}", value, route.path)
            for method in methods:
                variants = BODIES if method in {"POST", "PATCH", "PUT"} else [{}]
                for i, body in enumerate(variants):
                    query = QUERIES[i % len(QUERIES)]
                    for username in ("admin", "xj.principal") if value == "-1" else ("admin",):
                        extra = dict(body)
                        headers = {**accounts[username].headers, **extra.pop("headers", {})}
                        r = client.request(method, path + query, headers=headers, **extra)
                        if r.status_code >= 500 and r.status_code != 503:
                            failures.append(
                                (method, path[:60], query, i, username, r.status_code, r.text[:200])
                            )
                        elif r.status_code >= 400 and not route.path.startswith(HTML_PAGES):
                            assert r.headers["content-type"].startswith("application/json"), (method, path)
                            assert "code" in r.json()
    assert failures == []
