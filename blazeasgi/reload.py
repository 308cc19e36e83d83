"""--reload: watch the source tree and tell the master when to replace its workers.

watchfiles (Rust's notify: inotify, FSEvents, ReadDirectoryChangesW) is an
optional extra; without it --reload is a one-line error naming the extra. It runs
in a thread of the master and reports through a socketpair that the master's
select loop waits on with everything else, so the master stays one select loop.
Restarting is the master's business (supervisor.py): new workers start, the old
ones stop once those are ready, and a new worker that fails to import (a syntax
error half-way through an edit) leaves the old ones serving until the next change.
"""

from __future__ import annotations

import fnmatch
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import BlazeasgiError

logger = logging.getLogger("blazeasgi.error")

#: What restarts the workers by default: Python sources, as uvicorn.
DEFAULT_INCLUDES = ("*.py",)
#: Hidden files and directories, bytecode, editor swap and backup files.
DEFAULT_EXCLUDES = (".*", "*.py[cod]", "*.sw?", "*~")
#: Directories that never hold the app's own sources, whatever the patterns say.
IGNORED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", ".git", ".venv"})
#: watchfiles groups changes for up to this long (ms): an editor's write, rename
#: and chmod of one save make one reload, not three.
DEBOUNCE_MS = 400


def combine_patterns(includes: Sequence[str], excludes: Sequence[str]) -> tuple[list[str], list[str]]:
    """--reload-include/--reload-exclude add to the defaults, as uvicorn's do, and a
    pattern given to one flag is dropped from the other's defaults."""
    include = [glob for glob in dict.fromkeys([*DEFAULT_INCLUDES, *includes]) if glob not in excludes]
    exclude = [glob for glob in dict.fromkeys([*DEFAULT_EXCLUDES, *excludes]) if glob not in includes]
    return include, exclude


class ReloadUnavailable(BlazeasgiError):
    """--reload cannot run: watchfiles is missing or a --reload-dir does not exist."""


class ReloadFilter:
    """Which changed paths count: --reload-include and --reload-exclude globs.

    A path counts when its name (or its path below the watched directory) matches
    an include glob, and neither its name nor any directory between it and the
    watched directory matches an exclude glob.
    """

    def __init__(self, roots: Iterable[Path], includes: Sequence[str], excludes: Sequence[str]) -> None:
        self.roots = [Path(root).resolve() for root in roots]
        self.includes = tuple(includes)
        self.excludes = tuple(excludes)

    def __call__(self, change: object, path: str) -> bool:
        return self.matches(Path(path))

    def matches(self, path: Path) -> bool:
        parts = self._parts(path)
        for part in parts:
            if part in IGNORED_DIRS or any(fnmatch.fnmatchcase(part, glob) for glob in self.excludes):
                return False
        relative = "/".join(parts)
        return any(
            fnmatch.fnmatchcase(parts[-1], glob) or fnmatch.fnmatchcase(relative, glob)
            for glob in self.includes
        )

    def _parts(self, path: Path) -> tuple[str, ...]:
        """The path below the watched directory holding it (the name alone if none)."""
        for root in self.roots:
            for candidate in (path, path.resolve()):
                if candidate.is_relative_to(root):
                    parts = candidate.relative_to(root).parts
                    if parts:
                        return parts
        return (path.name,)


class Watcher:
    """Watches directories in a thread; ``fileno()`` turns readable on a change."""

    def __init__(self, dirs: Sequence[str], includes: Sequence[str], excludes: Sequence[str]) -> None:
        try:
            from watchfiles import watch
        except ImportError:
            raise ReloadUnavailable("--reload needs watchfiles: pip install 'blazeasgi[reload]'") from None
        for directory in dirs:
            if not Path(directory).is_dir():
                raise ReloadUnavailable(f"--reload-dir {directory!r} is not a directory")
        self._watch: Callable[..., Any] = watch
        self.dirs = [Path(directory).resolve() for directory in dirs]
        self.filter = ReloadFilter(self.dirs, includes, excludes)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="blazeasgi-reload", daemon=True)
        # watchfiles logs every batch at INFO; the master logs its own line instead.
        logging.getLogger("watchfiles").setLevel(logging.WARNING)

    def fileno(self) -> int:
        return self._reader.fileno()

    def start(self) -> None:
        self._thread.start()

    def changes(self) -> list[str]:
        """Paths changed since the last call (clears the readable state)."""
        try:
            while self._reader.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            changed, self._changed = self._changed, set()
        return sorted(changed)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self._reader.close()
        self._writer.close()

    def _run(self) -> None:
        try:
            for batch in self._watch(
                *self.dirs,
                watch_filter=self.filter,
                stop_event=self._stop,
                debounce=DEBOUNCE_MS,
                raise_interrupt=False,
            ):
                with self._lock:
                    self._changed.update(path for _, path in batch)
                self._writer.send(b"!")
        except OSError as exc:
            if not self._stop.is_set():
                logger.error("Stopped watching for changes: %s", exc)
