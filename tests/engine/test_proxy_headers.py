"""Proxy headers (X-Forwarded-*, RFC 7239 Forwarded) on both interfaces.

Every request goes in as bytes: through HTTPConnection over conftest's
MockTransport (with the peer address a test needs: a trusted proxy, an untrusted
one, a Unix socket), through real sockets, or to the CLI in a subprocess. The same
requests are asked of an ASGI app (what the scope says) and of a native App (what
the Request says), which must agree.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from blazeasgi.cli import to_served_app
from blazeasgi.config import Config
from blazeasgi.engine.connection import HTTPConnection
from blazeasgi.engine.server import ServerState
from blazeasgi.proxy import ProxyHeaders, TrustedHosts, parse_forwarded
from blazeasgi.settings import InterfaceSettings

from ..apps import proxy_apps
from ..conftest import MockTransport
from ..helpers.cli import ROOT, start_tcp
from ..helpers.websocket import read_response
from ..helpers.websocket import request as upgrade_request

APPS = "tests.apps.proxy_apps"
PEER = ("127.0.0.1", 40000)  # MockTransport's peer: trusted by default
DIRECT = {"client": list(PEER), "scheme": "http", "host": "t"}  # the connection's own facts


class PeerTransport(MockTransport):
    """A MockTransport whose peer is ``peer`` ("" is how a Unix socket peer looks)."""

    def __init__(self, peer: tuple[str, int] | str) -> None:
        super().__init__()
        self.peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else super().get_extra_info(name, default)


@pytest.fixture(autouse=True)
def _no_trust_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)


@pytest.fixture(params=["asgi", "native"])
def interface(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def exchange(app: Any, data: bytes, peer: tuple[str, int] | str = PEER, **settings: Any) -> bytes:
    """What ``app``, served with ``settings``, writes back for ``data`` sent from ``peer``."""
    served = to_served_app(app, InterfaceSettings.from_config(Config(lifespan="off", **settings)))
    state = ServerState(Config(access_log=False), served.dispatch, asyncio.get_running_loop())
    transport = PeerTransport(peer)
    conn = HTTPConnection(state)
    transport.protocol = conn
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(data)
    for _ in range(20):
        await asyncio.sleep(0)
    return transport.take()


async def ask(
    interface: str,
    fields: list[str],
    peer: tuple[str, int] | str = PEER,
    target: str = "/",
    host: str = "t",
    **settings: Any,
) -> dict[str, Any]:
    """What the app saw of one GET carrying ``fields`` (the native Request's url too)."""
    app = proxy_apps.asgi_seen if interface == "asgi" else proxy_apps.native_seen()
    data = ("\r\n".join([f"GET {target} HTTP/1.1", f"Host: {host}", *fields]) + "\r\n\r\n").encode()
    head, _, body = (await exchange(app, data, peer, **settings)).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    seen: dict[str, Any] = json.loads(body)
    return seen


def seen_as(client: tuple[str, int] | None, scheme: str = "http", host: str = "t") -> dict[str, Any]:
    return {"client": list(client) if client else None, "scheme": scheme, "host": host}


def check(interface: str, seen: dict[str, Any], expected: dict[str, Any]) -> None:
    """Both interfaces show the same; the native Request's url agrees with the rest."""
    if interface == "native":
        url = seen.pop("url")
        assert url == f"{seen['scheme']}://{seen['host']}/"
    assert seen == expected


# -- X-Forwarded-For / -Proto --------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "trusted", "expected"),
    [
        (
            ["X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"],
            None,
            seen_as(("203.0.113.7", 0), "https"),
        ),
        # The nearest untrusted hop from the right; the client's own claims left of it do not count.
        (
            ["X-Forwarded-For: 198.51.100.1, 203.0.113.7, 10.0.0.5"],
            "127.0.0.1,10.0.0.0/8",
            seen_as(("203.0.113.7", 0)),
        ),
        (
            ["X-Forwarded-For: 10.0.0.1, 10.0.0.2"],
            "127.0.0.1, 10.0.0.0/8",
            seen_as(("10.0.0.1", 0)),
        ),  # all trusted
        (["X-Forwarded-For: 2001:db8::1, fd00::5"], "127.0.0.0/8, fd00::/8", seen_as(("2001:db8::1", 0))),
        (["X-Forwarded-For: [2001:db8::1]:4711"], None, seen_as(("2001:db8::1", 4711))),
        (["X-Forwarded-For: 198.51.100.1, 203.0.113.7"], "*", seen_as(("198.51.100.1", 0))),  # '*': leftmost
        # Two fields are one list (RFC 9110 §5.3): the proxy's own line is on the right.
        (
            ["X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: 203.0.113.7"],
            None,
            seen_as(("203.0.113.7", 0)),
        ),
        (["X-Forwarded-Proto: WSS"], None, seen_as(PEER, "https")),  # an HTTP request's scheme is http(s)
        # A client cannot void the chain with garbage its proxy passed on: the walk never reaches it.
        (["X-Forwarded-For: <script>, 203.0.113.7"], None, seen_as(("203.0.113.7", 0))),
    ],
)
def test_x_forwarded_from_a_trusted_proxy(
    run: Any, interface: str, fields: list[str], trusted: str | None, expected: dict[str, Any]
) -> None:
    check(interface, run(ask(interface, fields, forwarded_allow_ips=trusted)), expected)


