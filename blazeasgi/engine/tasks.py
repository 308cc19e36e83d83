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
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final

logger = logging.getLogger("blazeasgi.error")

# The direct path lends a runner task to a coroutine stepped outside it, through
# one asyncio internal: _current_tasks, the per-loop dict that current_task()
# reads and that _enter_task/_leave_task (what Task.__step calls around each
# step) write. It has had this shape from 3.7 to 3.13; a version that keeps the
# current task elsewhere (C thread state) would break anyio's current_task()
# without an error. So the shape is checked at import (taskpaths.py) and the
# engine falls back to a Task per request there when it does not match, or when
# BLAZEASGI_TASKS=task asks for it.
try:
    from asyncio.tasks import (  # type: ignore[attr-defined]
        _current_tasks as _current_tasks_any,
    )
except ImportError:  # pragma: no cover - a CPython without it: the fallback
    _current_tasks_any = None

#: Whether this asyncio has that dict (taskpaths.py checks how it behaves).
HAS_CURRENT_TASKS: Final = isinstance(_current_tasks_any, dict)
#: That dict, written directly (two calls fewer than _enter_task/_leave_task).
#: Final: compiled, a C static where a module global is a dict look-up at every use.
CURRENT_TASKS: Final[dict[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = (
    _current_tasks_any if HAS_CURRENT_TASKS else {}
)
_COPY_CONTEXT: Final = contextvars.copy_context

#: Called once with (result, None) or (None, exception) when a coroutine ends.
DoneCallback = Callable[[Any, BaseException | None], None]


class Suspended:
    """How many handlers of one server are parked in host tasks right now."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class _Paused:
    """What a stepper yields once its handler has ended (it then waits for the next)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        yield self


_PAUSED: Final = _Paused()


class _Stepper:
    """Runs handler coroutines one after another inside a coroutine that never ends.

    A coroutine driven with ``send`` reports its end by raising StopIteration,
    and catching that cost about 3.6k instructions a request compiled (the
    traceback entry and exception state mypyc keeps for a caught exception):
    more than a tenth of a raw ASGI request. ``_step_through`` awaits each
    handler instead (``await`` ends through PyIter_Send, with no exception) and
    then yields ``_PAUSED``, so the caller's ``send`` returns normally: the
    handler's outcome is in ``value`` and ``exc``. A handler that suspends
    suspends the stepper with it; the stepper then goes to a runner, and back to
    the pool's spares when the handler ends.
    """

    __slots__ = ("coro", "driver", "exc", "send", "value")

    def __init__(self) -> None:
        self.coro: Any = None
        self.value: Any = None
        self.exc: BaseException | None = None
        self.driver = _step_through(self)
        self.send = self.driver.send  # bound once: a bound method per step otherwise

    def outcome(self) -> tuple[Any, BaseException | None]:
        """The ended handler's (result, exception), forgotten here."""
        value, exc = self.value, self.exc
        self.value = self.exc = None
        return value, exc


async def _step_through(stepper: _Stepper) -> None:
    while True:
        coro = stepper.coro
        stepper.coro = None
        try:
            stepper.value = await coro
        except GeneratorExit:  # closed with its handler (the runner task destroyed)
            raise
        except BaseException as exc:
            stepper.exc = exc
        del coro
        await _PAUSED


class _Resume:
    """Awaited by a runner task: keeps driving a stepper whose handler suspended."""

    __slots__ = ("ctx", "first", "on_done", "pool", "stepper")

    def __init__(
        self,
        stepper: _Stepper,
        ctx: contextvars.Context,
        first: Any,
        on_done: DoneCallback,
        pool: RunnerPool,
    ) -> None:
        self.stepper = stepper
        self.ctx = ctx
        self.first = first  # what the handler yielded when it first suspended
        self.on_done = on_done
        self.pool = pool
        pool.suspended.count += 1  # from its first suspension to its end

    def finish(self, failed: BaseException | None = None) -> None:
        """The handler ended (or, with ``failed``, its stepper broke: dropped)."""
        pool = self.pool
        pool.suspended.count -= 1
        if failed is None:
            value, exc = self.stepper.outcome()
            pool.spares.append(self.stepper)
        else:  # pragma: no cover - _step_through catches what its handler raises
            value, exc = None, failed
        self.on_done(value, exc)

    def __await__(self) -> Generator[Any, None, None]:
        stepper, run = self.stepper, self.ctx.run
        to_yield = self.first
        while True:
            thrown: BaseException | None = None
            try:
                yield to_yield
            except GeneratorExit:  # the runner task is being destroyed
                self.pool.suspended.count -= 1
                stepper.driver.close()
                raise
            except BaseException as exc:  # the Task threw in: a cancellation
                thrown = exc
            try:
                if thrown is None:
                    to_yield = run(stepper.send, None)
                else:
                    to_yield = run(stepper.driver.throw, thrown)
            except BaseException as exc:  # pragma: no cover - see finish
                self.finish(exc)
                return
            if to_yield is _PAUSED:
                self.finish()
                return


class _Cancelled:
    """Like ``_Resume`` but first throws CancelledError into the handler."""

    __slots__ = ("job",)

    def __init__(self, job: _Resume) -> None:
        self.job = job

    def __await__(self) -> Generator[Any, None, None]:
        job = self.job
        try:
            to_yield = job.ctx.run(job.stepper.driver.throw, asyncio.CancelledError())
        except BaseException as exc:  # pragma: no cover - see _Resume.finish
            job.finish(exc)
            return
        if to_yield is _PAUSED:
            job.finish()
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

    __slots__ = ("idle", "loop", "ready", "spare", "spares", "suspended", "waiting")

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
        #: The stepper the next handler starts in, and the ones its suspended
        #: handlers gave back (_Stepper): created as handlers first suspend at once.
        self.ready: _Stepper | None = None
        self.spares: list[_Stepper] = []

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
        # The ready stepper, taken while it runs: a handler that starts another
        # handler of this pool from inside its step gets a spare.
        stepper = self.ready
        if stepper is None:
            stepper = self.spares.pop() if self.spares else _Stepper()
        else:
            self.ready = None
        stepper.coro = coro
        ctx = _COPY_CONTEXT()
        loop, task = self.loop, runner.task
        # Protocol callbacks run outside any task; a caller inside one (a handler
        # ending in a runner starts the connection's next; a test driving the
        # protocol by hand) gets its task back afterwards.
        # The lend is what _enter_task/_leave_task do, on their dict directly (two
        # calls fewer; _internals_misfit checks that current_task() reads it).
        current = CURRENT_TASKS
        outer = current.get(loop)
        current[loop] = task
        try:
            first = ctx.run(stepper.send, None)
        except BaseException as exc:  # pragma: no cover - see _Resume.finish
            if outer is None:
                del current[loop]
            else:
                current[loop] = outer
            on_done(None, exc)
            return
        if outer is None:
            del current[loop]
        else:
            current[loop] = outer
        if first is _PAUSED:  # ended without suspending: the usual case
            if self.ready is None:
                self.ready = stepper
            else:
                self.spares.append(stepper)
            result, failure = stepper.outcome()
            on_done(result, failure)
            return
        if idle and idle[-1] is runner:
            idle.pop()
        else:  # pragma: no cover - the step itself borrowed runners
            idle.remove(runner)
        runner.hand(_Resume(stepper, ctx, first, on_done, self))
        if not idle and self.spare is None:
            self.spare = _Runner(self)  # started by the time the next handler comes

    def start_waiting(self) -> None:
        """Start the handlers that waited for a runner (called by one that is idle)."""
        waiting, self.waiting = self.waiting, []
        for coro, on_done in waiting:
            self._start(coro, on_done)

    def trim(self) -> None:
        """Retire idle runners and spare steppers past _KEEP_IDLE, half the excess
        at a time (the tick)."""
        excess = len(self.idle) - _KEEP_IDLE
        if excess > 0:
            n = (excess + 1) // 2
            for runner in self.idle[:n]:
                self._retire(runner)
            del self.idle[:n]
        excess = len(self.spares) - _KEEP_IDLE
        if excess > 0:
            del self.spares[: (excess + 1) // 2]  # each closes as it is freed

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
