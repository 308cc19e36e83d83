"""Run handler coroutines without a Task per request, falling back to a real Task.

A Task per request costs a Task object plus one trip round the event loop before
the handler's first line runs (3.11 has no eager tasks). Most handlers never
suspend, so the engine steps the handler coroutine directly, inside a fresh
``contextvars.Context`` and with an idle *runner* task entered as the current
task, so ``asyncio.current_task()`` (which anyio needs) is a real Task. If the
coroutine suspends, it is handed to that same runner task, which keeps driving
it in the same Context; cancel scopes entered before the suspension therefore
belong to the task that later runs them, as asyncio promises.

Runners are the server's, not the connections': a pool of Tasks parked on a
future while idle. A handler that never suspends only borrows one for its step,
so a connection that carries one request (a new connection per request, as from
a default nginx upstream) costs no Task, future or loop pass. A runner serves
one suspended handler at a time and returns to the pool when it ends; the pool
grows to the number of handlers suspended at once (plus a spare started ahead)
and the server's tick retires what stays idle.

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
from typing import Any, Final

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
# The same, bound once for RunnerPool._start: compiled, a Final name is a C static
# where a module global is a dict look-up at every use (_internals_misfit and its
# tests use the globals, not these).
_CURRENT: Final = _current_tasks
_ENTER: Final = _enter_task
_LEAVE: Final = _leave_task
_COPY_CONTEXT: Final = contextvars.copy_context

#: Called once with (result, None) or (None, exception) when a coroutine ends.
DoneCallback = Callable[[Any, BaseException | None], None]


class Suspended:
    """How many handlers of one server are parked in host tasks right now."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class _Resume:
    """Awaited by a runner task: keeps driving a suspended ``coro`` in ``ctx``."""

    __slots__ = ("coro", "ctx", "first", "on_done", "suspended")

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
        suspended.count += 1  # from its first suspension to its end

    def finish(self, value: Any, exc: BaseException | None) -> None:
        self.suspended.count -= 1
        self.on_done(value, exc)

    def __await__(self) -> Generator[Any, None, None]:
        coro, run = self.coro, self.ctx.run
        to_yield = self.first
        while True:
            thrown: BaseException | None = None
            try:
                yield to_yield
            except GeneratorExit:  # the runner task is being destroyed
                self.suspended.count -= 1
                coro.close()
                raise
            except BaseException as exc:  # the Task threw in: a cancellation
                thrown = exc
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


#: Idle runners the server's tick leaves alone; past it, half the excess a tick.
_KEEP_IDLE = 16


class _Runner:
    """A Task that drives handler coroutines that suspended, one after another."""

    __slots__ = ("_jobs", "_pool", "_wake", "retired", "task")

    def __init__(self, pool: RunnerPool) -> None:
        self._pool = pool
        self._jobs: list[_Resume] = []
        self._wake: asyncio.Future[None] | None = None
        self.retired = False
        self.task = pool.loop.create_task(self._main())

    def hand(self, job: _Resume) -> None:
        """Drive ``job`` from now on (the runner was just lent to it)."""
        self._jobs.append(job)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _main(self) -> None:
        pool, jobs = self._pool, self._jobs
        if pool.spare is self:
            pool.spare = None
        while True:
            while jobs:
                await jobs.pop(0)
            if self.retired:
                return
            pool.idle.append(self)  # lendable until a handler suspends in it
            if pool.waiting:
                pool.start_waiting()  # may lend this runner and hand it a job
                if jobs:
                    continue
            self._wake = pool.loop.create_future()
            try:
                await self._wake
            except asyncio.CancelledError:
                if jobs:
                    # A handler lent this task cancelled it (current_task().cancel())
                    # and then suspended: the cancellation is its.
                    await _Cancelled(jobs.pop(0))
                    continue
                # Retired, or cancelled while idle by someone else (asyncio.run
                # cancelling every task at exit): leave the pool, which makes new
                # runners as it needs them.
                if not self.retired:
                    pool.idle.remove(self)
                return