@pytest.mark.parametrize(
    "fields",
    [
        ["X-Forwarded-For: not an address"],
        ["X-Forwarded-For: "],
        ["X-Forwarded-For: 203.0.113.7:port"],
        ["X-Forwarded-For: 203.0.113.7:70000"],
        ["X-Forwarded-For: 203.0.113.7,"],  # an empty hop where the walk starts
        ["X-Forwarded-Proto: gopher"],
        ["X-Forwarded-Proto: https, http"],
        ["X-Forwarded-Host: evil.example/path", "X-Forwarded-Port: 99999"],
    ],
)
def test_malformed_x_forwarded_values_are_ignored(run: Any, interface: str, fields: list[str]) -> None:
    check(interface, run(ask(interface, fields, forwarded_host=True)), DIRECT)


# -- RFC 7239 Forwarded ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (["Forwarded: for=192.0.2.60;proto=https;by=203.0.113.43"], seen_as(("192.0.2.60", 0), "https")),
        (['Forwarded: For="[2001:db8:cafe::17]:4711"'], seen_as(("2001:db8:cafe::17", 4711))),
        (['Forwarded: for="192.0.2.43:47011";PROTO="https"'], seen_as(("192.0.2.43", 47011), "https")),
        (["Forwarded: for=_hidden;proto=https"], seen_as(("_hidden", 0), "https")),  # obfuscated
        (["Forwarded: for=unknown"], seen_as(("unknown", 0))),
        (['Forwarded: for="_a\\.b"'], seen_as(("_a.b", 0))),  # a quoted-pair
        (["Forwarded: proto=https"], seen_as(PEER, "https")),  # no for=: the peer stays the client
        # Elements across fields and commas; the walk skips trusted proxies (10/8, the name
        # _edge1), and proto comes from the element that names the client.
        (
            [
                "Forwarded: for=198.51.100.1;proto=http",
                "Forwarded: for=203.0.113.7;proto=https, , for=10.0.0.5;proto=http",
                "Forwarded: for=_edge1",
            ],
            seen_as(("203.0.113.7", 0), "https"),
        ),
        # Forwarded wins over X-Forwarded-*.
        (
            ["X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https", "Forwarded: for=192.0.2.60"],
            seen_as(("192.0.2.60", 0)),
        ),
        # A malformed element left of the client is never parsed.
        (['Forwarded: for="oops', "Forwarded: for=192.0.2.60"], seen_as(("192.0.2.60", 0))),
    ],
)
def test_forwarded_from_a_trusted_proxy(
    run: Any, interface: str, fields: list[str], expected: dict[str, Any]
) -> None:
    trusted = "127.0.0.1, 10.0.0.0/8, _edge1"
    check(interface, run(ask(interface, fields, forwarded_allow_ips=trusted)), expected)


