"""TechEmpower test types as native blazeasgi handlers (shared asyncpg code in db.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from blazeasgi import App, HTMLResponse, Request, Response

from .db import Database, clamp_queries, dumps

db = Database()


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    await db.connect()
    try:
        yield
    finally:
        await db.close()


app = App(lifespan=lifespan)


def _json(obj: object) -> Response:
    return Response(dumps(obj), media_type="application/json")


@app.get("/plaintext")
def plaintext(request: Request) -> Response:
    return Response(b"Hello, World!", media_type="text/plain")


@app.get("/json")
def json_(request: Request) -> Response:
    return _json({"message": "Hello, World!"})


@app.get("/db")
async def single(request: Request) -> Response:
    return _json(await db.single())


@app.get("/queries")
async def queries(request: Request) -> Response:
    return _json(await db.many(clamp_queries(request.query_params.get("queries"))))


@app.get("/fortunes")
async def fortunes(request: Request) -> Response:
    return HTMLResponse(await db.fortunes())


@app.get("/updates")
async def updates(request: Request) -> Response:
    return _json(await db.update(clamp_queries(request.query_params.get("queries"))))


@app.get("/cached-queries")
def cached_queries(request: Request) -> Response:
    return _json(db.cached(clamp_queries(request.query_params.get("count"))))
