"""The servers under test: how to start each one, what it needs, what it is compared to.

Every server gets one worker, access logs off, keep-alive on (the default everywhere),
the same listen backlog, and is started by the harness on 127.0.0.1:<free port>.
Apps are shared per interface: every ASGI server runs the same raw ASGI app
(benchmarks/apps/hello_asgi.py), the same Starlette app and the same FastAPI app.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from blazeasgi.benchprocess import module_available

BACKLOG = "2048"
PY = sys.executable

APPS = {
    "native": "benchmarks.apps.hello_native:app",
    "raw": "benchmarks.apps.hello_asgi:app",
    "starlette": "benchmarks.apps.starlette_app:app",
    "fastapi": "benchmarks.apps.fastapi_app:app",
    "mixed": "benchmarks.apps.mixed_app:app",
    "rsgi": "benchmarks.apps.hello_rsgi:app",
    "robyn": "benchmarks.apps.robyn_app",
    "floor": "benchmarks.apps.floor",
}

BASE_ROUTES = frozenset({"hello", "hello-close", "hello-http10", "plaintext", "json", "echo", "download"})
#: Which scenario routes each app serves (the FastAPI scenario needs FastAPI).
APP_ROUTES = {
    "native": BASE_ROUTES,
    "raw": BASE_ROUTES,
    "starlette": BASE_ROUTES,
    "fastapi": BASE_ROUTES | {"items"},
    "mixed": BASE_ROUTES | {"items"},
    "rsgi": BASE_ROUTES,
    "robyn": BASE_ROUTES,
    "floor": frozenset({"hello", "hello-close", "hello-http10"}),
}

#: The frameworks an app needs beyond its server.
APP_NEEDS = {"starlette": ("starlette",), "fastapi": ("fastapi",), "mixed": ("fastapi",)}


@dataclass(frozen=True)
class ServerSpec:
    name: str
    server: str  # blazeasgi, uvicorn, granian, hypercorn, robyn
    interface: str  # native, asgi, mixed, rsgi, robyn
    app: str  # a key of APPS
    command: Callable[[ServerSpec, int], list[str]]
    install: str  # how to get the server if it is missing
    uvicorn_baseline: str | None = None
    granian_baseline: str | None = None
    default: bool = True
    env: dict[str, str] = field(default_factory=dict)
    stop_signal: signal.Signals = signal.SIGTERM
    app_target: str = ""  # module:attribute, when not the shared app named by ``app``
    #: Runs the HTTP/2 scenarios too (h2c with prior knowledge; see ``_h2_flags``).
    http2: bool = False

    @property
    def target(self) -> str:
        return self.app_target or APPS[self.app]

    @property
    def routes(self) -> frozenset[str]:
        return APP_ROUTES[self.app]

    def requires(self) -> tuple[str, ...]:
        return (self.server, *APP_NEEDS.get(self.app, ()))

    def missing(self, python: str | None = None) -> str | None:
        """Why this server cannot run here (a module is not installed), or None.

        ``python``: the interpreter it will run on, when not this one (``--python``).
        """
        if python is None:
            found = {module: module_available(module) for module in self.requires()}
        else:
            try:
                found = modules_available_in(python, self.requires())
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                return f"{python} cannot be run: {exc}"
        for module in self.requires():
            if not found.get(module):
                how = self.install if module == self.server else f"pip install {module}"
                where = f" in {python}" if python else ""
                return f"{module} is not installed{where} ({how})"
        return None

    def missing_http2(self) -> str | None:
        """Why this server cannot serve the HTTP/2 scenarios here, or None."""
        if not self.http2:
            return f"{self.name} is not in the HTTP/2 set"
        module = H2_NEEDS.get(self.server)
        if module and not module_available(module):
            return f"{module} is not installed (pip install {module}): needed for HTTP/2"
        return None

    def argv(self, port: int, http2: bool = False, python: str | None = None) -> list[str]:
        """The command line; ``http2``: as started for the HTTP/2 scenarios; ``python``:
        the interpreter, when not this one (every command starts with it)."""
        argv = self.command(self, port)
        if python is not None:
            argv[0] = python
        for flag, value in H2_FLAGS.get(self.server, {}).items() if http2 else ():
            at = argv.index(flag) if flag in argv else -1
            if at < 0:
                argv += [flag, *([value] if value else [])]
            elif value:
                argv[at + 1] = value
        return argv

    def process_env(self, port: int) -> dict[str, str]:
        env = dict(self.env)
        if self.server == "robyn":
            env.update(ROBYN_HOST="127.0.0.1", ROBYN_PORT=str(port))
        return env


def modules_available_in(python: str, modules: Sequence[str]) -> dict[str, bool]:
    """Which of ``modules`` another interpreter can import (found, not imported)."""
    script = (
        "import importlib.util, json, sys\n"
        "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [python, "-c", script, *modules], capture_output=True, text=True, timeout=30, check=True
    )
    found = json.loads(out.stdout)
    return {module: bool(found.get(module)) for module in modules}


def _blazeasgi(spec: ServerSpec, port: int) -> list[str]:
    return [
        PY, "-m", "blazeasgi", spec.target, "--host", "127.0.0.1", "--port", str(port),
        "--backlog", BACKLOG, "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def _uvicorn(spec: ServerSpec, port: int) -> list[str]:
    return [
        PY, "-m", "uvicorn", spec.target, "--host", "127.0.0.1", "--port", str(port),
        "--http", "httptools", "--loop", "uvloop", "--workers", "1", "--backlog", BACKLOG,
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def _granian(spec: ServerSpec, port: int) -> list[str]:
    interface = "rsgi" if spec.interface == "rsgi" else "asgi"
    return [
        PY, "-m", "granian", "--interface", interface, "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--runtime-threads", "1", "--loop", "uvloop", "--http", "1", "--no-ws",
        "--backlog", BACKLOG, "--no-access-log", "--log-level", "warning", spec.target,
    ]  # fmt: skip


def _hypercorn(spec: ServerSpec, port: int) -> list[str]:
    return [
        PY, "-m", "hypercorn", spec.target, "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--worker-class", "uvloop", "--backlog", BACKLOG, "--log-level", "warning",
    ]  # fmt: skip


def _robyn(spec: ServerSpec, port: int) -> list[str]:
    return [
        PY, "-m", spec.target, "--processes", "1", "--workers", "1", "--log-level", "WARN",
        "--disable-openapi",
    ]  # fmt: skip


def _floor(spec: ServerSpec, port: int) -> list[str]:
    return [PY, "-m", spec.target, "--host", "127.0.0.1", "--port", str(port), "--backlog", BACKLOG]


#: What changes on a server's command line for the HTTP/2 scenarios (flag: value; a flag
#: without a value is added). blazeasgi serves h2c whenever zttp is installed (``--http2``
#: is its default, spelled out; ``missing_http2`` checks for zttp). uvicorn 0.54 serves
#: HTTP/2 only through its zttp protocol (``--http zttp --http2``). Granian ``--http auto``
#: takes h2c prior knowledge and HTTP/1.1 (``--http 2`` would refuse the harness's HTTP/1.1
#: readiness probe). Hypercorn takes h2c prior knowledge as it is.
H2_FLAGS: dict[str, dict[str, str]] = {
    "blazeasgi": {"--http2": ""},
    "uvicorn": {"--http": "zttp", "--http2": ""},
    "granian": {"--http": "auto"},
}
#: The module each server needs for HTTP/2 beyond itself.
H2_NEEDS = {"blazeasgi": "zttp", "uvicorn": "zttp", "hypercorn": "h2"}

UVICORN = "pip install 'uvicorn[standard]'"
GRANIAN = "pip install granian"
ROBYN = (
    "in a venv of its own: python -m venv VENV && VENV/bin/pip install robyn, then run with"
    " --python robyn=VENV/bin/python; it pins uvloop~=0.22.1, which would change every other server's loop"
)

SERVERS: list[ServerSpec] = [
    ServerSpec("blazeasgi-native", "blazeasgi", "native", "native", _blazeasgi, "pip install -e .",
               "uvicorn-raw", "granian-rsgi", http2=True),
    ServerSpec("blazeasgi-asgi", "blazeasgi", "asgi", "raw", _blazeasgi, "pip install -e .",
               "uvicorn-raw", "granian-asgi", http2=True),
    ServerSpec("blazeasgi-starlette", "blazeasgi", "asgi", "starlette", _blazeasgi, "pip install -e .",
               "uvicorn-starlette", "granian-starlette"),
    ServerSpec("blazeasgi-fastapi", "blazeasgi", "asgi", "fastapi", _blazeasgi, "pip install -e .",
               "uvicorn-fastapi", "granian-fastapi", http2=True),
    ServerSpec("blazeasgi-mixed", "blazeasgi", "mixed", "mixed", _blazeasgi, "pip install -e .",
               "uvicorn-fastapi", "granian-fastapi"),
    ServerSpec("uvicorn-raw", "uvicorn", "asgi", "raw", _uvicorn, UVICORN, None, "granian-asgi", http2=True),
    ServerSpec("uvicorn-starlette", "uvicorn", "asgi", "starlette", _uvicorn, UVICORN, None,
               "granian-starlette"),
    ServerSpec("uvicorn-fastapi", "uvicorn", "asgi", "fastapi", _uvicorn, UVICORN, None, "granian-fastapi",
               http2=True),
    ServerSpec("granian-asgi", "granian", "asgi", "raw", _granian, GRANIAN, "uvicorn-raw", None, http2=True),
    ServerSpec("granian-rsgi", "granian", "rsgi", "rsgi", _granian, GRANIAN, "uvicorn-raw", None, http2=True),
    ServerSpec("hypercorn-raw", "hypercorn", "asgi", "raw", _hypercorn, "pip install hypercorn",
               "uvicorn-raw", "granian-asgi", http2=True),
    # Robyn ignores SIGTERM (it would be killed after 10 s); SIGINT stops it at once.
    ServerSpec("robyn", "robyn", "robyn", "robyn", _robyn, ROBYN,
               "uvicorn-raw", "granian-rsgi", stop_signal=signal.SIGINT),
    # Not in the default set (time): Granian on the framework apps, for the Granian ratio
    # of the Starlette and FastAPI rows. `--servers all` or name them.
    ServerSpec("granian-starlette", "granian", "asgi", "starlette", _granian, GRANIAN, "uvicorn-starlette",
               None, default=False),
    # The same source run pure (BLAZEASGI_PURE=1: no compiled modules), for the compiled/pure rows.
    ServerSpec("blazeasgi-native-pure", "blazeasgi", "native", "native", _blazeasgi, "pip install -e .",
               "uvicorn-raw", "granian-rsgi", default=False, env={"BLAZEASGI_PURE": "1"}),
    ServerSpec("blazeasgi-asgi-pure", "blazeasgi", "asgi", "raw", _blazeasgi, "pip install -e .",
               "uvicorn-raw", "granian-asgi", default=False, env={"BLAZEASGI_PURE": "1"}),
    ServerSpec("blazeasgi-fastapi-pure", "blazeasgi", "asgi", "fastapi", _blazeasgi, "pip install -e .",
               "uvicorn-fastapi", "granian-fastapi", default=False, env={"BLAZEASGI_PURE": "1"}),
    # The floor (not a server): a bare uvloop Protocol writing fixed bytes, hello scenarios only.
    ServerSpec("uvloop-floor", "uvloop", "floor", "floor", _floor, "pip install uvloop", default=False),
    ServerSpec("granian-fastapi", "granian", "asgi", "fastapi", _granian, GRANIAN, "uvicorn-fastapi", None,
               default=False, http2=True),
]  # fmt: skip

BY_NAME = {s.name: s for s in SERVERS}
