"""The stream budget: a connection ends after MAX_STREAMS_PER_CONNECTION streams
with the two-step GOAWAY of RFC 9113 §6.8 (blazeasgi/engine/h2limits.py).

The first GOAWAY (NO_ERROR, last stream id 2^31-1) and the PING after it refuse
nothing; the second, sent when the client answers the PING, names the last stream
that arrived. Streams a client opened before it read the first GOAWAY are served;
only those it opens after it answered the PING are refused. A one-step GOAWAY at
the budget refuses the streams on their way, which load generators count as errors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable

import h2.events
import pytest

from benchmarks.h2load import parse_h2load_output
from blazeasgi.engine import h2limits, http2

from ..apps import h2_apps
from ..conftest import RunningServer
from ..h2client import H2Client, responsive

Serve = Callable[..., RunningServer]
H2LOAD = shutil.which("h2load")
NO_ERROR, REFUSED_STREAM = 0x0, 0x7

pytestmark = [
    pytest.mark.skipif(not http2.AVAILABLE, reason="zttp (the HTTP/2 codec) is not installed"),
    pytest.mark.usefixtures("collect_garbage"),
]


def goaways(client: H2Client) -> list[tuple[int, int]]:
    """(error code, last stream id) of each GOAWAY the client read, in order."""
    return [
        (int(e.error_code or 0), int(e.last_stream_id or 0))
        for e in client.events
        if isinstance(e, h2.events.ConnectionTerminated)
    ]


def test_streams_in_flight_at_the_budget_are_served(serve: Serve) -> None:
    """Batches of 100 streams, each sent whole before the client reads: the batch
    that crosses the budget has streams past it on their way when the server's
    first GOAWAY goes, and all of them get their full answer. Streams the client
    opens after it answered the PING that follows that GOAWAY are past the second
    GOAWAY's last stream id: refused (REFUSED_STREAM, before any header), never
    cut off mid-body. A stream that waits for the client to leave keeps the
    connection open until they arrive; the client then resets it, and the
    connection closes.

    With the one-step GOAWAY the streams past the budget in that batch were refused."""
    server = serve(h2_apps.asgi_app)
    client = H2Client(server.connect(timeout=30))
    budget = h2limits.MAX_STREAMS_PER_CONNECTION
    assert budget % 100, "the budget must fall inside a batch"
    held = client.request("GET", "/wait-disconnect")
    sent_before_goaway: list[int] = []
    while not goaways(client):
        batch = []
        for _ in range(100):
            client.conn.send_headers(
                client.conn.get_next_available_stream_id(),
                [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"x")],
                end_stream=True,
            )
            batch.append(client.conn.highest_outbound_stream_id)
        client.flush()  # the batch in one write, before reading any answer
        sent_before_goaway += batch
        for stream_id in batch:
            client.response(stream_id)
        assert len(sent_before_goaway) < 2 * budget, "no GOAWAY"
    # The client read the first GOAWAY and the PING with it, and answered the PING
    # (H2Client.receive sends what h2 owes): ignoring the GOAWAY, it opens more.
    assert goaways(client)[0] == (NO_ERROR, h2limits.LAST_STREAM_ID)
    late = [client.request("GET", "/") for _ in range(5)]
    client.until(lambda: all(client.replies[i].reset is not None for i in late))
    assert not client.closed
    client.reset(held)
    client.until(lambda: client.closed)

    assert len(sent_before_goaway) > budget + 1  # some were past the budget
    assert goaways(client) == [
        (NO_ERROR, h2limits.LAST_STREAM_ID),
        (NO_ERROR, sent_before_goaway[-1]),
    ]
    for stream_id in sent_before_goaway:
        reply = client.replies[stream_id]
        assert (reply.status, reply.ended, reply.reset) == (200, True, None), stream_id
    assert all(json.loads(client.replies[i].body)["path"] == "/" for i in sent_before_goaway)
    for stream_id in late:
        reply = client.replies[stream_id]
        assert (reply.status, bytes(reply.body), reply.reset) == (0, b"", REFUSED_STREAM), stream_id
    assert responsive(server)


def test_client_that_never_answers_the_ping_gets_the_second_goaway(serve: Serve) -> None:
    """A client that does not answer the PING after the first GOAWAY still gets the
    second, GOAWAY_ACK_TIMEOUT later (the server's once-a-second sweep), and the
    connection closes: it does not wait for the keep-alive timeout (60 s here)."""
    server = serve(h2_apps.asgi_app, keep_alive_timeout=60)
    client = H2Client(server.connect(timeout=30))
    # h2 answers every PING: hide the server's from it (H2Client feeds h2 one
    # frame at a time).
    feed = client.conn.receive_data

    def receive_data(frame: bytes) -> list[h2.events.Event]:
        return [] if frame == h2limits.GOAWAY_PING else feed(frame)

    client.conn.receive_data = receive_data  # type: ignore[method-assign]
    served = 0
    while not goaways(client):
        ids = [client.request("GET", "/") for _ in range(50)]
        served += sum(client.response(i).status == 200 for i in ids)
    client.until(lambda: client.closed)
    assert served >= h2limits.MAX_STREAMS_PER_CONNECTION
    assert goaways(client) == [(NO_ERROR, h2limits.LAST_STREAM_ID), (NO_ERROR, ids[-1])]


@pytest.mark.skipif(H2LOAD is None, reason="h2load is not installed (apt-get install nghttp2-client)")
def test_h2load_across_the_budget_every_started_request_succeeds(serve: Serve) -> None:
    """h2load -c 4 -m 100 -n 40000: each connection asks for 10,000 streams, past
    the budget, with 100 in flight. Every stream h2load started is answered 2xx,
    more than the budget on each connection (those in flight at the first
    GOAWAY). With the one-step GOAWAY the streams in flight at it were refused:
    h2load counted them as errors.

    h2load (nghttp2 1.52) opens no new connection after a GOAWAY: the requests it
    never started are its *failed* and *errored* too, and they are all it counts
    so. A run within the budget (-n at most 3,840 per connection) has none."""
    server = serve(h2_apps.asgi_app)
    argv = [str(H2LOAD), "-n", "40000", "-c", "4", "-m", "100", server.url("/")]
    done = subprocess.run(argv, capture_output=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    result = parse_h2load_output(done.stdout.decode())
    assert result.started > 4 * h2limits.MAX_STREAMS_PER_CONNECTION
    assert result.done == result.succeeded == result.statuses["2xx"] == result.started
    assert result.errored == result.failed == result.total - result.started
    assert result.timeouts == 0