@pytest.mark.parametrize(
    "value",
    [
        'for="192.0.2.60',  # unterminated quote
        "for=192.0.2.60;for=192.0.2.61",  # a parameter twice in one element
        "for=192.0.2.60;proto=gopher",
        "for=999.0.2.60",
        "for=[2001:db8::1",
        'for="[2001:db8::1]:99999"',
        "for=192.0.2.60;",
        "for=192.0.2.60;host=evil.example/x",
        "192.0.2.60",
        "for=not an address",
        "for=",
    ],
)
def test_malformed_forwarded_is_ignored_and_x_forwarded_too(run: Any, interface: str, value: str) -> None:
    fields = [f"Forwarded: {value}", "X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"]
    check(interface, run(ask(interface, fields)), DIRECT)


# -- the host, only with forwarded_host --------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "host"),
    [
        (["X-Forwarded-Host: example.com"], "example.com"),
        (
            ["X-Forwarded-Host: example.com", "X-Forwarded-Proto: https", "X-Forwarded-Port: 8443"],
            "example.com:8443",
        ),
        (
            ["X-Forwarded-Host: example.com", "X-Forwarded-Proto: https", "X-Forwarded-Port: 443"],
            "example.com",
        ),
        (["X-Forwarded-Host: example.com:9000", "X-Forwarded-Port: 8443"], "example.com:9000"),
        (["X-Forwarded-Port: 8080"], "t:8080"),
        (["X-Forwarded-Host: [2001:db8::1]:8080"], "[2001:db8::1]:8080"),
        (
            ['Forwarded: for=192.0.2.1;host=a.example, for=203.0.113.7;host="b.example:8443"'],
            "b.example:8443",
        ),
    ],
)
def test_forwarded_host_is_believed_only_when_enabled(
    run: Any, interface: str, fields: list[str], host: str
) -> None:
    assert run(ask(interface, fields, forwarded_host=True))["host"] == host
    assert run(ask(interface, fields))["host"] == "t"


def test_native_url_is_the_one_the_client_asked_for(run: Any) -> None:
    def url(fields: list[str], **settings: Any) -> str:
        return str(run(ask("native", fields, target="/a%20b?q=1", host="t:8000", **settings))["url"])

    proxied = ["X-Forwarded-Proto: https", "X-Forwarded-Host: example.com", "X-Forwarded-For: 203.0.113.7"]
    assert url([]) == "http://t:8000/a%20b?q=1"
    assert url(proxied, forwarded_host=True) == "https://example.com/a%20b?q=1"
    assert url(proxied) == "https://t:8000/a%20b?q=1"
    assert url(proxied, forwarded_allow_ips="10.0.0.0/8", forwarded_host=True) == "http://t:8000/a%20b?q=1"


# -- who is trusted --------------------------------------------------------------------------
PROXIED = ["Forwarded: for=192.0.2.60;proto=https;host=example.com", "X-Forwarded-For: 203.0.113.7"]


@pytest.mark.parametrize(
    ("peer", "settings", "trusted"),
    [
        (PEER, {}, True),  # 127.0.0.1 and ::1 by default, as under uvicorn
        (PEER, {"forwarded_allow_ips": "10.0.0.0/8"}, False),
        (PEER, {"proxy_headers": False}, False),
        (("10.1.2.3", 5000), {"forwarded_allow_ips": "10.0.0.0/8"}, True),
        (("10.1.2.3", 5000), {"forwarded_allow_ips": "10.1.2.4"}, False),
        (("fd00::7", 5000), {"forwarded_allow_ips": "fd00::/8"}, True),
        (("::1", 5000), {}, True),
        (("192.0.2.9", 5000), {"forwarded_allow_ips": "*"}, True),
        ("", {}, False),  # a Unix socket peer: only with unix: or '*'
        ("", {"forwarded_allow_ips": "unix:"}, True),
        ("", {"forwarded_allow_ips": "*"}, True),
    ],
)
def test_only_a_trusted_peers_headers_count(
    run: Any, interface: str, peer: tuple[str, int] | str, settings: dict[str, Any], trusted: bool
) -> None:
    seen = run(ask(interface, PROXIED, peer=peer, forwarded_host=True, **settings))
    direct = peer if isinstance(peer, tuple) else None
    expected = seen_as(("192.0.2.60", 0), "https", "example.com") if trusted else seen_as(direct)
    check(interface, seen, expected)


