"""Property fuzzing of the engine: request bytes from a grammar, mutated, split at
random points, fed to one connection (``MockConnection``).

The invariant, checked by ``check_input`` for every input:

* nothing escapes: ``data_received`` and ``eof_received`` never raise, the loop's
  exception handler is never called, the engine logs no exception other than the
  app's own ``ClientDisconnected``;
* no hang: every request that h11 (as a strict reference parser) finds complete is
  answered before the client's EOF (unless the engine rejected or closed earlier),
  and after the EOF the connection closes;
* the output is well-formed: h11, as a client, parses it as a sequence of complete
  responses;
* one response per request: the app's answers come in invocation order, each once;
  at most one other response (the engine's 4xx/5xx), which is the last, says
  ``connection: close`` and is followed by the close; when h11 reads the whole input
  as N complete requests, never more than N final responses;
* no desync with the reference: for every request both parsed, the method, target,
  header fields and body the app got are h11's (a disagreement is what request
  smuggling is made of). A CONNECT request ends the comparison; a declined Upgrade
  request is compared, body included, and ends it; a request with a fragment in its
  target is never handed to the app.

The CI variant runs ``FUZZ_EXAMPLES`` (default 100) examples per loop kind and app
interface; set e.g. ``FUZZ_EXAMPLES=20000`` for a long run. ``fuzz/atheris_engine.py``
drives the same ``check_input`` from libFuzzer.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from blazeasgi import App, Request, Response, StreamingResponse
from blazeasgi.engine.errors import ClientDisconnected
from blazeasgi.engine.exchange import Exchange

from ..conftest import MockConnection, new_loop

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
#: Statuses the engine itself answers with (then closes).
ENGINE_ERRORS = frozenset({400, 408, 413, 414, 417, 431, 500, 501, 503, 505})
CONFIGS: list[dict[str, Any]] = [
    {},
    # small limits: 413/414/431 paths and read backpressure in every other example
    {
        "max_body_size": 40,
        "max_target_size": 24,
        "max_head_size": 300,
        "max_header_count": 8,
        "read_high_water": 16,
    },
]

# -- the apps under test: both interfaces, same behaviour ---------------------------------


@dataclass
class Invocation:
    method: str
    path: str
    target: bytes  # raw path and query as the app got them
    headers: list[tuple[bytes, bytes]]
    body: bytes | None = None  # None: not read (/ignore paths)
    answered: bool = False


@dataclass
class Run:
    invocations: list[Invocation] = field(default_factory=list)


CURRENT = Run()


def _invoke(method: str, path: str, target: bytes, headers: list[tuple[bytes, bytes]]) -> Invocation:
    inv = Invocation(method, path, target, list(headers))
    CURRENT.invocations.append(inv)
    return inv


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    query = scope["query_string"]
    inv = _invoke(scope["method"], scope["path"], scope["raw_path"] + b"?" + query, scope["headers"])
    seq = str(len(CURRENT.invocations) - 1).encode()
    if not scope["path"].startswith("/ignore"):
        parts = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("http.disconnect")
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        inv.body = b"".join(parts)
    inv.answered = True
    headers = [(b"x-seq", seq), (b"content-type", b"text/plain")]
    if scope["path"].startswith("/stream"):
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"s1", "more_body": True})
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"s2"})
    else:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok %d" % len(inv.body or b"")})


class NativeApp(App):
    """The native interface (Request, Response, StreamingResponse) for any method and
    path: a router would answer unknown methods itself, which the harness could not
    tell from the engine."""

    def dispatch(self, ex: Exchange) -> Any:
        return self._handle(Request(ex, {}))

    async def _handle(self, request: Request) -> None:
        ex = request._ex
        inv = _invoke(request.method, request.path, ex.path + b"?" + ex.query_string, ex.headers)
        seq = str(len(CURRENT.invocations) - 1)
        if not request.path.startswith("/ignore"):
            inv.body = await request.body()  # ClientDisconnected on a broken body
        inv.answered = True
        response: Response
        if request.path.startswith("/stream"):

            async def gen() -> Any:
                yield b"s1"
                await asyncio.sleep(0)
                yield b"s2"

            response = StreamingResponse(gen(), headers={"x-seq": seq}, media_type="text/plain")
        else:
            response = Response(
                b"ok %d" % len(inv.body or b""), headers={"x-seq": seq}, media_type="text/plain"
            )
        pending = response.emit(request._ex)
        if pending is not None:
            await pending


APPS = {"asgi": asgi_app, "native": NativeApp()}

# -- the reference: h11 as a strict server-side parser --------------------------------------


@dataclass
class Parsed:
    method: str
    target: bytes  # reduced like the engine: path and query, "?" always present
    headers: list[tuple[bytes, bytes]]  # names lowercased; Host from an absolute-form target
    body: bytes = b""
    last: bool = False  # compare nothing from here on (see reference())


@dataclass
class Reference:
    requests: list[Parsed]  # each complete request, in order
    clean: bool  # the whole input was complete requests and nothing else
    rejected: bool = False  # h11 took the next request, the engine must not (see reference())


def _origin(target: bytes) -> tuple[bytes, bytes | None]:
    """(path?query, authority): absolute-form reduced as RFC 9112 §3.2.2 says, the
    authority ending at the first "/", "?" or "#" (RFC 3986 §3.2)."""
    authority = None
    if target[:8].lower().startswith((b"http://", b"https://")):
        rest = target.split(b"://", 1)[1]
        end = min(
            [i for i in (rest.find(b"/"), rest.find(b"?"), rest.find(b"#")) if i >= 0], default=len(rest)
        )
        authority, target = rest[:end], rest[end:]
        if not target.startswith(b"/"):
            target = b"/" + target
    path, _, query = target.partition(b"?")
    return path + b"?" + query, authority


def _asks_upgrade(request: h11.Request) -> bool:
    tokens = b",".join(v for k, v in request.headers if k == b"connection").lower().split(b",")
    return b"upgrade" in [t.strip() for t in tokens] and any(k == b"upgrade" for k, _ in request.headers)


def reference(data: bytes) -> Reference:
    """The requests in ``data`` as h11 (server side, strict) reads them."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    if data:  # (h11 takes b"" for the EOF)
        conn.receive_data(data)
    requests: list[Parsed] = []
    current: Parsed | None = None
    upgrading = False  # the current request asks for an Upgrade
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return Reference(requests, False)
        if event is h11.NEED_DATA:
            clean = conn.their_state is h11.IDLE and not conn.trailing_data[0]
            return Reference(requests, clean)
        if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
            return Reference(requests, False)
        if isinstance(event, h11.Request):
            upgrading = _asks_upgrade(event)
            target, authority = _origin(event.target)
            headers = [
                (k.lower(), authority if k == b"host" and authority is not None else v)
                for k, v in event.headers
            ]
            current = Parsed(event.method.decode(), target, headers)
            if b"#" in event.target:
                # h11 takes a fragment; RFC 9112 §3.2 has none in a request target:
                # the engine answers 400.
                return Reference(requests, False, rejected=True)
            if current.method == "CONNECT":
                # No defined content; the engine answers and closes: compare no further.
                current.last = True
                requests.append(current)
                return Reference(requests, False)
        elif isinstance(event, h11.Data):
            assert current is not None
            current.body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            assert current is not None
            requests.append(current)
            if upgrading:
                # The apps decline it: answered in HTTP/1.1 (its body read like any
                # other), then the connection closes; what follows is not HTTP/1.1.
                return Reference(requests, False)
            # (404: a 2xx would accept a CONNECT tunnel)
            conn.send(h11.Response(status_code=404, headers=[("content-length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.states != {h11.CLIENT: h11.DONE, h11.SERVER: h11.DONE}:
                return Reference(requests, not conn.trailing_data[0])
            conn.start_next_cycle()


# -- reading the engine's output with h11 as a client ----------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def parse_output(out: bytes, methods: list[str], eof: bool) -> list[Answer]:
    """Final responses in ``out`` (strictly parsed; the i-th as an answer to the i-th
    method, GET past the list); AssertionError on anything malformed or incomplete."""
    client = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
    answers: list[Answer] = []

    def ask() -> None:
        i = len(answers)
        method = methods[i] if i < len(methods) else "GET"
        if method not in ("GET", "HEAD"):
            method = "GET"  # e.g. CONNECT: the engine answers it as plain HTTP
        client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        client.send(h11.EndOfMessage())

    ask()
    if out:  # (h11 takes b"" for the EOF)
        client.receive_data(out)
    current: Answer | None = None
    while True:
        try:
            event = client.next_event()
        except h11.RemoteProtocolError as exc:
            raise AssertionError(f"malformed output after {len(answers)} responses: {exc}") from exc
        if event is h11.NEED_DATA:
            if current is not None and eof and not client.trailing_data[1]:
                client.receive_data(b"")  # ends a close-delimited body
                continue
            assert current is None and not client.trailing_data[0], "output ends inside a response"
            return answers
        if isinstance(event, h11.ConnectionClosed):
            return answers
        if isinstance(event, h11.InformationalResponse):
            assert event.status_code == 100, f"unexpected {event.status_code}"
        elif isinstance(event, h11.Response):
            current = Answer(event.status_code, {k.lower(): v for k, v in event.headers}, b"")
        elif isinstance(event, h11.Data):
            assert current is not None
            current.body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            assert current is not None
            answers.append(current)
            current = None
            if client.their_state is h11.DONE:
                client.start_next_cycle()
                ask()
            # else MUST_CLOSE: only the close may follow (h11 checks)


# -- one input through one connection --------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _quiesce(conn: MockConnection, limit: int = 400) -> bytes:
    """Run the loop until nothing more is written for a few rounds."""
    out = b""
    quiet = 0
    for _ in range(limit):
        await asyncio.sleep(0)
        data = conn.transport.take()
        out += data
        quiet = 0 if data else quiet + 1
        if quiet >= 8:
            break
    return out


async def _drive(
    app: Any, pieces: list[bytes], config: dict[str, Any]
) -> tuple[bytes, bytes, bool, list[str]]:
    problems: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: problems.append(f"loop exception handler: {ctx!r}"))
    conn = MockConnection(app, date_header=False, server_header=False, **config)
    before = b""
    for piece in pieces:
        try:
            conn.feed(piece)
        except Exception as exc:  # must never happen
            problems.append(f"data_received raised {exc!r}")
            break
        before += await _quiesce(conn, 40)
    before += await _quiesce(conn)
    closed_before_eof = conn.transport.closed
    if not closed_before_eof:
        try:
            conn.protocol.eof_received()
        except Exception as exc:
            problems.append(f"eof_received raised {exc!r}")
    after = await _quiesce(conn)
    for _ in range(200):  # a handler answering after the EOF, then the close
        if conn.transport.closed:
            break
        await asyncio.sleep(0.001)
        after += conn.transport.take()
    if not conn.transport.closed:
        problems.append("hang: the connection did not close after the client's EOF")
        conn.protocol.connection_lost(None)
        await _quiesce(conn)
    conn.state.runners.close()  # the server shuts down: its idle runner tasks end
    await asyncio.sleep(0)
    if closed_before_eof:
        before, after = before + after, b""
    return before, after, closed_before_eof, problems


@dataclass
class Observed:
    """What one input did to one connection."""

    before: bytes  # written before the client's EOF
    after: bytes  # written after it
    closed_early: bool  # the engine closed before the EOF
    invocations: list[Invocation]
    problems: list[str]  # exceptions and hangs seen while driving


def run_input(data: bytes, cuts: list[int], app_kind: str, config: dict[str, Any], loop: Any) -> Observed:
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)] or [b""]
    CURRENT.invocations = []
    collect = _Collect()
    log = logging.getLogger("blazeasgi.error")
    log.addHandler(collect)
    try:
        before, after, closed_early, problems = loop.run_until_complete(
            _drive(APPS[app_kind], pieces, config)
        )
    finally:
        log.removeHandler(collect)
    for record in collect.records:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, ClientDisconnected):  # the app's own, on a broken body
            problems.append(f"engine logged {record.getMessage()!r} {exc!r}")
    return Observed(before, after, closed_early, list(CURRENT.invocations), problems)


