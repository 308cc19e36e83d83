"""``--interface auto|asgi3|asgi2|wsgi``: every app shape served as ASGI 3.

``auto`` decides the way uvicorn does: a class is ASGI 3 if it has ``__await__``,
a function if it is a coroutine function, any other callable if its ``__call__``
is one; everything else is taken for ASGI 2. One deliberate difference: a
``functools.partial`` of, or a method that is, a coroutine function is ASGI 3
(uvicorn takes those for ASGI 2 and fails on every request). WSGI is never guessed (a WSGI
callable looks like ASGI 2): it takes ``--interface wsgi``, as with uvicorn.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

from ..types import ASGIApp, Receive, Scope, Send

INTERFACES = ("auto", "asgi3", "asgi2", "wsgi")

if sys.version_info >= (3, 14):  # pragma: no cover
    iscoroutinefunction = inspect.iscoroutinefunction
else:  # asyncio's also knows functions marked as coroutines (asgiref does that), like uvicorn
    from asyncio import iscoroutinefunction


def detect_interface(app: Any) -> str:
    """``asgi3`` or ``asgi2`` for ``app``, decided like uvicorn's ``--interface auto``."""
    if inspect.isclass(app):
        return "asgi3" if hasattr(app, "__await__") else "asgi2"
    if iscoroutinefunction(app):
        # Also bound async methods and functools.partial of a coroutine function,
        # which uvicorn takes for ASGI 2 and then fails to serve.
        return "asgi3"
    if inspect.isfunction(app):
        return "asgi2"
    call = getattr(app, "__call__", None)  # noqa: B004 - the method itself is inspected
    return "asgi3" if iscoroutinefunction(call) else "asgi2"


class ASGI2App:
    """An ASGI 2 app (``app(scope)`` returns ``instance``, then ``await instance(receive, send)``)."""

    def __init__(self, app: Callable[[Scope], Any]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)


def as_asgi3(app: Any, interface: str = "auto") -> tuple[ASGIApp, str]:
    """(an ASGI 3 callable serving ``app``, the interface it was taken for)."""
    if interface not in INTERFACES:
        raise ValueError(f"interface must be one of {INTERFACES}, not {interface!r}")
    if interface == "auto":
        interface = detect_interface(app)
    if interface == "asgi2":
        return ASGI2App(app), interface
    if interface == "wsgi":
        from .wsgi import WSGIAdapter

        return WSGIAdapter(app), interface
    return app, interface
