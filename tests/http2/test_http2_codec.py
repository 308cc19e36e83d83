"""zttp (the engine's HTTP/2 codec) against h2 (the reference), on the same bytes.

h2 as a client encodes requests (random methods, targets, fields and bodies split
into random DATA frames); the same bytes go to an h2 server connection and a zttp
one, and both must read the same requests: method, target, fields (zttp turns
``:authority`` into ``host``), body and end. Requests both must refuse (fields
HTTP/2 forbids) are refused by both, at the stream or the connection.
"""

from __future__ import annotations

import os
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack
import pytest
from hyperframe.frame import HeadersFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blazeasgi.engine import http2

zttp = pytest.importorskip("zttp")

Request = tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes, bool]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_NAMES = _TOKEN.map(str.encode).filter(
    lambda n: (
        n not in {b"host", b"te", b"connection", b"keep-alive", b"upgrade", b"transfer-encoding"}
        and not n.startswith(b"proxy-")
        and n != b"content-length"
    )
)
_VALUES = st.binary(max_size=40).map(lambda v: bytes(b for b in v if 0x21 <= b <= 0x7E))
_PATHS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~/%=&", max_size=30).map(
    lambda p: ("/" + p).encode()
)


def client() -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    return conn


def read_with_h2(data: bytes) -> tuple[list[Request], bool]:
    """What h2, as a server, reads; and whether it ended the connection."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None, validate_inbound_headers=True)
    )
    conn.initiate_connection()
    requests: dict[int, list[Any]] = {}
    try:
        events = conn.receive_data(data)
    except h2.exceptions.ProtocolError:
        return [], True
    for event in events:
        if isinstance(event, h2.events.RequestReceived):
            assert event.stream_id is not None and event.headers is not None
            fields = [(bytes(k), bytes(v)) for k, v in event.headers]
            pseudo = dict(f for f in fields if f[0].startswith(b":"))
            plain = [f for f in fields if not f[0].startswith(b":")]
            if b":authority" in pseudo:
                plain.append((b"host", pseudo[b":authority"]))
            requests[event.stream_id] = [pseudo[b":method"], pseudo[b":path"], plain, b"", False]
        elif isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None and event.data is not None
            requests[event.stream_id][3] += event.data
        elif isinstance(event, h2.events.StreamEnded):
            assert event.stream_id is not None
            requests[event.stream_id][4] = True
        elif isinstance(event, h2.events.StreamReset):
            assert event.stream_id is not None
            requests.pop(event.stream_id, None)
    return [tuple(r) for r in requests.values()], False  # type: ignore[misc]


def read_with_zttp(*parts: bytes) -> tuple[list[Request], bool]:
    """What zttp reads from ``parts`` fed one after the other; and whether it ended
    the connection."""
    conn = zttp.Connection(zttp.SERVER, zttp.HTTP2)
    conn.initiate_connection()
    requests: dict[int, list[Any]] = {}
    try:
        for part in parts:
            conn.receive_data(part)
            for event in iter(conn.next_event, zttp.NEED_DATA):
                if isinstance(event, zttp.Request):
                    headers = list(event.headers)
                    requests[event.stream_id] = [event.method, event.target, headers, b"", event.end_stream]
                elif isinstance(event, zttp.Data):
                    requests[event.stream_id][3] += event.data
                elif isinstance(event, zttp.EndOfMessage):
                    requests[event.stream_id][4] = True
                elif isinstance(event, zttp.RstStream):
                    requests.pop(event.stream_id, None)
                elif event is zttp.CONNECTION_CLOSED:
                    break
    except zttp.ProtocolError:
        return [], True
    return [tuple(r) for r in requests.values()], False  # type: ignore[misc]


@st.composite
def request_bytes(draw: st.DrawFn) -> bytes:
    conn = client()
    for _ in range(draw(st.integers(1, 4))):
        stream_id = conn.get_next_available_stream_id()
        method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"QUERY"]))
        query = draw(st.one_of(st.just(b""), _PATHS.map(lambda q: b"?" + q[1:])))
        fields = [
            (b":method", method),
            (b":path", draw(_PATHS) + query),
            (b":scheme", b"http"),
            (b":authority", draw(st.sampled_from([b"localhost", b"example.com:8080", b"127.0.0.1"]))),
            *draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=6)),
        ]
        chunks = draw(st.lists(st.binary(max_size=300), max_size=4))
        conn.send_headers(stream_id, fields, end_stream=not chunks)
        for i, chunk in enumerate(chunks):
            conn.send_data(stream_id, chunk, end_stream=i == len(chunks) - 1)
    return conn.data_to_send()


@pytest.mark.skipif(not http2.AVAILABLE, reason="zttp is not installed")
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_bytes(), st.integers(0, 10_000))
def test_zttp_reads_what_h2_reads(data: bytes, split: int) -> None:
    reference, _ = read_with_h2(data)
    assert read_with_zttp(data) == (reference, False)
    split %= len(data) + 1  # fed in two reads, split anywhere: no difference
    assert read_with_zttp(data[:split], data[split:]) == (reference, False)


def raw_request(fields: list[tuple[bytes, bytes]]) -> bytes:
    """A preface and one HEADERS frame carrying ``fields`` as given (h2 as a client
    would refuse to send some of them)."""
    conn = client()
    frame = HeadersFrame(1, flags=["END_HEADERS", "END_STREAM"], data=hpack.Encoder().encode(fields))
    return conn.data_to_send() + frame.serialize()


_BASE = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")]


@pytest.mark.skipif(not http2.AVAILABLE, reason="zttp is not installed")
@pytest.mark.parametrize(
    "fields",
    [
        [*_BASE, (b"Upper", b"x")],
        [*_BASE, (b"connection", b"keep-alive")],
        [*_BASE, (b"te", b"gzip")],
        [*_BASE, (b"transfer-encoding", b"chunked")],
        [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x")],  # no :path
        [*_BASE, (b":path", b"/again")],
        [(b"x-early", b"1"), *_BASE],  # a field before the pseudo-fields
        [*_BASE, (b"x-bad", b"a\r\nb")],
    ],
    ids=["uppercase", "connection", "te-gzip", "transfer-encoding", "no-path", "two-paths", "order", "crlf"],
)
def test_both_refuse_what_http2_forbids(fields: list[tuple[bytes, bytes]]) -> None:
    data = raw_request(fields)
    assert read_with_h2(data)[0] == []
    assert read_with_zttp(data)[0] == []


# -- the stream credit the engine holds back (engine/h2flow.py) -------------------------------
def parse_frames(data: bytes) -> list[Any]:
    from hyperframe.frame import Frame

    frames = []
    while data:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["data", "update", "ping"]), st.integers(0, 7), st.integers(1, 2**31 - 1)),
        max_size=12,
    )
)
def test_take_stream_credit_takes_only_stream_window_updates(frames: list[tuple[str, int, int]]) -> None:
    """What the connection sends on is byte for byte the codec's output less the
    stream-level WINDOW_UPDATE frames, whose increments add up by stream; the
    connection-level ones (stream 0) and every other frame stay."""
    from hyperframe.frame import DataFrame, PingFrame, WindowUpdateFrame

    from blazeasgi.engine.h2flow import take_stream_credit, window_update

    wire: list[bytes] = []
    kept: list[bytes] = []
    expected: dict[int, int] = {}
    for kind, stream, amount in frames:
        if kind == "data":
            one = DataFrame(stream or 1, data=b"d" * (amount % 40)).serialize()
        elif kind == "ping":
            one = PingFrame(0, opaque_data=amount.to_bytes(8, "big")).serialize()
        else:
            one = WindowUpdateFrame(stream, window_increment=amount).serialize()
            assert one == window_update(stream, amount)
            if stream:
                expected[stream] = expected.get(stream, 0) + amount
                wire.append(one)
                continue
        wire.append(one)
        kept.append(one)
    credit: dict[int, int] = {}
    out = take_stream_credit(b"".join(wire), credit)
    assert out == b"".join(kept)
    assert credit == expected
    assert all(f.stream_id == 0 for f in parse_frames(out) if isinstance(f, WindowUpdateFrame))
