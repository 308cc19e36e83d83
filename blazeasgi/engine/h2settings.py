"""What the server announces in its first SETTINGS frame (RFC 9113 §6.5).

zttp announces SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441: WebSockets over
HTTP/2) and offers no way to leave it out. The engine serves extended CONNECT for
``websocket`` (h2tunnel.py) when WebSockets are on; when they are off (``--ws
none``, or no WebSocket library installed) the setting is taken out of the
server's first SETTINGS frame before that leaves: a browser that saw it would open
its WebSockets as HTTP/2 streams and get a 501, where without it the browser opens
them on a connection of their own. RFC 8441 §3 forbids withdrawing the setting
once sent, so the choice is made for the first frame.
"""

from __future__ import annotations

import functools

_SETTINGS = 0x4
_ACK = 0x1
#: RFC 8441 §3.
ENABLE_CONNECT_PROTOCOL = 0x8


def without_setting(data: bytes, setting: int) -> bytes:
    """``data`` (whole frames) with ``setting`` removed from its SETTINGS frames."""
    parts: list[bytes] = []
    pos = 0
    end = len(data)
    while pos + 9 <= end:
        size = int.from_bytes(data[pos : pos + 3], "big")
        after = min(pos + 9 + size, end)
        if data[pos + 3] == _SETTINGS and not data[pos + 4] & _ACK:
            kept = b"".join(
                data[at : at + 6]
                for at in range(pos + 9, after - 5, 6)
                if int.from_bytes(data[at : at + 2], "big") != setting
            )
            parts.append(len(kept).to_bytes(3, "big") + data[pos + 3 : pos + 9] + kept)
        else:
            parts.append(data[pos:after])
        pos = after
    parts.append(data[pos:])
    return b"".join(parts)


@functools.cache
def serves_websockets(ws: str) -> bool:
    """WebSockets are served (``ws``: Config.ws names an installed library)."""
    from ..websocket.handshake import installed_backend  # (the interfaces import the engine)

    return installed_backend(ws) is not None


def server_preface(data: bytes, ws: str) -> bytes:
    """The server's first frames as the codec queued them (``data``), announcing
    extended CONNECT only when WebSockets are served (``ws``: Config.ws)."""
    if serves_websockets(ws):
        return data
    return without_setting(data, ENABLE_CONNECT_PROTOCOL)
