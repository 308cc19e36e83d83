"""Run handler coroutines without a Task per request, falling back to a real Task.

A Task per request costs a Task object plus one trip round the event loop before
the handler's first line runs (3.11 has no eager tasks). Most handlers never
suspend, so each connection steps the handler coroutine directly, inside a fresh
``contextvars.Context`` and with the connection's *host task* entered as the
current task, so ``asyncio.current_task()`` (which anyio needs) is a real Task.
If the coroutine suspends, it is handed to that same host task, which keeps
driving it in the same Context; cancel scopes entered before the suspension
therefore belong to the task that later runs them, as asyncio promises.

The host task is created on a connection's first coroutine handler and parks on a
future between requests. One connection runs one handler at a time (pipelined
requests are answered in order), so one host task per connection suffices.

Fairness: a handler stepped eagerly from ``data_received`` runs before callbacks
already waiting in the loop's ready queue, so it can take a free slot of an
asyncio.Queue (asyncpg's pool) or similar that a woken, earlier waiter was about
to take; that waiter then queues again at the back. Under a saturated database
pool this starved some requests for seconds (TechEmpower /db at 256
connections: p99 454 ms against Granian's 73 ms). So while any handler of the
server is suspended, new handlers start from the ready queue instead
(``loop.call_soon``, about 1 us): behind every wake-up already scheduled, as a
Task would. Servers whose handlers never suspend keep the eager path.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import Any

logger = logging.getLogger("blazeasgi.error")

# The direct path lends a connection's host task to a coroutine stepped outside
# it, through three asyncio internals: _enter_task/_leave_task (what Task.__step
# calls around each step) and _current_tasks, the per-loop dict current_task()
# reads. They have had this shape from 3.7 to 3.13; a version that keeps the
# current task elsewhere (C thread state) would break anyio's current_task()
# without an error. So the shape is checked at import (_internals_misfit, below)
# and the engine falls back to a Task per request (TaskPerRequest) when it does
# not match, or when BLAZEASGI_TASKS=task asks for it.
try:
    from asyncio.tasks import (  # type: ignore[attr-defined]
        _current_tasks as _current_tasks_any,
    )
    from asyncio.tasks import _enter_task, _leave_task
except ImportError:  # pragma: no cover - a CPython without them: the fallback
    _current_tasks_any = None

    def _enter_task(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        raise RuntimeError("asyncio has no _enter_task")

    def _leave_task(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        raise RuntimeError("asyncio has no _leave_task")


#: The dict asyncio.current_task() reads; read directly it saves a Python call.
_current_tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] = (
    _current_tasks_any if isinstance(_current_tasks_any, dict) else {}
)

#: Called once with (result, None) or (None, exception) when a coroutine ends.
DoneCallback = Callable[[Any, BaseException | None], None]


class Suspended:
    """How many handlers of one server are parked in host tasks right now."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class _Resume:
    """Awaited by the host task: keeps driving ``coro`` in ``ctx``."""

    __slots__ = ("coro", "counted", "ctx", "first", "on_done", "suspended")

    def __init__(
        self,
        coro: Coroutine[Any, Any, Any],
        ctx: contextvars.Context,
        first: Any,
        on_done: DoneCallback,
        suspended: Suspended,
    ) -> None:
        self.coro = coro
        self.ctx = ctx
        self.first = first  # what the coroutine yielded when it first suspended
        self.on_done = on_done
        self.suspended = suspended
        # Counted from its first suspension to its end. A handler queued before it
        # ran at all (a new connection's first, see TaskHost._start) holds nothing
        # a new request could take from it: counting it sent every request of the
        # server through call_soon while clients kept connecting (raw ASGI at
        # 10,000 connections: 20-25k req/s instead of 27-37k).
        self.counted = first is not _FRESH
        if self.counted:
            suspended.count += 1

    def finish(self, value: Any, exc: BaseException | None) -> None:
        if self.counted:
            self.suspended.count -= 1
        self.on_done(value, exc)

    def __await__(self) -> Generator[Any, None, None]:
        coro, run = self.coro, self.ctx.run
        to_yield = self.first
        suspended = to_yield is not _FRESH  # else: not started yet, start it now
        if suspended and not self.counted:  # a fresh start suspended in _Cancelled
            self.counted = True
            self.suspended.count += 1
        while True:
            thrown: BaseException | None = None
            if suspended:
                try:
                    yield to_yield
                except GeneratorExit:  # the host task is being destroyed
                    if self.counted:
                        self.suspended.count -= 1
                    coro.close()
                    raise
                except BaseException as exc:  # the Task threw in: a cancellation
                    thrown = exc
            suspended = True
            try:
                if thrown is None:
                    to_yield = run(coro.send, None)
                else:
                    to_yield = run(coro.throw, thrown)
            except StopIteration as stop:
                self.finish(stop.value, None)
                return
            except BaseException as exc:
                self.finish(None, exc)
                return
            if not self.counted:  # a fresh start's first suspension
                self.counted = True
                self.suspended.count += 1


