"""Handlers started eagerly must not jump ahead of handlers already woken.

A connection pool built on asyncio.Queue (asyncpg's) hands a released slot to
the longest waiter by waking it; the waiter runs on the loop's next pass. A new
handler stepped eagerly before that pass would find the slot free and take it,
sending the woken waiter to the back of the queue again: under a saturated pool
some requests then wait for seconds. While any handler is suspended, new ones
start in turn (tasks.RunnerPool.run), so the woken waiter gets the slot.
"""

from __future__ import annotations

import asyncio
from typing import Any

from blazeasgi.engine.tasks import RunnerPool, Suspended

from ..conftest import started_pool


def test_woken_waiter_gets_the_slot_before_a_newcomer(run: Any) -> None:
    run(_woken_waiter_first())


async def _woken_waiter_first() -> None:
    loop = asyncio.get_running_loop()
    shared = Suspended()
    runners = await started_pool(shared)
    pool: asyncio.Queue[str] = asyncio.Queue()
    pool.put_nowait("slot")
    order: list[str] = []
    release = loop.create_future()
    finished: list[str] = []

    def done(name: str) -> Any:
        return lambda value, exc: finished.append(name if exc is None else f"{name}: {exc!r}")

    async def handler(name: str, hold: asyncio.Future[None] | None = None) -> None:
        slot = await pool.get()
        order.append(name)
        if hold is not None:
            await hold
        pool.put_nowait(slot)
        if name == "first":
            # A request arriving right now (from data_received, before the loop's
            # next pass) must not take the slot the woken "second" is due.
            runners.run(handler("newcomer"), done("newcomer"))

    runners.run(handler("first", release), done("first"))
    runners.run(handler("second"), done("second"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert order == ["first"]  # "second" waits for the slot
    release.set_result(None)
    for _ in range(20):
        await asyncio.sleep(0)
    assert order == ["first", "second", "newcomer"]
    assert sorted(finished) == ["first", "newcomer", "second"]
    assert shared.count == 0
    runners.close()


def test_handlers_that_never_suspend_run_at_once(run: Any) -> None:
    run(_never_suspending())


async def _never_suspending() -> None:
    shared = Suspended()
    runners = await started_pool(shared)
    results: list[int] = []

    async def handler(n: int) -> int:
        return n

    for n in range(3):
        runners.run(handler(n), lambda value, exc: results.append(value))
        assert results[-1] == n  # finished before run() returned: no loop pass
    runners.close()


def test_deferred_start_runs_once_its_turn_comes(run: Any) -> None:
    run(_deferred_start())


async def _deferred_start() -> None:
    loop = asyncio.get_running_loop()
    shared = Suspended()
    runners = await started_pool(shared)
    gate = loop.create_future()
    seen: list[Any] = []

    async def blocker() -> None:
        await gate

    async def handler() -> str:
        await asyncio.sleep(0)
        return "ran"

    runners.run(blocker(), lambda value, exc: None)
    assert shared.count == 1
    runners.run(handler(), lambda value, exc: seen.append(value if exc is None else exc))
    assert seen == []  # waits its turn behind the suspended blocker
    for _ in range(10):
        await asyncio.sleep(0)
    assert seen == ["ran"]
    gate.set_result(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert shared.count == 0
    runners.close()


def test_saturated_pool_serves_every_request_through_a_server(serve: Any, run: Any) -> None:
    """End to end: 40 clients share a one-slot pool; each is served once, none starves."""
    from blazeasgi.native import App, Request, Response

    app = App()
    pool: asyncio.Queue[int] = asyncio.Queue()
    pool.put_nowait(0)
    served: list[int] = []

    @app.get("/work/{n}")
    async def work(request: Request) -> Response:
        slot = await pool.get()
        served.append(int(request.path_params["n"]))
        await asyncio.sleep(0.001)
        pool.put_nowait(slot)
        return Response(b"ok")

    server = serve(app)

    async def client(n: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /work/%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
        data = await reader.readuntil(b"ok")
        writer.close()
        return data

    async def main() -> list[bytes]:
        return await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(40))), 30)

    replies = run(main())
    assert all(r.startswith(b"HTTP/1.1 200") for r in replies)
    assert sorted(served) == list(range(40))


def test_a_queued_first_handler_does_not_count_as_suspended(run: Any) -> None:
    run(_fresh_runner())


async def _fresh_runner() -> None:
    # With no started runner to lend (the server's first handler, or all busy) a
    # handler waits for a new runner's first step. It holds nothing yet: counted
    # as suspended, it would send every other request through the ready queue
    # (while clients kept connecting at 10,000 connections, that cost raw ASGI a
    # third of its throughput).
    loop = asyncio.get_running_loop()
    shared = Suspended()
    runners = RunnerPool(loop, shared)  # its first runner has not started
    seen: list[str] = []
    gate = loop.create_future()

    async def handler(name: str, wait: asyncio.Future[None] | None = None) -> None:
        if wait is not None:
            await wait
        seen.append(name)

    runners.run(handler("fresh", gate), lambda value, exc: seen.append(f"fresh done {exc}"))
    assert shared.count == 0
    await asyncio.sleep(0)  # the runner starts the handler, which suspends on the gate
    await asyncio.sleep(0)
    assert shared.count == 1  # now it is suspended: newcomers wait their turn
    gate.set_result(None)
    for _ in range(5):
        await asyncio.sleep(0)
    assert seen == ["fresh", "fresh done None"]
    assert shared.count == 0
    await asyncio.sleep(0)
    runners.run(handler("eager"), lambda value, exc: None)
    assert seen[-1] == "eager"  # the runner is back in the pool: lent at once
    runners.close()