def test_forwarded_allow_ips_from_the_environment(
    run: Any, interface: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = ("192.0.2.9", 5000)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "192.0.2.0/24")
    assert run(ask(interface, PROXIED, peer=peer))["client"] == ["192.0.2.60", 0]
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    assert run(ask(interface, PROXIED, peer=peer))["client"] == list(peer)
    # An explicit list wins over the environment.
    assert run(ask(interface, PROXIED, peer=peer, forwarded_allow_ips="192.0.2.9"))["client"] == [
        "192.0.2.60",
        0,
    ]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP network"),
        ("10.0.0.1 10.0.0.2", "'10.0.0.1 10.0.0.2' is not an IP address"),
        ("proxy.local, a/b", "'a/b' is not an IP network"),
    ],
)
def test_a_bad_trusted_list_is_refused(value: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        TrustedHosts(value)


def test_trusted_entries() -> None:
    trusted = TrustedHosts("127.0.0.1, 10.0.0.1/8, [::1], proxy.local")
    assert "10.255.0.1" in trusted  # host bits in a network are taken to mean the network
    assert "::1" in trusted
    assert "proxy.local" in trusted
    assert "192.0.2.1" not in trusted
    assert "" not in trusted
    assert not trusted.trusts_peer(None)
    assert TrustedHosts(["unix:"]).trusts_peer(None)


def test_parse_forwarded() -> None:
    assert parse_forwarded('for=a;Proto="https" ,, for="[::1]:80";by="x\\"y"') == [
        {"for": "a", "proto": "https"},
        {"for": "[::1]:80", "by": 'x"y'},
    ]
    assert parse_forwarded("") == []
    assert parse_forwarded("for=a for=b") is None


def test_remembered_verdicts_still_depend_on_the_request() -> None:
    proxy = ProxyHeaders("10.0.0.0/8")
    fields = [(b"host", b"t"), (b"x-forwarded-proto", b"https")]
    assert proxy.resolve(fields, ("10.0.0.1", 1), "http") == (("10.0.0.1", 1), "https", None)
    assert proxy.resolve(fields, ("10.0.0.2", 2), "http") == (("10.0.0.2", 2), "https", None)
    assert proxy.resolve(fields, ("192.0.2.1", 3), "http") is None
    assert proxy.resolve([(b"x-forwarded-for", b"203.0.113.7")], ("10.0.0.1", 1), "https") == (
        ("203.0.113.7", 0),
        "https",
        None,
    )
    long_chain = [(b"x-forwarded-for", b"198.51.100.1, " * 100 + b"203.0.113.8")]  # not cached
    seen = proxy.resolve(long_chain, ("10.0.0.1", 1), "http")
    assert seen is not None and seen.client == ("203.0.113.8", 0)


# -- WebSocket scopes and real sockets ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"Forwarded": "for=192.0.2.60;proto=https;host=example.com"},
            {"client": ["192.0.2.60", 0], "scheme": "wss", "host": "example.com"},
        ),
        (
            {"X_Forwarded_For": "203.0.113.7", "X_Forwarded_Proto": "https"},
            {"client": ["203.0.113.7", 0], "scheme": "wss", "host": "127.0.0.1"},
        ),
        ({"X_Forwarded_Proto": "ws"}, {"client": list(PEER), "scheme": "ws", "host": "127.0.0.1"}),
        ({"X_Forwarded_Proto": "wss"}, {"client": list(PEER), "scheme": "wss", "host": "127.0.0.1"}),
    ],
)
def test_websocket_scope(run: Any, interface: str, fields: dict[str, str], expected: dict[str, Any]) -> None:
    proxy_apps.websocket_scopes.clear()
    app = proxy_apps.asgi_seen if interface == "asgi" else proxy_apps.native_seen()
    response = run(exchange(app, upgrade_request(**fields), forwarded_host=True))
    assert response.startswith(b"HTTP/1.1 403 ")  # the apps refuse, after looking
    seen = proxy_apps.websocket_scopes[0]
    if interface == "native":  # a native WebSocket shows the request's own Host header
        expected = {**expected, "host": "127.0.0.1"}
    assert seen == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"Forwarded": "for=192.0.2.60;proto=https;host=example.com"},
            {"client": ["192.0.2.60", 0], "scheme": "wss", "host": "example.com"},
        ),
        ({"X_Forwarded_Proto": "https"}, {"client": list(PEER), "scheme": "wss", "host": "127.0.0.1"}),
        ({}, {"client": list(PEER), "scheme": "ws", "host": "127.0.0.1"}),
    ],
)
def test_native_websocket_host_url_tls(
    run: Any, monkeypatch: pytest.MonkeyPatch, fields: dict[str, str], expected: dict[str, Any]
) -> None:
    """A native WebSocket has Request's host, url and tls, the proxy fields read once."""
    calls: list[object] = []
    resolve = ProxyHeaders.resolve

    def counted(self: ProxyHeaders, *args: Any) -> Any:
        calls.append(args)
        return resolve(self, *args)

    monkeypatch.setattr(ProxyHeaders, "resolve", counted)
    proxy_apps.websocket_scopes.clear()
    request = upgrade_request("/ws-view?x=1", **fields)
    response = run(exchange(proxy_apps.native_seen(), request, forwarded_host=True))
    assert response.startswith(b"HTTP/1.1 403 ")
    seen = proxy_apps.websocket_scopes[0]
    url = f"{expected['scheme']}://{expected['host']}/ws-view?x=1"
    assert seen == {**expected, "url": url, "tls": None, "again": [expected["host"], expected["scheme"]]}
    assert len(calls) == (1 if fields else 0)