#: ``_Resume.first`` for a coroutine that has not run at all yet.
_FRESH: Any = object()


class TaskHost:
    """One per connection: runs its handler coroutines, eagerly when possible."""

    __slots__ = ("_busy", "_closed", "_jobs", "_loop", "_started", "_suspended", "_task", "_wake")

    def __init__(self, loop: asyncio.AbstractEventLoop, suspended: Suspended | None = None) -> None:
        self._loop = loop
        #: Shared by every connection of a server (ServerState.suspended).
        self._suspended = suspended if suspended is not None else Suspended()
        self._wake: asyncio.Future[None] | None = None
        self._jobs: list[_Resume] = []
        self._busy = False
        self._closed = False
        self._started = False
        self._task = loop.create_task(self._main())

    def run(self, coro: Coroutine[Any, Any, Any], on_done: DoneCallback) -> None:
        """Start ``coro``; ``on_done`` fires now if it ends without suspending."""
        if self._suspended.count:  # others may be about to resume: no barging
            self._loop.call_soon(self._start_in_turn, coro, on_done)
            return
        self._start(coro, on_done)

    def _start_in_turn(self, coro: Coroutine[Any, Any, Any], on_done: DoneCallback) -> None:
        if self._closed:
            # The connection went away while this start waited its turn. The
            # handler still runs (it may have side effects; it sees a disconnect),
            # in a Task of its own: the host task may already be ending.
            job = _Resume(coro, contextvars.copy_context(), _FRESH, on_done, self._suspended)
            self._loop.create_task(_drive(job))
            return
        self._start(coro, on_done)

    def _start(self, coro: Coroutine[Any, Any, Any], on_done: DoneCallback) -> None:
        ctx = contextvars.copy_context()
        if self._busy or not self._started:
            # Called from inside the host task (the previous handler just ended
            # there), or before the task's first step (a task cancelled before it
            # starts never runs its body, so it cannot be lent out yet): queue it;
            # the task starts it as soon as it runs.
            self._jobs.append(_Resume(coro, ctx, _FRESH, on_done, self._suspended))
            wake = self._wake
            if wake is not None and not wake.done():
                wake.set_result(None)
            return
        loop, task = self._loop, self._task
        # Protocol callbacks run outside any task; a caller inside one (a test
        # driving the protocol by hand) gets its task back afterwards.
        outer = _current_tasks.get(loop)  # what current_task() reads, minus a call
        if outer is not None:
            _leave_task(loop, outer)
        _enter_task(loop, task)
        try:
            first = ctx.run(coro.send, None)
        except BaseException as exc:
            _leave_task(loop, task)
            if outer is not None:
                _enter_task(loop, outer)
            if isinstance(exc, StopIteration):
                on_done(exc.value, None)
            else:
                on_done(None, exc)
            return
        _leave_task(loop, task)
        if outer is not None:
            _enter_task(loop, outer)
        self._jobs.append(_Resume(coro, ctx, first, on_done, self._suspended))
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def close(self) -> None:
        """The connection is gone: end the host task once its current job ends."""
        self._closed = True
        if not self._busy and not self._jobs:
            self._task.cancel()

    async def _main(self) -> None:
        self._started = True
        jobs = self._jobs
        while True:
            if not jobs:
                if self._closed:
                    return
                self._wake = self._loop.create_future()
                try:
                    await self._wake
                except asyncio.CancelledError:
                    if not jobs:
                        return  # closed while idle
                    # Someone cancelled the host task while a handler that had
                    # just suspended was being handed over: deliver it there.
                    job = jobs.pop(0)
                    self._busy = True
                    try:
                        await _Cancelled(job)
                    finally:
                        self._busy = False
                continue
            job = jobs.pop(0)
            self._busy = True
            try:
                await job
            finally:
                self._busy = False


async def _drive(job: _Resume) -> None:
    await job


