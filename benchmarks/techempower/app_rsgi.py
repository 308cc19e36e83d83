"""TechEmpower test types as a Granian RSGI app, on the same asyncpg code (db.py).

RSGI has no lifespan here: the pool is created on the first database request.
Granian adds ``Server`` and ``Date`` itself.
"""

from __future__ import annotations

from .db import Database, clamp_queries, dumps, query_param

db = Database()

PLAIN = [("content-type", "text/plain")]
JSON = [("content-type", "application/json")]
HTML = [("content-type", "text/html; charset=utf-8")]


async def app(scope, proto):
    path = scope.path
    if path == "/plaintext":
        proto.response_bytes(200, PLAIN, b"Hello, World!")
    elif path == "/json":
        proto.response_bytes(200, JSON, dumps({"message": "Hello, World!"}))
    elif path == "/db":
        await db.ensure()
        proto.response_bytes(200, JSON, dumps(await db.single()))
    elif path == "/queries":
        await db.ensure()
        n = clamp_queries(query_param(scope.query_string, "queries"))
        proto.response_bytes(200, JSON, dumps(await db.many(n)))
    elif path == "/fortunes":
        await db.ensure()
        proto.response_str(200, HTML, await db.fortunes())
    elif path == "/updates":
        await db.ensure()
        n = clamp_queries(query_param(scope.query_string, "queries"))
        proto.response_bytes(200, JSON, dumps(await db.update(n)))
    elif path == "/cached-queries":
        await db.ensure()
        proto.response_bytes(
            200, JSON, dumps(db.cached(clamp_queries(query_param(scope.query_string, "count"))))
        )
    else:
        proto.response_bytes(404, PLAIN, b"Not Found")
