"""Read-only views over raw request data, decoded only when read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from urllib.parse import parse_qsl


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued request headers over the raw (bytes) list.

    ``headers["accept"]`` is the first value; ``getlist`` gives all of them.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw  # names already lower-cased by the engine

    def __getitem__(self, key: str) -> str:
        name = key.lower().encode("latin-1")
        for k, v in self.raw:
            if k == name:
                return v.decode("latin-1")
        raise KeyError(key)

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default

    def getlist(self, key: str) -> list[str]:
        name = key.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.raw if k == name]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().encode("latin-1")
        return any(k == name for k, _ in self.raw)

    def __iter__(self) -> Iterator[str]:
        seen: set[bytes] = set()
        for k, _ in self.raw:
            if k not in seen:
                seen.add(k)
                yield k.decode("latin-1")

    def __len__(self) -> int:
        return len({k for k, _ in self.raw})

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """Every (name, value) pair, duplicates included, in arrival order."""
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


class QueryParams(Mapping[str, str]):
    """Parsed query string; ``params["a"]`` is the last value, ``getlist`` all."""

    __slots__ = ("_last", "_pairs")

    def __init__(self, query_string: bytes | str) -> None:
        if isinstance(query_string, bytes):
            query_string = query_string.decode("latin-1")
        self._pairs = parse_qsl(query_string, keep_blank_values=True)
        self._last = dict(self._pairs)

    def __getitem__(self, key: str) -> str:
        return self._last[key]

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __iter__(self) -> Iterator[str]:
        return iter(self._last)

    def __len__(self) -> int:
        return len(self._last)

    def __repr__(self) -> str:
        return f"QueryParams({self._pairs!r})"
