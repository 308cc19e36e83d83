"""Which mechanism runs a server's handler coroutines, and the fallback.

The direct path (tasks.RunnerPool) relies on one asyncio internal, the dict
``current_task()`` reads; at import, ``_internals_misfit`` checks it on a real loop.
Where it does not hold (a Python that keeps the current task elsewhere), or with
``BLAZEASGI_TASKS=task``, every handler gets a Task of its own (TaskPerRequest).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Any

from .tasks import CURRENT_TASKS, HAS_CURRENT_TASKS, DoneCallback, RunnerPool, Suspended

#: The dict the direct path writes, under a name of this module's own (the tests
#: replace it with another dict to play a Python that keeps the current task elsewhere).
_current_tasks = CURRENT_TASKS


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
    runs), that a task stored in _current_tasks is what current_task() reports,
    inside a coroutine step too, and that removing it leaves no task current.
    """
    if not HAS_CURRENT_TASKS:  # pragma: no cover - every supported Python has it
        return "asyncio.tasks has no _current_tasks dict"
    loop = asyncio.new_event_loop()
    outcome: list[str | None] = []

    def check() -> None:
        lent = loop.create_task(asyncio.sleep(0))
        try:
            if asyncio.current_task(loop) is not None or _current_tasks.get(loop) is not None:
                outcome.append("a task is current outside any task")
                return
            _current_tasks[loop] = lent
            try:
                seen = asyncio.current_task(loop)
                coro = _current()
                try:
                    coro.send(None)
                    inner = None
                except StopIteration as stop:
                    inner = stop.value
            finally:
                _current_tasks.pop(loop, None)
            if seen is not lent or inner is not lent:
                outcome.append("current_task() does not read _current_tasks")
            elif asyncio.current_task(loop) is not None:
                outcome.append("a task stays current once out of _current_tasks")
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
