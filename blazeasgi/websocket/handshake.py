"""The opening handshake (RFC 6455 §4.2, RFC 8441 §5) on the engine's parsed request.

The engine stops at an ``Upgrade`` request (HTTP/1.1), or an extended CONNECT with
``:protocol websocket`` (HTTP/2), and dispatches it with ``ex.upgrade`` set; this
module checks it is a valid WebSocket request, answers invalid ones (400, or 426
with ``Sec-WebSocket-Version: 13``; over HTTP/1.1 with ``Connection: close``),
negotiates permessage-deflate and builds the header lines of the 101 (HTTP/1.1),
or of the 200 (HTTP/2: no Upgrade, Connection or Sec-WebSocket-Accept, and no
Sec-WebSocket-Key asked for).
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import importlib.util
import logging
from base64 import b64encode
from collections.abc import Iterable
from typing import Any

from ..engine.exchange import Exchange
from ..engine.http11 import build_head
from .codec import Codec, WebsocketsCodec, WsprotoCodec
from .connection import WebSocketConnection

logger = logging.getLogger("blazeasgi.error")

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT_PLAIN = b"content-type: text/plain; charset=utf-8\r\n"
_REFUSALS = {403: b"Forbidden\n", 500: b"Internal Server Error\n"}
#: Header names the server sets in a 101 itself; an app's values for them are dropped.
_RESERVED = frozenset(
    {b"upgrade", b"sec-websocket-accept", b"sec-websocket-protocol", b"sec-websocket-extensions"}
)
#: permessage-deflate windows: 4 KiB instead of 32 KiB per direction, as uvicorn
#: and the websockets docs recommend for servers with many connections.
_WINDOW_BITS = 12

BACKENDS = ("auto", "none", "websockets", "wsproto")


class HandshakeError(Exception):
    """An invalid WebSocket request: answer ``status`` and close."""

    def __init__(self, status: int, message: str, extra: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def installed_backend(kind: str) -> str | None:
    """The frame library ``Config.ws`` names, or None when WebSockets are off.

    ``auto`` prefers websockets (faster, see codec.py) and falls back to wsproto.
    (Not cached: its callers are, backend and h2settings.serves_websockets.)
    """
    if kind == "none":
        return None
    if kind not in BACKENDS:
        raise ValueError(f"unknown WebSocket implementation {kind!r}; expected one of {', '.join(BACKENDS)}")
    for name in ("websockets", "wsproto") if kind == "auto" else (kind,):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


@functools.cache
def backend(kind: str) -> str | None:
    """As installed_backend; with no library installed, upgrade requests are served
    as plain HTTP (uvicorn's behaviour) and a warning says why, once."""
    name = installed_backend(kind)
    if name is not None or kind == "none":
        return name
    logger.warning(
        "WebSocket upgrade requests are served as plain HTTP: %s",
        "install websockets or wsproto" if kind == "auto" else f"{kind} is not installed",
    )
    return None


class Handshake:
    """What the opening request asked for."""

    __slots__ = ("accept_key", "backend", "extensions", "subprotocols")

    def __init__(self, accept_key: bytes, subprotocols: list[str], extensions: str, backend: str) -> None:
        self.accept_key = accept_key
        self.subprotocols = subprotocols
        self.extensions = extensions
        self.backend = backend


def parse_handshake(ex: Exchange, backend_name: str) -> Handshake:
    """Check ``ex`` is a WebSocket opening request (raises HandshakeError)."""
    over_h2 = ex.http_version == "2"
    if over_h2:
        if ex.method != "CONNECT":  # (the engine sets ex.upgrade for an extended CONNECT only)
            raise HandshakeError(400, "WebSocket over HTTP/2 needs an extended CONNECT request")
    elif ex.method != "GET":
        raise HandshakeError(400, "WebSocket handshake needs a GET request")
    elif ex.http_version != "1.1":
        raise HandshakeError(400, "WebSocket handshake needs HTTP/1.1")
    keys: list[bytes] = []
    versions: list[bytes] = []
    protocols: list[str] = []
    extensions: list[str] = []
    for name, value in ex.headers:
        if name.startswith(b"sec-websocket-"):
            if name == b"sec-websocket-key":
                keys.append(value)
            elif name == b"sec-websocket-version":
                versions.append(value)
            elif name == b"sec-websocket-protocol":
                text = value.decode("latin-1")
                protocols.extend(p.strip() for p in text.split(",") if p.strip())
            elif name == b"sec-websocket-extensions":
                extensions.append(value.decode("latin-1"))
    if b"websocket" not in [t.strip() for t in (ex.upgrade or b"").split(b",")]:
        raise HandshakeError(400, "Upgrade header must name websocket")
    if [v.strip() for v in versions] != [b"13"]:
        raise HandshakeError(
            426,
            "Unsupported WebSocket version: use Sec-WebSocket-Version 13",
            b"upgrade: websocket\r\nsec-websocket-version: 13\r\n",  # (HTTP/2 drops Upgrade)
        )
    if over_h2:  # RFC 8441 §5: no Sec-WebSocket-Key, and no Sec-WebSocket-Accept
        return Handshake(b"", protocols, ", ".join(extensions), backend_name)
    if len(keys) != 1:
        raise HandshakeError(400, "Missing or repeated Sec-WebSocket-Key header")
    key = keys[0].strip()
    try:
        valid = len(binascii.a2b_base64(key, strict_mode=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise HandshakeError(400, "Invalid Sec-WebSocket-Key header")
    accept = b64encode(hashlib.sha1(key + _GUID).digest())
    return Handshake(accept, protocols, ", ".join(extensions), backend_name)


def reject(ex: Exchange, error: HandshakeError) -> None:
    """Answer an invalid handshake in plain HTTP; the engine closes after it."""
    ex.respond(error.status, _TEXT_PLAIN + error.extra, error.message.encode() + b"\n", close=True)


def handshake_or_reject(ex: Exchange, backend_name: str) -> Handshake | None:
    """A session's first step, for both interfaces: the checked handshake, or None
    once an invalid one has been answered (reject)."""
    try:
        return parse_handshake(ex, backend_name)
    except HandshakeError as error:
        reject(ex, error)
        return None


def refuse(ex: Exchange, status: int) -> None:
    """Answer the upgrade request in plain HTTP instead of accepting it: 403 (the
    handler closed or returned before accepting) or 500 (it failed); the engine
    closes the connection after it."""
    ex.respond(status, _TEXT_PLAIN, _REFUSALS[status], close=True)


def accept(
    ex: Exchange,
    handshake: Handshake,
    subprotocol: str | None,
    headers: Iterable[tuple[bytes, bytes]],
) -> WebSocketConnection:
    """Complete the handshake, for both interfaces: the 101 (accept_head), the
    protocol switch, and the connection started on the bytes that came with it."""
    block, codec = accept_head(ex, handshake, subprotocol, headers)
    transport, leftover = ex.switch_protocols(block)
    conn = WebSocketConnection(ex, codec, transport)
    conn.start(leftover)
    return conn


def accept_head(
    ex: Exchange,
    handshake: Handshake,
    subprotocol: str | None,
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[bytes, Codec]:
    """The header lines of the 101 (or of HTTP/2's 200) for ``switch_protocols``,
    and the codec to use."""
    config = ex.info.config
    lines: list[bytes] = []
    if ex.http_version != "2":
        lines += (
            b"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ",
            handshake.accept_key,
            b"\r\n",
        )
    if subprotocol is not None:
        if not isinstance(subprotocol, str):
            raise TypeError(f"subprotocol must be a str, not {type(subprotocol).__name__}")
        lines.append(build_head([(b"sec-websocket-protocol", subprotocol.encode("latin-1"))]).block)
    deflate: Any = None
    if handshake.extensions and config.ws_per_message_deflate:
        response, deflate = _negotiate_deflate(handshake.extensions, handshake.backend)
        if response:
            lines += (b"sec-websocket-extensions: ", response.encode("latin-1"), b"\r\n")
    lines.append(ex.info.state.default_headers)
    extra = [(n, v) for n, v in headers if n.lower() not in _RESERVED]
    if extra:
        lines.append(build_head(extra).block)
    codec_class = WebsocketsCodec if handshake.backend == "websockets" else WsprotoCodec
    return b"".join(lines), codec_class(config.ws_max_size, deflate)


def _negotiate_deflate(header: str, backend_name: str) -> tuple[str, Any]:
    """The first acceptable permessage-deflate offer: (response header, extension)."""
    if backend_name == "websockets":
        from websockets.exceptions import InvalidHeader, NegotiationError
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
        from websockets.headers import build_extension, parse_extension

        factory = ServerPerMessageDeflateFactory(
            server_max_window_bits=_WINDOW_BITS,
            client_max_window_bits=_WINDOW_BITS,
            compress_settings={"memLevel": 5},
        )
        try:
            offers = parse_extension(header)
        except InvalidHeader:
            return "", None
        for name, params in offers:
            if name != factory.name:
                continue
            try:
                response_params, extension = factory.process_request_params(params, [])
            except NegotiationError:
                continue
            return build_extension([(name, response_params)]), extension
        return "", None
    from wsproto.extensions import PerMessageDeflate

    for offer in header.split(","):
        if offer.split(";", 1)[0].strip() != "permessage-deflate":
            continue
        ext = PerMessageDeflate()
        try:
            accepted = ext.accept(offer)
        except ValueError:
            continue
        if accepted is None or accepted is False:
            continue
        response = accepted if isinstance(accepted, str) else ""
        return ("permessage-deflate; " + response if response else "permessage-deflate"), ext
    return "", None
