"""Which mechanism runs handler coroutines, and the fallback when asyncio changes.

The direct path (tasks.TaskHost) relies on three asyncio internals; they are
checked at import and a Python where they behave differently gets a Task per
request instead (tasks.TaskPerRequest). These tests check the check, and run the
ASGI, anyio and fairness tests through the fallback (forced with BLAZEASGI_TASKS=task).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from blazeasgi.engine import tasks

from .conftest import MockConnection

ROOT = Path(__file__).resolve().parent.parent


def test_every_supported_python_gets_the_direct_path() -> None:
    if os.environ.get("BLAZEASGI_TASKS") == "task":
        assert tasks.HandlerHost is tasks.TaskPerRequest
    else:
        assert tasks._internals_misfit() is None
        assert tasks.HandlerHost is tasks.TaskHost


def test_a_current_task_kept_elsewhere_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if a new Python kept the running task in C state: entering a task no
    # longer shows in what current_task() reports.
    monkeypatch.setattr(tasks, "_enter_task", lambda loop, task: None)
    monkeypatch.setattr(tasks, "_leave_task", lambda loop, task: None)
    assert tasks._internals_misfit() == "_enter_task does not make the task current"


def test_internals_that_raise_are_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(loop: Any, task: Any) -> None:
        raise RuntimeError("not the running loop")

    monkeypatch.setattr(tasks, "_enter_task", refuse)
    assert tasks._internals_misfit() == "RuntimeError: not the running loop"


async def suspending_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/suspend":
        await asyncio.sleep(0)
    task = asyncio.current_task()
    assert task is not None
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": type(task).__name__.encode()})


@pytest.mark.parametrize("path", ["/", "/suspend"])
def test_task_per_request_answers_in_a_real_task(
    run: Any, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setattr("blazeasgi.engine.connection.HandlerHost", tasks.TaskPerRequest)

    async def go() -> bytes:
        conn = MockConnection(suspending_app)
        conn.feed(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode() * 2)
        return await conn.settle()

    out = run(go())
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.endswith(b"\r\n\r\nTask")


def test_asgi_anyio_and_fairness_tests_pass_through_the_fallback() -> None:
    env = dict(os.environ, BLAZEASGI_TASKS="task")
    files = [
        "tests/test_engine_task_paths.py::test_every_supported_python_gets_the_direct_path",
        "tests/test_engine_task_paths.py::test_task_per_request_answers_in_a_real_task",
        "tests/test_engine_fairness.py",
        "tests/test_asgi_frameworks.py",
        "tests/test_asgi_messages.py",
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
