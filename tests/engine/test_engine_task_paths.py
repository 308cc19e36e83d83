"""Which mechanism runs handler coroutines, and the fallback when asyncio changes.

The direct path (tasks.RunnerPool) relies on one asyncio internal, the dict
current_task() reads; it is checked at import (taskpaths.py) and a Python where it
behaves differently gets a Task per request instead (taskpaths.TaskPerRequest).
These tests check the check, and run the ASGI, anyio and fairness tests through the
fallback (forced with BLAZEASGI_TASKS=task).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from blazeasgi.engine import taskpaths, tasks

from ..conftest import MockConnection, started_pool

ROOT = Path(__file__).resolve().parents[2]


def test_every_supported_python_gets_the_direct_path() -> None:
    if os.environ.get("BLAZEASGI_TASKS") == "task":
        assert taskpaths.HandlerRunners is taskpaths.TaskPerRequest
    else:
        assert taskpaths._internals_misfit() is None
        assert taskpaths.HandlerRunners is tasks.RunnerPool


def test_a_current_task_kept_elsewhere_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if a new Python kept the running task in C state: storing a task in the
    # dict no longer shows in what current_task() reports.
    monkeypatch.setattr(taskpaths, "_current_tasks", {})
    assert taskpaths._internals_misfit() == "current_task() does not read _current_tasks"


def test_internals_that_raise_are_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(loop: Any = None) -> None:
        raise RuntimeError("not the running loop")

    monkeypatch.setattr(asyncio, "current_task", refuse)
    assert taskpaths._internals_misfit() == "RuntimeError: not the running loop"


async def suspending_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/suspend":
        await asyncio.sleep(0)
    task = asyncio.current_task()
    assert task is not None
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": type(task).__name__.encode()})


@pytest.mark.parametrize("path", ["/", "/suspend"])
def test_task_per_request_answers_in_a_real_task(run: Any, path: str) -> None:
    async def go() -> bytes:
        conn = MockConnection(suspending_app)
        conn.state.runners.close()
        conn.state.runners = taskpaths.TaskPerRequest(conn.state.loop, conn.state.suspended)
        conn.feed(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode() * 2)
        return await conn.settle()

    out = run(go())
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.endswith(b"\r\n\r\nTask")


def test_asgi_anyio_and_fairness_tests_pass_through_the_fallback() -> None:
    env = dict(os.environ, BLAZEASGI_TASKS="task")
    files = [
        "tests/engine/test_engine_task_paths.py::test_every_supported_python_gets_the_direct_path",
        "tests/engine/test_engine_task_paths.py::test_task_per_request_answers_in_a_real_task",
        "tests/engine/test_engine_fairness.py",
        "tests/asgi/test_asgi_frameworks.py",
        "tests/asgi/test_asgi_messages.py",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", "-x", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


# -- the runner pool ------------------------------------------------------------------------


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert asyncio.current_task() is not None  # anyio needs a real Task
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


@pytest.mark.skipif(
    taskpaths.HandlerRunners is taskpaths.TaskPerRequest,
    reason="the fallback runs a Task per request by design",
)
def test_a_connection_per_request_creates_no_task(run: Any) -> None:
    """Short connections (nginx's default upstream): handlers that never suspend
    borrow an idle runner; no Task, future or loop pass per connection."""

    async def go() -> tuple[int, int, list[bytes]]:
        first = MockConnection(hello_app)
        state = first.state
        first.feed(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # the server's first handler makes a runner
        await first.settle()
        before = len(asyncio.all_tasks())
        outs = []
        for _ in range(50):
            conn = MockConnection(hello_app, state=state)
            conn.feed(b"GET / HTTP/1.0\r\n\r\n")
            outs.append(conn.transport.take())  # written inside data_received
        return before, len(asyncio.all_tasks()), outs

    before, after, outs = run(go())
    assert after == before
    assert all(out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"hi") for out in outs)


def test_runners_grow_with_suspended_handlers_and_the_tick_trims_them(run: Any) -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        runners = await started_pool()
        gate = loop.create_future()
        done: list[Any] = []

        async def wait() -> str:
            await gate
            return "ok"

        for _ in range(40):
            runners.run(wait(), lambda value, exc: done.append(value))
            for _ in range(2):
                await asyncio.sleep(0)
        assert runners.suspended.count == 40
        gate.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)
        assert done == ["ok"] * 40
        assert runners.suspended.count == 0
        idle = len(runners.idle)
        assert idle >= 40
        runners.trim()
        assert len(runners.idle) < idle
        for _ in range(10):
            runners.trim()
        assert len(runners.idle) == tasks._KEEP_IDLE
        # the steppers the 40 suspended handlers ran in are kept for reuse, as
        # many as the idle runners once trimmed
        assert len(runners.spares) == tasks._KEEP_IDLE
        await asyncio.sleep(0)
        live = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert len(live) == tasks._KEEP_IDLE + (runners.spare is not None)
        runners.close()
        await asyncio.sleep(0)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    run(go())


def test_a_handler_that_cancels_its_own_task_gets_the_cancellation(run: Any) -> None:
    async def go() -> list[Any]:
        runners = await started_pool()
        seen: list[Any] = []

        async def handler() -> str:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                seen.append("cancelled")
                task.uncancel()
            await asyncio.sleep(0)
            return "after"

        runners.run(handler(), lambda value, exc: seen.append(value if exc is None else exc))
        for _ in range(5):
            await asyncio.sleep(0)
        # the runner survived and serves the next handler at once
        runners.run(hello(), lambda value, exc: seen.append(value))
        runners.close()
        return seen

    async def hello() -> str:
        return "next"

    assert run(go()) == ["cancelled", "after", "next"]


def test_an_idle_runner_cancelled_from_outside_leaves_the_pool(run: Any) -> None:
    async def go() -> list[Any]:
        runners = await started_pool()
        lent: list[Any] = []

        async def handler() -> None:
            lent.append(asyncio.current_task())

        runners.run(handler(), lambda value, exc: None)
        lent[0].cancel()  # as asyncio.run cancelling every task at exit
        for _ in range(3):
            await asyncio.sleep(0)
        assert lent[0].done()
        assert all(not runner.task.done() for runner in runners.idle)
        seen: list[Any] = []

        async def later() -> str:
            await asyncio.sleep(0)
            return "served"

        runners.run(later(), lambda value, exc: seen.append(value if exc is None else exc))
        for _ in range(3):
            await asyncio.sleep(0)
        runners.close()
        return seen

    assert run(go()) == ["served"]


def test_a_handler_that_starts_another_from_its_step_gets_both_answers(run: Any) -> None:
    """A handler can start another handler of its pool before it ends (a test or an
    app driving a protocol by hand): the inner one runs in a stepper of its own."""

    async def go() -> list[Any]:
        runners = await started_pool()
        seen: list[Any] = []

        async def inner() -> str:
            return "inner"

        async def outer() -> str:
            runners.run(inner(), lambda value, exc: seen.append(value if exc is None else exc))
            return "outer"

        runners.run(outer(), lambda value, exc: seen.append(value if exc is None else exc))
        runners.run(outer(), lambda value, exc: seen.append(value if exc is None else exc))
        runners.close()
        return seen

    assert run(go()) == ["inner", "outer", "inner", "outer"]


def test_each_handler_gets_its_own_outcome(run: Any) -> None:
    """Handlers that return, raise, return None, suspend and raise, one after another
    in the same pool: nothing of one outcome carries over into the next."""

    async def go() -> list[Any]:
        runners = await started_pool()
        seen: list[Any] = []

        def record(value: Any, exc: BaseException | None) -> None:
            seen.append(("raised", type(exc).__name__, str(exc)) if exc is not None else value)

        async def returns(value: Any) -> Any:
            return value

        async def raises(message: str) -> None:
            raise LookupError(message)

        async def suspends_then(value: Any, fail: bool) -> Any:
            await asyncio.sleep(0)
            if fail:
                raise ValueError(value)
            return value

        runners.run(returns("a"), record)
        runners.run(raises("b"), record)
        runners.run(returns(None), record)
        runners.run(suspends_then("c", False), record)
        runners.run(suspends_then("d", True), record)
        for _ in range(5):
            await asyncio.sleep(0)
        runners.run(returns("e"), record)
        runners.close()
        return seen

    assert run(go()) == [
        "a",
        ("raised", "LookupError", "b"),
        None,
        "c",
        ("raised", "ValueError", "d"),
        "e",
    ]
