"""Coverage-guided fuzzing of the HTTP/2 path with atheris (libFuzzer): frame
sequences after the connection preface, fed in pieces to one connection over a
mock transport, as tests/http2/test_http2_fuzz.py does with hypothesis.

    pip install atheris          # not a test dependency: only for this harness
    python fuzz/atheris_h2.py -runs=100000               # from the repository root
    python fuzz/atheris_h2.py -max_total_time=600 my_corpus/
    FUZZ_LOOP=uvloop python fuzz/atheris_h2.py -runs=50000
    python fuzz/atheris_h2.py --replay my_corpus/ crash-1234   # each input once

Without atheris (it has no wheel for every Python) the target replays: every file
named (a directory: every file in it), or the seed corpus, once each.

Invariant, per input: nothing escapes (``data_received`` never raises, the loop's
exception handler is never called, nothing but the app's own failures is logged);
no hang (an input gets HANG_SECONDS; libFuzzer's ``-timeout`` too); what the
server sent is well-formed HTTP/2 to the h2 library; and once the connection has
ended no stream is left open and the server counts no connection.

Input layout: byte 0: bits 0-2, how many cut points follow (two bytes each: where
the bytes are split into reads); bit 3, a stream budget of SMALL_BUDGET streams
instead of MAX_STREAMS_PER_CONNECTION, so that inputs reach the two-step GOAWAY
(h2limits). Then frames, each as ``type, flags, stream id, length`` (one byte
each; stream 255 is 2^31-1, the last) and ``length`` bytes of payload; the
client's connection preface and an empty SETTINGS frame go first. Seeds (valid
requests, uploads, resets, the stream budget and its PING's answer) come from
the h2 library; without a corpus argument they and a dictionary of frame bytes
are written to a temporary directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection

try:
    import atheris
except ImportError:  # replay only
    atheris = None

from fuzzsetup import prepare_imports

prepare_imports()

if atheris is not None:
    with atheris.instrument_imports(include=["blazeasgi"]):
        import blazeasgi.asgi.adapter
        import blazeasgi.engine.h2exchange
        import blazeasgi.engine.h2flow
        import blazeasgi.engine.h2limits
        import blazeasgi.engine.http2  # noqa: F401

from blazeasgi.engine import h2limits, http2  # noqa: E402 (after prepare_imports)
from tests.apps import h2_apps  # noqa: E402
from tests.conftest import MockConnection, new_loop  # noqa: E402
from tests.helpers.h2wire import FuzzFailure  # noqa: E402
from tests.helpers.h2wire import replay as replay_checked  # noqa: E402

LOOP = new_loop(os.environ.get("FUZZ_LOOP", "asyncio"))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SMALL_BUDGET = 3
HANG_SECONDS = 20
#: The byte that stands for the highest stream id.
LAST = 255
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9


def parse_input(data: bytes) -> tuple[bytes, list[int], bool]:
    """(the bytes the client sends, where they are cut into reads, small budget?)."""
    flags = data[0] if data else 0
    pos = 1
    cuts = []
    for _ in range(flags & 7):
        cuts.append(int.from_bytes(data[pos : pos + 2], "big"))
        pos += 2
    frames = [PREFACE]
    while pos + 4 <= len(data):
        kind, frame_flags, stream, length = data[pos : pos + 4]
        payload = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
        stream_id = h2limits.LAST_STREAM_ID if stream == LAST else stream
        frames.append(
            len(payload).to_bytes(3, "big") + bytes([kind, frame_flags]) + stream_id.to_bytes(4, "big")
        )
        frames.append(payload)
    wire = b"".join(frames)
    return wire, sorted(min(cut, len(wire)) for cut in cuts), bool(flags & 8)


async def serve(wire: bytes, cuts: list[int]) -> None:
    await replay_checked(MockConnection(h2_apps.asgi_app, read_high_water=64), wire, cuts)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not raised_by_the_app(record):  # its own failures are logged, rightly
            self.messages.append(record.getMessage())


APP_SOURCE = h2_apps.__file__


def raised_by_the_app(record: logging.LogRecord) -> bool:
    """The logged exception came from the app's own code (/fail-*, or a query it
    cannot parse), not from the server's."""
    tb = record.exc_info[2] if record.exc_info else None
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename == APP_SOURCE


def check(data: bytes) -> None:
    wire, cuts, small_budget = parse_input(data)
    http2.MAX_STREAMS_PER_CONNECTION = SMALL_BUDGET if small_budget else h2limits.MAX_STREAMS_PER_CONNECTION
    escaped: list[dict[str, Any]] = []
    LOOP.set_exception_handler(lambda _loop, context: escaped.append(context))
    errors = _Errors()
    logger = logging.getLogger("blazeasgi.error")
    logger.addHandler(errors)
    try:
        LOOP.run_until_complete(asyncio.wait_for(serve(wire, cuts), HANG_SECONDS))
    finally:
        logger.removeHandler(errors)
    if escaped or errors.messages:
        raise FuzzFailure(f"escaped: {escaped}; logged: {errors.messages}")


