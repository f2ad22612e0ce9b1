"""The default public base URL follows the address ``yizhang serve`` listens on (issue 20)."""

from __future__ import annotations

import pytest

from api.cli._serve import default_public_base_url


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8201, "http://127.0.0.1:8201"),
        ("0.0.0.0", 8201, "http://127.0.0.1:8201"),  # every interface: reached on loopback
        ("::", 9000, "http://127.0.0.1:9000"),
        ("::1", 8201, "http://[::1]:8201"),
        ("[::1]", 8201, "http://[::1]:8201"),
        ("seal.xingguo.internal", 8000, "http://seal.xingguo.internal:8000"),
    ],
)
def test_default_public_base_url(host: str, port: int, url: str) -> None:
    assert default_public_base_url(host, port) == url