class _Cancelled:
    """Like ``_Resume`` but first throws CancelledError into the coroutine."""

    __slots__ = ("job",)

    def __init__(self, job: _Resume) -> None:
        self.job = job

    def __await__(self) -> Generator[Any, None, None]:
        job = self.job
        try:
            to_yield = job.ctx.run(job.coro.throw, asyncio.CancelledError())
        except StopIteration as stop:
            job.finish(stop.value, None)
            return
        except BaseException as exc:
            job.finish(None, exc)
            return
        job.first = to_yield
        yield from job.__await__()


# -- the fallback: a Task per request ------------------------------------------------------
#: Python 3.12+ can start a Task eagerly: its first step runs inside the Task
#: before create returns, so a handler that never suspends answers at once.
_EAGER = sys.version_info >= (3, 12)


class TaskPerRequest:
    """Runs each handler coroutine in a Task of its own (the supported mechanism).

    Used where asyncio's internals do not have the shape TaskHost relies on. On
    3.12+ the Task starts eagerly (no loop pass before the first step), except
    while another handler is suspended: then it starts from the ready queue, so
    it does not take what a woken handler was due (the fairness rule above).
    """

    __slots__ = ("_loop", "_suspended")

    def __init__(self, loop: asyncio.AbstractEventLoop, suspended: Suspended | None = None) -> None:
        self._loop = loop
        self._suspended = suspended if suspended is not None else Suspended()

    def run(self, coro: Coroutine[Any, Any, Any], on_done: DoneCallback) -> None:
        """Start ``coro``; ``on_done`` fires now if it ends without suspending."""
        loop, suspended = self._loop, self._suspended
        if _EAGER and not suspended.count and loop.is_running():
            task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
            if task.done():
                _deliver(task, on_done)
                return
        else:
            task = loop.create_task(coro)
        suspended.count += 1

        def done(task: asyncio.Task[Any]) -> None:
            suspended.count -= 1
            _deliver(task, on_done)

        task.add_done_callback(done)

    def close(self) -> None:
        """Nothing to end: each Task ends with its handler."""


def _deliver(task: asyncio.Task[Any], on_done: DoneCallback) -> None:
    if task.cancelled():
        on_done(None, asyncio.CancelledError())
        return
    exc = task.exception()
    if exc is not None:
        on_done(None, exc)
    else:
        on_done(task.result(), None)


async def _current() -> asyncio.Task[Any] | None:
    return asyncio.current_task()


def _internals_misfit() -> str | None:
    """Why the direct path cannot run on this Python, or None when it can.

    Checks, on a real running loop from a plain callback (as a protocol callback
    runs), that lending a Task with _enter_task makes it what current_task() and
    _current_tasks report, inside a coroutine step too, and that _leave_task
    undoes it.
    """
    if _current_tasks_any is None or not isinstance(_current_tasks_any, dict):
        return "asyncio.tasks has no _current_tasks dict"
    loop = asyncio.new_event_loop()
    outcome: list[str | None] = []

    def check() -> None:
        lent = loop.create_task(asyncio.sleep(0))
        try:
            if asyncio.current_task(loop) is not None or _current_tasks.get(loop) is not None:
                outcome.append("a task is current outside any task")
                return
            _enter_task(loop, lent)
            try:
                seen = (asyncio.current_task(loop), _current_tasks.get(loop))
                coro = _current()
                try:
                    coro.send(None)
                    inner = None
                except StopIteration as stop:
                    inner = stop.value
            finally:
                _leave_task(loop, lent)
            if seen != (lent, lent) or inner is not lent:
                outcome.append("_enter_task does not make the task current")
            elif asyncio.current_task(loop) is not None or _current_tasks.get(loop) is not None:
                outcome.append("_leave_task does not clear the current task")
            else:
                outcome.append(None)
        except Exception as exc:  # pragma: no cover - a shape we do not know
            outcome.append(f"{type(exc).__name__}: {exc}")
        finally:
            loop.stop()

    try:
        loop.call_soon(check)
        loop.run_forever()
        loop.run_until_complete(asyncio.sleep(0))  # let the lent task finish
    finally:
        loop.close()
    return outcome[0] if outcome else "the check did not run"


def _choose() -> tuple[type[TaskHost] | type[TaskPerRequest], str]:
    if os.environ.get("BLAZEASGI_TASKS", "").lower() == "task":
        return TaskPerRequest, "a Task per request (BLAZEASGI_TASKS=task)"
    misfit = _internals_misfit()
    if misfit is not None:  # pragma: no cover - no tested Python gets here
        return TaskPerRequest, f"a Task per request (asyncio internals differ: {misfit})"
    return TaskHost, "handlers stepped directly in a per-connection host task"


#: What runs handler coroutines on this Python: TaskHost, or the fallback.
HandlerHost, HANDLER_PATH = _choose()