def check_observed(data: bytes, seen: Observed, context: str = "") -> int:
    """Assert the invariant for what ``data`` did; returns the number of final
    responses (for statistics)."""
    assert not seen.problems, f"{seen.problems} {context}"
    invocations = seen.invocations
    # The i-th response answers the i-th invocation (the app's answer, or the engine's
    # error if the app never answered), then the request the app never saw.
    methods = [inv.method for inv in invocations]
    try:
        answers = parse_output(seen.before + seen.after, methods, eof=True)
    except AssertionError:
        if b"HEAD " not in data:
            raise
        # The engine's error answers a request the app never saw; to a HEAD it has no
        # content (RFC 9110 §9.3.2).
        methods.append("HEAD")
        answers = parse_output(seen.before + seen.after, methods, eof=True)
    n_before = len(parse_output(seen.before, methods, eof=seen.closed_early))
    app_answers = [a for a in answers if b"x-seq" in a.headers]
    others = [a for a in answers if b"x-seq" not in a.headers]
    # the app's answers: in invocation order, each once, all before any engine answer
    expected_seqs = [i for i, inv in enumerate(invocations) if inv.answered]
    got_seqs = [int(a.headers[b"x-seq"]) for a in app_answers]
    assert got_seqs == expected_seqs[: len(got_seqs)], f"app answers {got_seqs} {context}"
    assert len(others) <= 1, f"{len(others)} engine responses {context}"
    if others:
        error = others[0]
        assert answers[-1] is error, f"a response after the engine's error {context}"
        assert error.status in ENGINE_ERRORS, f"engine answered {error.status} {context}"
        assert error.headers.get(b"connection") == b"close", f"error without close {context}"

    ref = reference(data)
    n_ref = len(ref.requests)
    if ref.rejected:
        assert len(invocations) <= n_ref, f"the app got a request with a fragment {context}"
    if ref.clean:
        # h11 read the whole input as n_ref complete requests: never more answers, and
        # (unless the engine rejected one or closed) all of them before the EOF
        assert len(answers) <= n_ref, f"{len(answers)} responses for {n_ref} requests {context}"
        closing = others or any(b"close" in a.headers.get(b"connection", b"") for a in answers)
        if not seen.closed_early and not closing:
            assert n_before == n_ref, f"{n_before} of {n_ref} requests answered before EOF (hang?) {context}"
    for inv, parsed in zip(invocations, ref.requests, strict=False):
        assert inv.method == parsed.method, f"method {inv.method} != reference {parsed.method} {context}"
        if parsed.last:
            break  # see reference()
        assert inv.target.rstrip(b"?") == parsed.target.rstrip(b"?"), f"target {inv.target!r} {context}"
        got = [(k, v.lower() if k == b"transfer-encoding" else v) for k, v in inv.headers]  # as h11 does
        assert got == parsed.headers, f"headers {got!r} != reference {parsed.headers!r} {context}"
        if inv.body is not None and inv.answered:
            assert inv.body == parsed.body, f"body {inv.body!r} != reference {parsed.body!r} {context}"
    return len(answers)


