"""HTTP/2 codec cost per request, no sockets: h2 (python-hyper) against zttp.

    python benchmarks/h2codec.py [--requests N] [--codec h2|zttp|both] [--post]

Each codec plays the server of one connection: it parses the client's bytes
(preface, SETTINGS, then per request a HEADERS frame and, with ``--post``, a 1 KiB
DATA frame) and answers every request with a HEADERS + DATA "Hello world"
response, five header fields, as the engine would. The client bytes are made
beforehand by h2 as a client, ten requests a batch (h2load's ``-m 10``), and fed
a batch at a time; a fresh server connection starts every 1,000 requests. Only
the server side is timed, in CPU time (``time.process_time``): the machine is
shared, so wall-clock load tests are noise. Frames per second counts the frames
read and written.

For instruction counts run it under callgrind with two request counts and divide
the difference (see the CHANGELOG entry for the figures)::

    python benchmarks/h2codec.py --requests N --client-bytes /tmp/get-N.pickle --repeat 1
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python3.11 \\
        benchmarks/h2codec.py --codec h2 --requests N --client-bytes /tmp/get-N.pickle --repeat 1

(``python`` may be a pyenv shim: give valgrind the interpreter itself.)
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events

PER_CONNECTION = 1000
BATCH = 10
REQUEST_HEADERS = [
    (b":method", b"GET"),
    (b":path", b"/"),
    (b":scheme", b"http"),
    (b":authority", b"localhost:8000"),
    (b"user-agent", b"h2load nghttp2/1.64"),
    (b"accept", b"*/*"),
]
RESPONSE_HEADERS = [
    (b"content-type", b"text/plain"),
    (b"content-length", b"11"),
    (b"date", b"Thu, 03 Dec 2026 11:00:00 GMT"),
    (b"server", b"blazeasgi"),
    (b"x-content-type-options", b"nosniff"),
]
BODY = b"Hello world"
POST_BODY = b"x" * 1024


def client_batches(requests: int, post: bool) -> list[bytes]:
    """The bytes of one connection: preface + SETTINGS, then ``requests`` requests."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    # The server's WINDOW_UPDATEs are not fed back either: give the client the credit.
    client.outbound_flow_control_window = 1 << 30
    batches = [client.data_to_send()]
    headers = [(b":method", b"POST"), *REQUEST_HEADERS[1:]] if post else REQUEST_HEADERS
    for start in range(0, requests, BATCH):
        for _ in range(min(BATCH, requests - start)):
            stream_id = client.get_next_available_stream_id()
            client.send_headers(stream_id, headers, end_stream=not post)
            if post:
                client.send_data(stream_id, POST_BODY, end_stream=True)
            # The server's answers are not fed back: drop the stream so the
            # client's open-stream count stays small.
            del client.streams[stream_id]
        batches.append(client.data_to_send())
    return batches


def count_frames(data: bytes) -> int:
    n, pos = 0, 0
    if data.startswith(b"PRI * HTTP/2.0"):
        pos = 24
    while pos + 9 <= len(data):
        pos += 9 + int.from_bytes(data[pos : pos + 3], "big")
        n += 1
    return n


def serve_h2(batches: list[bytes]) -> tuple[int, bytes]:
    config = h2.config.H2Configuration(client_side=False, header_encoding=None, validate_inbound_headers=True)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    out = [conn.data_to_send()]
    served = 0
    RequestReceived, DataReceived = h2.events.RequestReceived, h2.events.DataReceived
    for batch in batches:
        for event in conn.receive_data(batch):
            if type(event) is RequestReceived:
                if event.stream_ended is None:
                    continue
                stream_id = event.stream_id
            elif type(event) is DataReceived:
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_ended is None:
                    continue
                stream_id = event.stream_id
            else:
                continue
            conn.send_headers(stream_id, [(b":status", b"200"), *RESPONSE_HEADERS])
            conn.send_data(stream_id, BODY, end_stream=True)
            served += 1
        out.append(conn.data_to_send())
    return served, b"".join(out)


def serve_zttp(batches: list[bytes]) -> tuple[int, bytes]:
    import zttp

    conn = zttp.Connection(zttp.SERVER, zttp.HTTP2)
    out = []
    served = 0
    Request, EndOfMessage, NEED_DATA = zttp.Request, zttp.EndOfMessage, zttp.NEED_DATA
    for batch in batches:
        conn.receive_data(batch)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            kind = type(event)
            if kind is Request:
                if not event.end_stream:  # type: ignore[union-attr]
                    continue
            elif kind is not EndOfMessage:
                continue
            stream = conn.stream(event.stream_id)  # type: ignore[union-attr]
            stream.send_response(200, RESPONSE_HEADERS)
            stream.send_data(BODY)
            stream.end_message()
            served += 1
        out.append(conn.data_to_send())
    return served, b"".join(out)


def connections_for(requests: int, post: bool, cache: str | None) -> list[list[bytes]]:
    """The client bytes, from ``cache`` when given and present (so that a callgrind
    run counts only the server side), else made now (and saved to ``cache``)."""
    if cache is not None and os.path.exists(cache):
        with open(cache, "rb") as file:
            connections: list[list[bytes]] = pickle.load(file)
        if sum(len(c) - 1 for c in connections) * BATCH == requests:
            return connections
    connections = [
        client_batches(min(PER_CONNECTION, requests - s), post) for s in range(0, requests, PER_CONNECTION)
    ]
    if cache is not None:
        with open(cache, "wb") as file:
            pickle.dump(connections, file)
    return connections


def measure(
    name: str,
    serve: Callable[[list[bytes]], tuple[int, bytes]],
    requests: int,
    post: bool,
    cache: str | None = None,
) -> None:
    connections = connections_for(requests, post, cache)
    frames_in = sum(count_frames(b) for c in connections for b in c)
    frames_out = 0
    served = 0
    start = time.process_time()
    outputs = [serve(batches) for batches in connections]
    cpu = time.process_time() - start
    for n, out in outputs:
        served += n
        frames_out += count_frames(out)
    if served != requests:
        raise SystemExit(f"{name}: served {served} of {requests} requests")
    frames = frames_in + frames_out
    print(
        f"{name:5} {'POST 1 KiB' if post else 'GET':10} {requests} requests: "
        f"{cpu / requests * 1e6:6.2f} us CPU/request, {frames / cpu / 1e3:7.1f}k frames/s "
        f"({frames / requests:.1f} frames/request)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--codec", choices=["h2", "zttp", "both"], default="both")
    parser.add_argument("--post", action="store_true", help="POST with a 1 KiB body instead of GET")
    parser.add_argument("--repeat", type=int, default=3, help="runs per codec (each printed)")
    parser.add_argument(
        "--client-bytes",
        metavar="PATH",
        help="load (or make and save) the client's bytes: for callgrind",
    )
    args = parser.parse_args()
    codecs = {"h2": serve_h2, "zttp": serve_zttp}
    names = list(codecs) if args.codec == "both" else [args.codec]
    for _ in range(args.repeat):
        for name in names:
            measure(name, codecs[name], args.requests, args.post, args.client_bytes)


if __name__ == "__main__":
    main()