class RunnerPool:
    """Runs a server's handler coroutines, eagerly when possible (see above)."""

    __slots__ = ("idle", "loop", "spare", "suspended", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop, suspended: Suspended | None = None) -> None:
        self.loop = loop
        #: Shared by every connection of a server (ServerState.suspended).
        self.suspended = suspended if suspended is not None else Suspended()
        #: Started runners parked on their wake future, the last lent first.
        self.idle: list[_Runner] = []
        #: Handlers that found no idle runner, in arrival order: the next runner
        #: to become idle (or to start) starts them.
        self.waiting: list[tuple[Coroutine[Any, Any, Any], DoneCallback]] = []
        #: A runner created but not started yet (a task cannot be lent before
        #: its first step: cancelled then, it would never run its body). The
        #: first is made by the server's first coroutine handler, which waits for
        #: it: a server whose handlers are all plain functions has no runner.
        self.spare: _Runner | None = None

    def run(self, coro: Coroutine[Any, Any, Any], on_done: DoneCallback) -> None:
        """Start ``coro``; ``on_done`` fires now if it ends without suspending."""
        if self.suspended.count:  # others may be about to resume: no barging
            self.loop.call_soon(self._start, coro, on_done)
            return
        self._start(coro, on_done)

    def _start(self, coro: Coroutine[Any, Any, Any], on_done: DoneCallback) -> None:
        idle = self.idle
        if not idle:
            # Nothing started to lend (the server's first handler, or every runner
            # busy): wait for a runner. A handler that has not run holds nothing,
            # so it does not count as suspended (counting it sent every request
            # through call_soon while clients kept connecting at 10,000
            # connections: raw ASGI 20-25k req/s instead of 27-37k).
            self.waiting.append((coro, on_done))
            if self.spare is None:
                self.spare = _Runner(self)
            return
        runner = idle[-1]
        ctx = _COPY_CONTEXT()
        loop, task = self.loop, runner.task
        # Protocol callbacks run outside any task; a caller inside one (a handler
        # ending in a runner starts the connection's next; a test driving the
        # protocol by hand) gets its task back afterwards.
        outer = _CURRENT.get(loop)  # what current_task() reads, minus a call
        if outer is not None:
            _LEAVE(loop, outer)
        _ENTER(loop, task)
        try:
            first = ctx.run(coro.send, None)
        except StopIteration as stop:  # apart: compiled, a typed catch is cheaper
            _LEAVE(loop, task)
            if outer is not None:
                _ENTER(loop, outer)
            on_done(stop.value, None)
            return
        except BaseException as exc:
            _LEAVE(loop, task)
            if outer is not None:
                _ENTER(loop, outer)
            on_done(None, exc)
            return
        _LEAVE(loop, task)
        if outer is not None:
            _ENTER(loop, outer)
        if idle and idle[-1] is runner:
            idle.pop()
        else:  # pragma: no cover - the step itself borrowed runners
            idle.remove(runner)
        runner.hand(_Resume(coro, ctx, first, on_done, self.suspended))
        if not idle and self.spare is None:
            self.spare = _Runner(self)  # started by the time the next handler comes

    def start_waiting(self) -> None:
        """Start the handlers that waited for a runner (called by one that is idle)."""
        waiting, self.waiting = self.waiting, []
        for coro, on_done in waiting:
            self._start(coro, on_done)

    def trim(self) -> None:
        """Retire idle runners past _KEEP_IDLE, half the excess at a time (the tick)."""
        excess = len(self.idle) - _KEEP_IDLE
        if excess > 0:
            n = (excess + 1) // 2
            for runner in self.idle[:n]:
                self._retire(runner)
            del self.idle[:n]

    def close(self) -> None:
        """End the idle runners; busy ones end with their handlers."""
        for runner in self.idle:
            self._retire(runner)
        self.idle.clear()
        if self.spare is not None and not self.waiting:
            self._retire(self.spare)
            self.spare = None

    @staticmethod
    def _retire(runner: _Runner) -> None:
        runner.retired = True
        if not runner._jobs:
            runner.task.cancel()


# -- the fallback: a Task per request ------------------------------------------------------
#: Python 3.12+ can start a Task eagerly: its first step runs inside the Task
#: before create returns, so a handler that never suspends answers at once.
_EAGER = sys.version_info >= (3, 12)


class TaskPerRequest:
    """Runs each handler coroutine in a Task of its own (the supported mechanism).

    Used where asyncio's internals do not have the shape RunnerPool relies on. On
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

    def trim(self) -> None:
        """Nothing kept: each Task ends with its handler."""

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


def _choose() -> tuple[type[RunnerPool] | type[TaskPerRequest], str]:
    if os.environ.get("BLAZEASGI_TASKS", "").lower() == "task":
        return TaskPerRequest, "a Task per request (BLAZEASGI_TASKS=task)"
    misfit = _internals_misfit()
    if misfit is not None:  # pragma: no cover - no tested Python gets here
        return TaskPerRequest, f"a Task per request (asyncio internals differ: {misfit})"
    return RunnerPool, "handlers stepped directly, in a pool of runner tasks when they suspend"


#: What runs a server's handler coroutines on this Python: RunnerPool, or the fallback.
HandlerRunners, HANDLER_PATH = _choose()