def test_real_sockets_both_interfaces(serve: Any) -> None:
    for app in (proxy_apps.asgi_seen, proxy_apps.native_seen()):
        srv = serve(app, lifespan="off")
        with srv.connect() as sock:
            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                b'Forwarded: for="[2001:db8::1]:4711";proto=https\r\n\r\n'
            )
            body = read_response(sock).partition(b"\r\n\r\n")[2]
        seen = json.loads(body)
        assert (seen["client"], seen["scheme"], seen["host"]) == (["2001:db8::1", 4711], "https", "t")


# -- the command line (folded in from test_cli_proxy.py) ---------------------------------------
@pytest.mark.parametrize(
    ("flags", "expected_client"),
    [
        ([], "203.0.113.7"),  # default: 127.0.0.1 is a trusted proxy
        (["--no-proxy-headers"], "127.0.0.1"),
        (["--forwarded-allow-ips", "10.0.0.1"], "127.0.0.1"),  # the peer is not trusted
    ],
)
def test_cli_proxy_header_flags(blaze, flags: list[str], expected_client: str) -> None:
    b, url = start_tcp(blaze, f"{APPS}:asgi_seen", "--lifespan", "off", *flags)
    r = httpx.get(url, headers={"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}, timeout=5)
    seen = r.json()
    assert seen["client"][0] == expected_client
    assert seen["scheme"] == ("https" if expected_client != "127.0.0.1" else "http")
    assert b.stop() == 0


def test_cli_native_app_with_forwarded_host_and_env(blaze, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.0/8")
    b, url = start_tcp(blaze, f"{APPS}:native", "--forwarded-host")
    headers = {"forwarded": 'for="[2001:db8::1]:4711";proto=https;host=example.com'}
    seen = httpx.get(f"{url}/x?y=1", headers=headers, timeout=5).json()
    assert seen == {
        "client": ["2001:db8::1", 4711],
        "scheme": "https",
        "host": "example.com",
        "url": "https://example.com/x?y=1",
    }
    assert b.stop() == 0


@pytest.mark.parametrize("via_env", [False, True])
def test_cli_bad_forwarded_allow_ips_is_one_line(via_env: bool) -> None:
    args = [sys.executable, "-m", "blazeasgi", f"{APPS}:asgi_seen", "--port", "0"]
    env = None
    if via_env:
        env = {**os.environ, "FORWARDED_ALLOW_IPS": "10.0.0.0/33"}
    else:
        args += ["--forwarded-allow-ips", "10.0.0.0/33"]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: --forwarded-allow-ips / $FORWARDED_ALLOW_IPS: '10.0.0.0/33' is not an IP network"
    ]
