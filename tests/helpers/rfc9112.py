"""Shared by the ``test_rfc9112_*`` files (no tests here): a recording ASGI app and
the two verdicts every framing rule comes down to.

* ``assert_rejected(run, data, status)``: the request gets exactly one response with
  ``status`` and ``connection: close``, the connection closes, the app never saw a
  complete request, and a request sent afterwards is never parsed. Checked twice:
  with the bytes in one read and trickled in small reads.
* ``assert_served(run, data)``: every request in ``data`` reaches the app, is
  answered 200, and a plain ``GET /after`` pipelined behind them is served too on
  the still-open connection. Returns what the app saw.

Where RFC 9112 leaves a choice, the test files pick the strict one and say so next to
the case. Cases the engine gets wrong today are marked ``xfail(strict=True)`` with a
``BUG:`` reason, so fixing the engine turns them into failures until the mark goes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from blazeasgi.engine.errors import ClientDisconnected

from ..conftest import MockConnection
from .http import NO_DEFAULTS, Resp, parse_all

AFTER = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
LATE = b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n"


@dataclass
class Seen:
    """One request as the ASGI app saw it (recorded once its body was read)."""

    method: str
    path: str
    raw_path: bytes
    query_string: bytes
    http_version: str
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]


@dataclass
class Outcome:
    out: bytes
    closed: bool
    seen: list[Seen] = field(default_factory=list)
    late: bytes = b""

    @property
    def responses(self) -> list[Resp]:
        resps, _ = parse_all(self.out, eof=self.closed)
        return resps

    @property
    def final(self) -> list[Resp]:
        return [r for r in self.responses if r.status >= 200]


SEEN: list[Seen] = []


async def recording_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body (except under /ignore), records the request, answers 200.

    On ``http.disconnect`` it raises like a well-behaved framework does, so a body
    the engine found broken is answered with the engine's error status.
    """
    if scope["type"] != "http":
        return
    seen = Seen(
        scope["method"],
        scope["path"],
        scope["raw_path"],
        scope["query_string"],
        scope["http_version"],
        list(scope["headers"]),
    )
    if not scope["path"].startswith("/ignore"):
        parts = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the app saw http.disconnect")
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        seen.body = b"".join(parts)
    SEEN.append(seen)
    reply = b"%s %s %d" % (scope["method"].encode(), scope["raw_path"], len(seen.body))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": reply})


def _pieces(data: bytes, step: int | None) -> list[bytes]:
    if step is None:
        return [data]
    return [data[i : i + step] for i in range(0, len(data), step)]


async def _drive(app: Any, data: bytes, step: int | None, config: dict[str, Any], want: int) -> Outcome:
    SEEN.clear()
    conn = MockConnection(app, **{**NO_DEFAULTS, **config})
    loop = asyncio.get_running_loop()
    out = b""
    for i, piece in enumerate(_pieces(data, step)):
        conn.feed(piece)
        if step is None or i % 64 == 0:
            out += conn.transport.take()
            await asyncio.sleep(0)
    # Let handlers run until `want` final responses are out or the connection closed.
    deadline = loop.time() + 3.0
    while loop.time() < deadline:
        out += conn.transport.take()
        if conn.transport.closed:
            break
        resps, _ = parse_all(out, eof=False)
        if want and len([r for r in resps if r.status >= 200]) >= want:
            break
        await asyncio.sleep(0.001)
    out += await conn.settle()
    for _ in range(20):  # a close is scheduled with call_soon
        if conn.transport.closed:
            break
        await asyncio.sleep(0.001)
    closed = conn.transport.closed
    seen = list(SEEN)
    late = b""
    if closed:
        # nothing is ever parsed or answered on this connection again
        conn.feed(LATE)
        late = await conn.settle()
    else:
        conn.protocol.connection_lost(None)  # end a handler still waiting for a body
        await conn.settle()
    return Outcome(out, closed, seen, late)


def exchange(
    run: Any, data: bytes, want: int, *, step: int | None = None, app: Any = None, **config: Any
) -> Outcome:
    """Feed ``data`` (in pieces of ``step`` bytes); collect what came back once ``want``
    final responses are out or the connection closed (or 3 s passed)."""
    return run(_drive(app or recording_app, data, step, config, want=want))


def assert_rejected(
    run: Any,
    data: bytes,
    status: int,
    *,
    steps: tuple[int | None, ...] = (None, 1),
    app: Any = None,
    **config: Any,
) -> Outcome:
    result = None
    for step in steps:
        result = run(_drive(app or recording_app, data, step, config, want=1))
        final = result.final
        how = "in one read" if step is None else f"in reads of {step} byte(s)"
        assert [r.status for r in final] == [status], f"{how}: {result.out[:400]!r}"
        assert final[0].all(b"connection") == [b"close"], f"{how}: {result.out[:400]!r}"
        assert result.closed, f"{how}: the connection stayed open"
        assert result.late == b"", f"{how}: a request after the error was answered"
        assert result.seen == [], f"{how}: the app saw {result.seen!r}"
    assert result is not None
    return result


def assert_served(
    run: Any,
    data: bytes,
    n: int = 1,
    *,
    steps: tuple[int | None, ...] = (None, 1),
    app: Any = None,
    **config: Any,
) -> list[Seen]:
    seen: list[Seen] = []
    for step in steps:
        result = run(_drive(app or recording_app, data + AFTER, step, config, want=n + 1))
        how = "in one read" if step is None else f"in reads of {step} byte(s)"
        final = result.final
        assert [r.status for r in final] == [200] * (n + 1), f"{how}: {result.out[:400]!r}"
        assert not result.closed, f"{how}: the connection was closed"
        assert not any(r.closes for r in final), f"{how}: {result.out[:400]!r}"
        assert [s.path for s in result.seen][-1:] == ["/after"], f"{how}: {result.seen!r}"
        seen = result.seen[:-1]
        assert len(seen) == n, f"{how}: {result.seen!r}"
    return seen


def bug(reason: str) -> pytest.MarkDecorator:
    """A rule the engine breaks today: the test states the correct behaviour."""
    return pytest.mark.xfail(reason=f"BUG: {reason}", strict=True)


def case(id: str, *values: Any, bug_reason: str | None = None) -> Any:
    return pytest.param(*values, id=id, marks=[bug(bug_reason)] if bug_reason else [])
