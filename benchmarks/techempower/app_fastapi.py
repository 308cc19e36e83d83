"""TechEmpower test types as a FastAPI app: asyncpg pool (db.py), orjson, jinja2."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from .db import Database, clamp_queries, dumps

db = Database()


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await db.connect()
    try:
        yield
    finally:
        await db.close()


class ORJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/plaintext")
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse(b"Hello, World!")


@app.get("/json")
async def json_() -> ORJSONResponse:
    return ORJSONResponse({"message": "Hello, World!"})


@app.get("/db")
async def single() -> ORJSONResponse:
    return ORJSONResponse(await db.single())


@app.get("/queries")
async def queries(queries: str | None = None) -> ORJSONResponse:
    return ORJSONResponse(await db.many(clamp_queries(queries)))


@app.get("/fortunes")
async def fortunes() -> HTMLResponse:
    return HTMLResponse(await db.fortunes())


@app.get("/updates")
async def updates(queries: str | None = None) -> ORJSONResponse:
    return ORJSONResponse(await db.update(clamp_queries(queries)))


@app.get("/cached-queries")
async def cached_queries(count: str | None = None) -> ORJSONResponse:
    return ORJSONResponse(db.cached(clamp_queries(count)))
