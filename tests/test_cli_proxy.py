"""--proxy-headers / --forwarded-allow-ips as uvicorn users know them."""

from __future__ import annotations

import httpx
import pytest

from .test_cli import APPS, blaze, start_tcp  # noqa: F401  (blaze is a fixture)


@pytest.mark.parametrize(
    ("flags", "expected_client"),
    [
        ([], "203.0.113.7"),  # default: 127.0.0.1 is a trusted proxy
        (["--no-proxy-headers"], "127.0.0.1"),
        (["--forwarded-allow-ips", "10.0.0.1"], "127.0.0.1"),  # the peer is not trusted
    ],
)
def test_proxy_header_flags(blaze, flags: list[str], expected_client: str) -> None:  # noqa: F811
    b, url = start_tcp(blaze, f"{APPS}:scope_echo", "--lifespan", "off", *flags)
    r = httpx.get(url, headers={"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}, timeout=5)
    scope = r.json()
    assert scope["client"][0] == expected_client
    assert scope["scheme"] == ("https" if expected_client != "127.0.0.1" else "http")
    assert b.stop() == 0