# -- seeds -----------------------------------------------------------------------------------
def records(frames: bytes) -> bytes:
    """Frames as the input layout spells them (stream ids up to 254, or the last)."""
    out = []
    pos = 0
    while pos + 9 <= len(frames):
        length = int.from_bytes(frames[pos : pos + 3], "big")
        stream_id = int.from_bytes(frames[pos + 5 : pos + 9], "big")
        stream = LAST if stream_id == h2limits.LAST_STREAM_ID else stream_id
        assert length < 256 and stream < 256, "a seed frame the layout cannot spell"
        out.append(
            bytes([frames[pos + 3], frames[pos + 4], stream, length]) + frames[pos + 9 : pos + 9 + length]
        )
        pos += 9 + length
    return b"".join(out)


def seeds() -> Iterator[bytes]:
    """The seed inputs, in the input layout."""

    def client() -> h2.connection.H2Connection:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        conn.initiate_connection()
        conn.clear_outbound_data_buffer()  # (the target sends the preface)
        return conn

    def request(conn: h2.connection.H2Connection, path: bytes, stream_id: int = 0, end: bool = True) -> int:
        stream_id = stream_id or conn.get_next_available_stream_id()
        fields = [(b":method", b"GET" if end else b"POST"), (b":path", path), (b":scheme", b"http")]
        conn.send_headers(stream_id, [*fields, (b":authority", b"x")], end_stream=end)
        return stream_id

    c = client()
    request(c, b"/")
    yield b"\x00" + records(c.data_to_send())
    c = client()  # two uploads; one ends, one is reset; read in three pieces
    one = request(c, b"/echo", end=False)
    two = request(c, b"/count", end=False)
    c.send_data(one, b"hello", end_stream=True)
    c.send_data(two, b"x" * 100)
    c.reset_stream(two)
    yield b"\x03\x00\x20\x00\x40\x00\x60" + records(c.data_to_send())
    c = client()  # past the small budget; the answer to the GOAWAY's PING; one more
    for _ in range(SMALL_BUDGET + 2):
        request(c, b"/")
    before = records(c.data_to_send())
    request(c, b"/")
    ping_ack = bytes([PING, 0x1, 0, 8]) + h2limits.GOAWAY_PING_DATA
    yield b"\x08" + before + ping_ack + records(c.data_to_send())
    c = client()
    request(c, b"/", stream_id=h2limits.LAST_STREAM_ID)
    yield b"\x00" + records(c.data_to_send())
    c = client()  # a download, more window, then the client's GOAWAY
    request(c, b"/stream?n=2")
    c.increment_flow_control_window(1000)
    c.close_connection()
    yield b"\x00" + records(c.data_to_send())


DICTIONARY = [
    h2limits.GOAWAY_PING_DATA,
    bytes([PING, 0x1, 0, 8]),
    bytes([HEADERS, 0x5]),  # END_STREAM | END_HEADERS
    bytes([HEADERS, 0x4]),
    bytes([DATA, 0x1]),
    bytes([CONTINUATION, 0x4]),
    bytes([RST_STREAM, 0, 1, 4]) + b"\x00\x00\x00\x08",
    bytes([WINDOW_UPDATE, 0, 0, 4]) + b"\x00\x01\x00\x00",
    bytes([SETTINGS, 0, 0, 6]) + b"\x00\x04\x00\x00\x00\x00",
    bytes([GOAWAY, 0, 0, 8]) + b"\x00\x00\x00\x00\x00\x00\x00\x00",
]


def write_seeds() -> tuple[Path, Path]:
    """A temporary directory with the seed corpus, and the dictionary file."""
    root = Path(tempfile.mkdtemp(prefix="blazeasgi-fuzz-h2-"))
    corpus = root / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)
    dictionary = root / "h2.dict"
    escaped = ("".join(f"\\x{b:02x}" for b in token) for token in DICTIONARY)
    dictionary.write_text("".join(f'"{token}"\n' for token in escaped))
    return corpus, dictionary


def replay(paths: list[str]) -> int:
    """Each input once; the failures are listed, and counted in the exit status."""
    files = sorted(f for p in map(Path, paths) for f in (p.iterdir() if p.is_dir() else [p]) if f.is_file())
    failed = 0
    for path in files:
        try:
            check(path.read_bytes())
        except Exception as exc:  # every failure is reported
            failed += 1
            print(f"FAIL {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"{len(files)} inputs, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def one_input(data: bytes) -> None:
    check(data)


def main() -> int:
    args = sys.argv[1:]
    if atheris is None or "--replay" in args:
        paths = [a for a in args if not a.startswith("-")] or [str(write_seeds()[0])]
        return replay(paths)
    argv = [sys.argv[0], *args]
    if not any(not a.startswith("-") for a in args):
        corpus, dictionary = write_seeds()
        argv += [f"-dict={dictionary}", str(corpus)]
    if not any(a.startswith("-timeout=") for a in args):
        argv.append(f"-timeout={HANG_SECONDS}")
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
