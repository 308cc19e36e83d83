"""Which hot modules run compiled, and the switch that keeps them pure Python.

The modules in ``MODULES`` are the ordinary typed source of the package. When a C
compiler is there at install time, setup.py compiles them with mypyc into one
shared library (``blazeasgi/_hot__mypyc.*.so``) plus a small extension per module,
placed beside the ``.py`` files; Python's import system then prefers the extension.
Nothing else differs: there is no second copy of any logic.

This module (stdlib only: setup.py loads it by path, before anything is installed)
decides at import of ``blazeasgi`` whether those extensions may be used, all or
none (compiled modules call each other's classes directly, so a mix would crash):

* ``BLAZEASGI_PURE=1`` in the environment: pure Python (at install time it also
  skips the compilation);
* no ``_compiled_sources.txt`` beside this file, or an extension missing for this
  interpreter: not built (no compiler, or built for another Python);
* a source whose SHA-256 differs from the one the build recorded: stale. An
  editable install leaves the extensions in the source tree, where they would
  otherwise shadow every later edit of the ``.py`` files until the next build.

When the answer is pure, a meta-path finder loads those modules from their ``.py``
files, so an unusable extension is never imported. ``STATUS`` says what was decided
(``blazeasgi --version`` prints it; the server logs it at debug level).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

#: The hot path, compiled by mypyc when possible: chosen module by module with
#: benchmarks.callgrind (instructions per request, native / ASGI hello world).
#: Pure 46.4k / 63.7k; connection alone 38.2k / 54.9k; exchange alone 45.4k /
#: 65.3k (ASGI slower: the pure adapter reaches a compiled Exchange through
#: wrappers); both 32.2k / 51.7k; with the adapter 32.2k / 40.9k. Adding http11
#: and tasks as well measured 32.5k / 41.2k: no gain then. Measured again on
#: 2026-12-04 (native / ASGI, then with a handler that awaits once, --each
#: --suspend): tasks, with its hot names bound Final, is even on hello and saves
#: 9% on the handler that suspends (75.2k -> 68.3k native, 71.5k -> 64.8k ASGI):
#: compiled. http11 saves
#: ASGI 0.9k but costs native 0.4k (the native Response reads a compiled
#: ResponseHead through descriptors): it stays Python.
#: The native interface (blazeasgi/native/) stays Python, by semantics and measure:
#: native.app compiled with routing gains 1.8k (32.2k -> 30.5k), but a compiled App
#: admits no Python subclass ("interpreted classes cannot inherit from compiled":
#: tests/test_fuzz.py's NativeApp, any user's) and no attribute it does not declare;
#: native.routing alone costs 0.4k more (the Python App reads its routes through
#: descriptors). Response and Request cannot be native classes: their subclasses
#: override class attributes (media_type, Request.behind's _proxy), which compiled
#: code never sees (it reads the instance slot, set to the base class's default).
MODULES = (
    "blazeasgi.engine.connstate",
    "blazeasgi.engine.connwrites",
    "blazeasgi.engine.fieldnames",
    "blazeasgi.engine.endings",
    "blazeasgi.engine.requestchecks",
    "blazeasgi.engine.connection",
    "blazeasgi.engine.conninfo",
    # The server's shared state, read by every connection, and the listener's
    # protocol factory (a native callable: no Python frame per accepted connection).
    "blazeasgi.engine.serverstate",
    "blazeasgi.engine.responseext",
    "blazeasgi.engine.exchange",
    "blazeasgi.engine.transports",
    "blazeasgi.engine.tasks",
    # Chooses RunnerPool or its fallback; TaskPerRequest shares the runners' slot.
    "blazeasgi.engine.taskpaths",
    # H2Exchange subclasses Exchange: a compiled class admits only compiled subclasses.
    "blazeasgi.engine.h2exchange",
    "blazeasgi.engine.h2fields",
    "blazeasgi.engine.h2flow",
    "blazeasgi.engine.h2limits",
    "blazeasgi.engine.h2socket",
    "blazeasgi.engine.http2",
    "blazeasgi.asgi.adapter",
)
#: mypyc's shared library for MODULES: blazeasgi/_hot__mypyc.<abi>.so
GROUP = "blazeasgi._hot"
#: Written by setup.py once every extension is built: "<module> <sha256 of its source>".
MANIFEST = "_compiled_sources.txt"
PURE_ENV = "BLAZEASGI_PURE"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def source_path(module: str, root: str | None = None) -> str:
    """The ``.py`` file of ``module`` (one of MODULES) under the package directory."""
    parts = module.split(".")[1:]
    return os.path.join(root or _PACKAGE_DIR, *parts) + ".py"


def source_digest(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _unusable(package_dir: str) -> str | None:
    """Why the compiled modules cannot be used here, or None when they can."""
    if pure_requested():
        return f"{PURE_ENV}=1"
    try:
        with open(os.path.join(package_dir, MANIFEST), encoding="ascii") as file:
            recorded = dict(line.split() for line in file if line.strip())
    except OSError:
        return "not built"
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    group_lib = os.path.join(package_dir, GROUP.split(".")[-1] + "__mypyc" + suffix)
    if not os.path.exists(group_lib):
        return "not built for this Python"
    for module in MODULES:
        source = source_path(module, package_dir)
        if not os.path.exists(source[: -len(".py")] + suffix):
            return "not built for this Python"
        if recorded.get(module) != source_digest(source):
            return f"stale: {module} changed since it was compiled (reinstall to rebuild)"
    return None


class _PureFinder:
    """Loads ``.py`` files ahead of extensions beside them: MODULES when running pure,
    and always a module no longer in MODULES that an older build left compiled."""

    def __init__(self, package_dir: str, pure: bool) -> None:
        self.package_dir = package_dir
        self.pure = pure

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not name.startswith("blazeasgi.") or (name in MODULES and not self.pure):
            return None
        source = source_path(name, self.package_dir)
        if name not in MODULES and not os.path.exists(
            source[: -len(".py")] + importlib.machinery.EXTENSION_SUFFIXES[0]
        ):
            return None  # nothing compiled beside it: the usual finders load the .py
        if not os.path.exists(source):
            return None
        return importlib.util.spec_from_file_location(name, source)


def _decide() -> tuple[bool, str]:
    reason = _unusable(_PACKAGE_DIR)
    if not any(isinstance(finder, _PureFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PureFinder(_PACKAGE_DIR, pure=reason is not None))
    if reason is None:
        return True, "compiled (mypyc)"
    return False, f"pure Python ({reason})"


#: Whether MODULES run compiled in this process, and a line saying why (or why not).
COMPILED, STATUS = _decide()


def loaded_compiled() -> dict[str, bool]:
    """For each of MODULES already imported: whether it came from an extension."""
    return {
        name: not sys.modules[name].__file__.endswith(".py")  # type: ignore[union-attr]
        for name in MODULES
        if name in sys.modules
    }
