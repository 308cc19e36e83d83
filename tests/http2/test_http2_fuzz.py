"""Property fuzzing of the HTTP/2 path: frame sequences, valid and not, fed in
random pieces to one connection over a mock transport (``MockConnection``).

Invariant: nothing escapes (``data_received`` never raises, the loop's exception
handler is never called, nothing but the app's own disconnects is logged); every
answer is well-formed HTTP/2 (tests/helpers/h2wire.py); and once the connection ends, no
stream is left open and the server counts no connection.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import h2.config
import h2.connection
import h2.exceptions
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blazeasgi.engine import http2

from ..apps import h2_apps
from ..conftest import MockConnection, new_loop
from ..helpers.h2wire import replay

pytestmark = pytest.mark.skipif(not http2.AVAILABLE, reason="zttp (the HTTP/2 codec) is not installed")

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
PATHS = [b"/", b"/echo", b"/count", b"/stream?n=2", b"/fail-before", b"/fail-after", b"/hints", b"/nowhere"]
_STREAM_IDS = st.integers(1, 15)  # (hyperframe refuses stream 0 where it is wrong)


@st.composite
def valid_requests(draw: st.DrawFn, client: h2.connection.H2Connection) -> bytes:
    stream_id = client.get_next_available_stream_id()
    method = draw(st.sampled_from([b"GET", b"POST", b"HEAD"]))
    path = draw(st.sampled_from(PATHS))
    chunks = draw(st.lists(st.binary(max_size=200), max_size=3)) if method == b"POST" else []
    fields = [(b":method", method), (b":path", path), (b":scheme", b"http"), (b":authority", b"x")]
    client.send_headers(stream_id, fields, end_stream=not chunks)
    for i, chunk in enumerate(chunks):
        client.send_data(stream_id, chunk, end_stream=i == len(chunks) - 1)
    if draw(st.booleans()) and draw(st.booleans()):
        client.reset_stream(stream_id)
    return client.data_to_send()


def raw_frames() -> st.SearchStrategy[bytes]:
    """Frames h2 would not send: out of order, on wrong streams, odd flags."""
    return st.one_of(
        st.builds(lambda s, d, e: DataFrame(s, data=d, flags=["END_STREAM"] if e else []).serialize(),
                  _STREAM_IDS, st.binary(max_size=50), st.booleans()),
        st.builds(lambda s, d, e: HeadersFrame(s, data=d, flags=["END_HEADERS"] if e else []).serialize(),
                  _STREAM_IDS, st.binary(max_size=30), st.booleans()),
        st.builds(lambda s, d: ContinuationFrame(s, data=d).serialize(), _STREAM_IDS, st.binary(max_size=30)),
        st.builds(lambda s, c: RstStreamFrame(s, error_code=c).serialize(), _STREAM_IDS, st.integers(0, 20)),
        st.builds(lambda s, i: WindowUpdateFrame(s, window_increment=i).serialize(),
                  st.integers(0, 15), st.integers(0, 2**31 - 1)),
        st.builds(lambda d: PingFrame(0, opaque_data=d).serialize(), st.binary(min_size=8, max_size=8)),
        st.builds(lambda k, v: SettingsFrame(0, settings={k: v}).serialize(),
                  st.integers(1, 8), st.integers(0, 2**31 - 1)),
        st.builds(lambda s, d: PriorityFrame(s, depends_on=d).serialize(), _STREAM_IDS, _STREAM_IDS),
        st.builds(lambda c: GoAwayFrame(0, error_code=c).serialize(), st.integers(0, 13)),
        st.binary(min_size=1, max_size=20),
    )  # fmt: skip


@st.composite
def connection_bytes(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    parts = [client.data_to_send()]
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 3)) == 0:
            parts.append(draw(raw_frames()))
        else:
            try:
                parts.append(draw(valid_requests(client)))
            except h2.exceptions.ProtocolError:
                break
    data = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    return data, cuts


def check(data: bytes, cuts: list[int], loop_kind: str) -> None:
    loop = new_loop(loop_kind)
    errors: list[Any] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))

    async def go() -> None:
        await replay(MockConnection(h2_apps.asgi_app, read_high_water=64), data, cuts)

    try:
        loop.run_until_complete(go())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert errors == []


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=connection_bytes())
def test_frame_sequences(loop_kind: str, case: tuple[bytes, list[int]]) -> None:
    records = _Records()
    logger = logging.getLogger("blazeasgi.error")
    logger.addHandler(records)
    try:
        check(*case, loop_kind)
    finally:
        logger.removeHandler(records)
    # The apps' own failures (/fail-*) are logged; nothing else may be.
    unexpected = [r.getMessage() for r in records.records if "/fail-" not in r.getMessage()]
    assert unexpected == [], unexpected