def check_input(data: bytes, cuts: list[int], app_kind: str, config: dict[str, Any], loop: Any) -> int:
    """Feed ``data`` split at ``cuts`` and assert the invariant (the fuzzers' entry)."""
    context = f"input={data!r} cuts={cuts} app={app_kind} config={config}"
    return check_observed(data, run_input(data, cuts, app_kind, config, loop), context)


# -- the grammar ---------------------------------------------------------------------------

# Each pool starts with the valid choices; a request drawn "valid" uses only those.
METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PROPFIND"]
METHODS_ALL = [*METHODS, b"CONNECT", b"get", b"G T", b"XYZ", b"", b"GET\x00"]
TARGETS = [
    b"/",
    b"/a",
    b"/ignore",
    b"/stream",
    b"/ignore/x?q",
    b"/stream?q=1",
    b"/a%20b",
    b"http://x/a",
    b"//",
]
TARGETS_ALL = [*TARGETS, b"*", b"https://x", b"x:443", b"/a#f", b"/\xff", b"/a b", b"", b"http:///a"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0"]
VERSIONS_ALL = [*VERSIONS, b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1", b"HTTP/1", b"HTTP/1.1 "]
EXTRA_HEADERS = [
    b"Connection: keep-alive",
    b"Expect: 100-continue",
    b"X-A: b",
    b"X-Long: " + b"v" * 200,
    b"Cookie: a=b; c=d",
    b"Connection: close",
]
EXTRA_HEADERS_ALL = [
    *EXTRA_HEADERS,
    b"Connection: upgrade\r\nUpgrade: h2c",
    b"Expect: nope",
    b"Host: y",
    b"X-Fold: a\r\n b",
    b"X-Space : a",
    b"Transfer-Encoding: chunked",
    b"Content-Length: 0",
    b"X-Nul: a\x00",
]
BAD_LENGTHS = [b"", b"1_0", b"+3", b"-1", b"0x5", b"3, 3", b"3 3", b"99999999999999999999", b"003"]
BAD_CODINGS = [
    b"chunked, chunked",
    b"gzip",
    b"gzip, chunked",
    b"chunked, gzip",
    b",chunked",
    b"CHUNKED",
    b"identity",
]
EXTENSIONS = [b"", b"", b"", b";a", b";a=b", b';a="q;x"']
EXTENSIONS_ALL = [*EXTENSIONS, b" ;a", b";a\x00", b";", b"; a"]
TRAILERS = [b"", b"", b"X-T: 1\r\n"]
TRAILERS_ALL = [*TRAILERS, b"Content-Length: 5\r\n", b"Bad Trailer\r\n", b"X: \x01\r\n"]
BODIES = [b"", b"hello", b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", b"0\r\n\r\n", b"x" * 60]
NOISE = [b"\r\n", b"\n", b"\r", b" ", b"\t", b"\x00", b":", b",", b";", b"0", b"f", b"-", b"chunked", b"\xff"]
NOISE += [
    b"Content-Length: 1\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"\r\n\r\n",
    b"0\r\n\r\n",
    b"GET / HTTP/1.1\r\n",
]


@st.composite
def chunked_body(draw: Any, body: bytes, valid: bool) -> bytes:
    extensions = EXTENSIONS if valid else EXTENSIONS_ALL
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    out = []
    for part in parts:
        if not part:
            continue
        size = b"%x" % len(part)
        if draw(st.booleans()):
            size = size.upper()
        out.append(size + draw(st.sampled_from(extensions)) + b"\r\n" + part + b"\r\n")
    trailer = draw(st.sampled_from(TRAILERS if valid else TRAILERS_ALL))
    out.append(b"0" + draw(st.sampled_from(extensions)) + b"\r\n" + trailer + b"\r\n")
    return b"".join(out)


@st.composite
def request(draw: Any) -> bytes:
    valid = draw(st.integers(0, 4)) >= 2  # 60% of requests are well-formed
    method = draw(st.sampled_from(METHODS if valid else METHODS_ALL))
    target = draw(st.sampled_from(TARGETS if valid else TARGETS_ALL))
    line = b"%s %s %s" % (method, target, draw(st.sampled_from(VERSIONS if valid else VERSIONS_ALL)))
    headers = [b"Host: x"] if valid or draw(st.integers(0, 4)) else []
    headers += draw(st.lists(st.sampled_from(EXTRA_HEADERS if valid else EXTRA_HEADERS_ALL), max_size=2))
    body = draw(st.sampled_from(BODIES) | st.binary(max_size=30))
    framings = ["none", "cl", "chunked"]
    if not valid:
        framings += ["cl-off", "cl-bad", "te-bad", "both"]
    framing = draw(st.sampled_from(framings))
    payload = b""
    if framing == "cl":
        headers.append(b"Content-Length: %d" % len(body))
        payload = body
    elif framing == "cl-off":
        headers.append(b"Content-Length: %d" % max(0, len(body) + draw(st.integers(-3, 3))))
        payload = body
    elif framing == "cl-bad":
        headers.append(b"Content-Length: " + draw(st.sampled_from(BAD_LENGTHS)))
        payload = body
    elif framing in ("chunked", "te-bad", "both"):
        coding = b"chunked" if framing != "te-bad" else draw(st.sampled_from(BAD_CODINGS))
        headers.append(b"Transfer-Encoding: " + coding)
        if framing == "both":
            headers.append(b"Content-Length: %d" % len(body))
        payload = draw(chunked_body(body, valid))
    headers = draw(st.permutations(headers))
    eol = b"\r\n" if valid or draw(st.integers(0, 4)) else b"\n"
    return line + eol + b"".join(h + eol for h in headers) + eol + payload


@st.composite
def mutated(draw: Any, data: bytes) -> bytes:
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate", "truncate"]))
        if kind == "insert":
            data = data[:pos] + draw(st.sampled_from(NOISE) | st.binary(min_size=1, max_size=4)) + data[pos:]
        elif kind == "delete":
            data = data[:pos] + data[pos + draw(st.integers(1, 8)) :]
        elif kind == "replace" and pos < len(data):
            data = data[:pos] + bytes([draw(st.integers(0, 255))]) + data[pos + 1 :]
        elif kind == "duplicate":
            data = data[:pos] + data[pos : pos + draw(st.integers(1, 40))] + data[pos:]
        elif kind == "truncate":
            data = data[:pos]
    return data


@st.composite
def fuzz_input(draw: Any) -> tuple[bytes, list[int], dict[str, Any]]:
    data = b"".join(draw(st.lists(request(), min_size=1, max_size=4)))
    if draw(st.integers(0, 2)) == 0:
        data = draw(mutated(data))
    if draw(st.integers(0, 9)) == 0:
        cuts = list(range(1, len(data)))  # byte by byte
    else:
        cuts = draw(st.lists(st.integers(0, len(data)), max_size=8))
    return data, cuts, draw(st.sampled_from(CONFIGS))


# -- the tests --------------------------------------------------------------------------------

TRIED: dict[str, int] = {}


@pytest.fixture
def fuzz_loop(loop_kind: str) -> Any:
    loop = new_loop(loop_kind)
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.mark.parametrize("app_kind", ["asgi", "native"])
def test_engine_invariant_holds_for_fuzzed_requests(fuzz_loop: Any, loop_kind: str, app_kind: str) -> None:
    key = f"{loop_kind}-{app_kind}"
    TRIED[key] = 0

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        # shrinking inputs fed byte by byte is slow; FUZZ_SHRINK=1 for a minimal example
        phases=[p for p in Phase if p is not Phase.shrink or os.environ.get("FUZZ_SHRINK")],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(fuzz_input())
    def one(case: tuple[bytes, list[int], dict[str, Any]]) -> None:
        data, cuts, config = case
        TRIED[key] += 1
        check_input(data, cuts, app_kind, config, fuzz_loop)

    one()
    if os.environ.get("FUZZ_REPORT"):
        print(f"\nfuzz {key}: {TRIED[key]} inputs")


KNOWN = [
    # regression inputs: each was interesting once (or pins a rule the fuzzer relies on)
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3, []),
    (
        b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 36\r\n\r\n"
        b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        [40],
    ),
    (
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
        [60],
    ),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\r\n\r\n", [5]),
    (b"POST /stream HTTP/1.0\r\nContent-Length: 2\r\n\r\nab", []),
    (b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", [3, 30]),
    (b"POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", [70]),
    # found by the fuzzer (harness or engine)
    (b"CONNECT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n\x00", [1, 2, 3]),
    (b"HEAD /stream HTTP/1.1\r\nContent-Length: 7\r\nHost: x\r\n\r\nhello", []),
    (b"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", [9]),
    (b"OPTIONS /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n\r\n" * 2, [70]),
    (b"DELETE http://tp://x/a HTTP/1.0\r\nContent-Length: 5\r\nHost: x\r\n\r\nhello", [40]),
    (b"GET http://s/ta# HTTP/1.1\r\nHost: se\r\n\r\n", []),
    (b"GET http://]~?http1.0 HTTP/1.0\r\n\r\n", []),
    (b"PUT /stream?q=1  HTTP/1.1\r\nContent-Length: 7\r\nHost: x\r\n\r\n0\r\n\r\nnt", [8, 16]),
]


@pytest.mark.parametrize("app_kind", ["asgi", "native"])
@pytest.mark.parametrize(("data", "cuts"), KNOWN)
def test_engine_invariant_known_inputs(fuzz_loop: Any, app_kind: str, data: bytes, cuts: list[int]) -> None:
    for config in CONFIGS:
        check_input(data, cuts, app_kind, config, fuzz_loop)


REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nx-seq: 0\r\ncontent-length: 0\r\n\r\n"
ERROR = b"HTTP/1.1 431 X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
ONE = [Invocation("GET", "/", b"/?", [(b"host", b"x")], b"", answered=True)]


@pytest.mark.parametrize(
    ("observed", "message"),
    [
        (Observed(OK + ERROR, b"", True, ONE, []), "2 responses for 1 requests"),
        (Observed(b"", b"", False, [], []), "0 of 1 requests answered before EOF"),
        (Observed(OK[:-4], b"", True, ONE, []), "output ends inside a response"),
        (Observed(ERROR + OK, b"", True, ONE, []), "malformed output"),
        (Observed(OK + OK, b"", True, ONE, []), "app answers"),
        (Observed(OK, b"", False, [], ["hang: x"]), "hang"),
        (Observed(OK, b"", False, [Invocation("GET", "/", b"/?", [], b"x", True)], []), "headers"),
    ],
    ids=["two-responses", "unanswered", "truncated", "after-error", "answered-twice", "problem", "desync"],
)
def test_the_checker_catches(observed: Observed, message: str) -> None:
    """The invariant checker itself, on made-up outcomes of one GET."""
    with pytest.raises(AssertionError, match=message):
        check_observed(REQUEST, observed)
