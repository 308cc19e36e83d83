"""What the server announces in its first SETTINGS frame (RFC 9113 §6.5).

zttp announces SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441: WebSockets over
HTTP/2) and offers no way to leave it out, but the engine does not serve extended
CONNECT: a browser that saw the setting would open its WebSockets as HTTP/2 streams
and get a 501, where without it the browser opens them on a connection of their own
(HTTP/1.1 upgrade), which works. RFC 8441 §3 forbids withdrawing the setting once
sent, so it is taken out of the server's first SETTINGS frame before that leaves.
"""

from __future__ import annotations

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
