"""The database code every TechEmpower app here shares (native, FastAPI, RSGI): one
asyncpg pool per worker, one SELECT (with its own Sync) per row, a batched UPDATE.

Connection settings come from TFB_DB_HOST / TFB_DB_PORT (the harness sets them).
"""

from __future__ import annotations

import asyncio
import os
import random
from operator import itemgetter
from typing import Any

import jinja2

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover
    import json

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


POOL_SIZE = int(os.environ.get("TFB_DB_POOL", "16"))
MAX_QUERIES = 500

READ_ROW = "SELECT id, randomnumber FROM world WHERE id = $1"
READ_ALL = "SELECT id, randomnumber FROM world"
# One statement for the whole batch (allowed by the rules), rows in id order so that
# concurrent batches lock rows in the same order (no deadlocks).
WRITE_ROWS = (
    "UPDATE world SET randomnumber = v.r FROM "
    "(SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS r) AS v WHERE world.id = v.id"
)
FORTUNES = "SELECT id, message FROM fortune"
ADDITIONAL = (0, "Additional fortune added at request time.")

TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>"
    "{% for id, message in fortunes %}<tr><td>{{ id }}</td><td>{{ message }}</td></tr>{% endfor %}"
    "</table></body></html>"
)


def clamp_queries(value: str | bytes | None) -> int:
    """The TechEmpower rule: 1..500; missing, empty, 0 or not an integer means 1."""
    try:
        n = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1
    return 1 if n < 1 else MAX_QUERIES if n > MAX_QUERIES else n


def query_param(query_string: str, name: str) -> str | None:
    """The first value of ``name`` in a raw query string (no percent-decoding needed
    for numbers)."""
    for part in query_string.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return value
    return None


def render_fortunes(rows: list[tuple[int, str]]) -> str:
    rows.append(ADDITIONAL)
    rows.sort(key=itemgetter(1))
    return TEMPLATE.render(fortunes=rows)


class Database:
    """The pool and the queries. ``connect()`` once per worker (lifespan, or lazily)."""

    def __init__(self) -> None:
        self.pool: Any = None
        self.cache: dict[int, dict[str, int]] = {}
        self._lock: asyncio.Lock | None = None

    async def connect(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(
            host=os.environ.get("TFB_DB_HOST", "127.0.0.1"),
            port=int(os.environ.get("TFB_DB_PORT", "5432")),
            user="benchmarkdbuser",
            password="benchmarkdbpass",
            database="hello_world",
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
        )
        # The cached-queries test is the one place caching rows is allowed: fill once.
        rows = await self.pool.fetch(READ_ALL)
        self.cache = {row[0]: {"id": row[0], "randomNumber": row[1]} for row in rows}

    async def ensure(self) -> None:
        """Connect on first use (servers without a lifespan, like RSGI)."""
        if self.pool is not None:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.pool is None:
                await self.connect()

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def single(self) -> dict[str, int]:
        row_id = random.randint(1, 10000)
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(READ_ROW, row_id)
        return {"id": row[0], "randomNumber": row[1]}

    async def many(self, n: int) -> list[dict[str, int]]:
        ids = random.sample(range(1, 10001), n)
        worlds = []
        async with self.pool.acquire() as conn:
            for row_id in ids:  # one Bind/Execute/Sync per row
                row = await conn.fetchrow(READ_ROW, row_id)
                worlds.append({"id": row[0], "randomNumber": row[1]})
        return worlds

    async def update(self, n: int) -> list[dict[str, int]]:
        ids = sorted(random.sample(range(1, 10001), n))
        numbers = [random.randint(1, 10000) for _ in ids]
        async with self.pool.acquire() as conn:
            for row_id in ids:  # each row read by its own SELECT before it is changed
                await conn.fetchrow(READ_ROW, row_id)
            await conn.execute(WRITE_ROWS, ids, numbers)
        return [{"id": i, "randomNumber": r} for i, r in zip(ids, numbers, strict=True)]

    async def fortunes(self) -> str:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(FORTUNES)
        return render_fortunes([(row[0], row[1]) for row in rows])

    def cached(self, n: int) -> list[dict[str, int]]:
        cache = self.cache
        return [cache[i] for i in random.choices(range(1, 10001), k=n)]
