"""HTTP/2 header fields from the engine's HTTP/1.1-style header blocks, cached.

The interfaces hand the engine validated header lines (``b"name: value\\r\\n"``, as
http11.build_head makes them); HTTP/2 wants ``(name, value)`` pairs, names
lower-cased and without the connection-specific fields (RFC 9113 §8.2.2). An app
answers with the same few header blocks again and again, so each connection keeps
their conversions.
"""

from __future__ import annotations

#: Connection-specific fields, which HTTP/2 forbids (RFC 9113 §8.2.2).
_CONNECTION_FIELDS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
#: Converted header blocks kept per connection (an app sends the same few).
_CACHE_SIZE = 64

Fields = list[tuple[bytes, bytes]]


def fields_of(block: bytes) -> Fields:
    """HTTP/1.1 header lines (validated, as http11.build_head makes them) as HTTP/2
    fields: names lower-cased, connection-specific fields dropped."""
    fields = []
    for line in block.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            name = name.lower()
            if name not in _CONNECTION_FIELDS:
                fields.append((name, value))
    return fields


class FieldCache:
    """One connection's converted header blocks and response field lists."""

    def __init__(self) -> None:
        self._blocks: dict[bytes, Fields] = {}
        self._default_block = b""
        self._default_fields: Fields = []
        self._responses: dict[tuple[bytes, int | None], Fields] = {}

    def response_fields(self, default: bytes, header_block: bytes, content_length: int | None) -> Fields:
        """A response's fields: ``default`` (the server's Date/Server block),
        content-length, the app's. The lists are kept until ``default`` changes
        (once a second)."""
        if default is not self._default_block:
            self._default_block = default
            self._default_fields = fields_of(default)
            self._responses.clear()
        key = (header_block, content_length)
        fields = self._responses.get(key)
        if fields is None:
            fields = list(self._default_fields)
            if content_length is not None:
                fields.append((b"content-length", b"%d" % content_length))
            if header_block:
                fields += self.fields(header_block)
            if len(self._responses) >= _CACHE_SIZE:
                self._responses.clear()
            self._responses[key] = fields
        return fields

    def fields(self, block: bytes) -> Fields:
        """``block`` (header lines: trailers, informational responses) as fields."""
        cache = self._blocks
        fields = cache.get(block)
        if fields is None:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            fields = cache[block] = fields_of(block)
        return fields
