"""Lower-cased request field names, cached (the HTTP/1.1 parser's on_header).

Clients send the same dozen names, in the same order, on every request. The i-th
name of a head is first compared with the i-th name of the head parsed last
(``LAST_NAMES``: bytes ==, a length check and a memcmp); only when that differs is
it looked up by its raw bytes in ``FIELD_NAMES``, which costs a hash of the new
name bytes httptools made but spares ``bytes.lower()`` and the hash of the new
lower-cased bytes (whose hash is then cached for every later look-up by an
interface). Compiled, the position compare saves about 330 instructions a field.
With each kept name goes whether it is one the connection must act on (``special``,
the connection's set): a list read in place of a set lookup that hashes the name
(compiled, about 100 instructions a field; 1.7k for a browser's 16).
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
#: Whether each of LAST_LOWERED is in the ``special`` set lowered_name was given.
LAST_SPECIAL: Final[list[bool]] = []
_ORDER_KEPT: Final = 32


def lowered_name(name: bytes, i: int, special: frozenset[bytes]) -> bytes:
    """``name`` lower-cased (the ``i``-th of its head), noted for the next head with
    whether it is in ``special`` (the same set on every call)."""
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
        LAST_SPECIAL[i] = lowered in special
    elif i == len(LAST_NAMES) and i < _ORDER_KEPT:
        LAST_NAMES.append(name)
        LAST_LOWERED.append(lowered)
        LAST_SPECIAL.append(lowered in special)
    return lowered
