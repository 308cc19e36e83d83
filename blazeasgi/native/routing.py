"""Path routing: a dict for static paths, compiled patterns for ``/items/{id}``."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[..., Any]

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::(str|int|path))?}")
_CONVERTERS = {"str": "[^/]+", "int": "[0-9]+", "path": ".*"}


@dataclass(slots=True)
class Endpoint:
    handler: Handler
    is_async: bool
    int_params: tuple[str, ...] = ()


@dataclass(slots=True)
class Route:
    """All endpoints registered under one path, by method."""

    path: str
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    allow: str = ""

    def add(self, methods: list[str], endpoint: Endpoint) -> None:
        for method in methods:
            self.endpoints[method.upper()] = endpoint
        if "GET" in self.endpoints and "HEAD" not in self.endpoints:
            self.endpoints["HEAD"] = self.endpoints["GET"]
        self.allow = ", ".join(sorted(self.endpoints))


class Router:
    def __init__(self) -> None:
        # Static paths keyed by the raw (still percent-encoded) bytes the engine
        # parsed: one dict lookup per request, no decoding on the hot path.
        self.static: dict[bytes, Route] = {}
        self.dynamic: list[tuple[re.Pattern[str], Route]] = []

    def add(self, path: str, methods: list[str], handler: Handler) -> None:
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        names = [m.group(1) for m in _PARAM.finditer(path)]
        int_params = tuple(m.group(1) for m in _PARAM.finditer(path) if m.group(2) == "int")
        endpoint = Endpoint(handler, _is_async(handler), int_params)
        if not names:
            key = path.encode("utf-8")
            route = self.static.get(key)
            if route is None:
                route = self.static[key] = Route(path)
            route.add(methods, endpoint)
            return
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate path parameter in {path!r}")
        pattern = self._compile(path)
        for existing, route in self.dynamic:
            if existing.pattern == pattern.pattern:
                route.add(methods, endpoint)
                return
        route = Route(path)
        route.add(methods, endpoint)
        self.dynamic.append((pattern, route))

    @staticmethod
    def _compile(path: str) -> re.Pattern[str]:
        regex, last = "^", 0
        for m in _PARAM.finditer(path):
            regex += re.escape(path[last : m.start()])
            regex += f"(?P<{m.group(1)}>{_CONVERTERS[m.group(2) or 'str']})"
            last = m.end()
        return re.compile(regex + re.escape(path[last:]) + "$")

    def resolve(self, path: str, method: str) -> tuple[Endpoint | None, dict[str, str], Route | None]:
        """The endpoint for a decoded path and method, Starlette's way: a route
        matching path and method wins over an earlier one matching the path only.

        Returns (endpoint, params, None) on a full match, else (None, {}, route)
        where route is the first path-only match (405) or None (404).
        """
        partial: Route | None = None
        route = self.static.get(path.encode("utf-8"))
        if route is not None:
            endpoint = route.endpoints.get(method)
            if endpoint is not None:
                return endpoint, {}, None
            partial = route
        for pattern, route in self.dynamic:
            m = pattern.match(path)
            if m is not None:
                endpoint = route.endpoints.get(method)
                if endpoint is not None:
                    return endpoint, m.groupdict(), None
                if partial is None:
                    partial = route
        return None, {}, partial


def _is_async(handler: Handler) -> bool:
    # A class instance with an ``async def __call__`` counts as async too.
    call = type(handler).__dict__.get("__call__")
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)
