"""The master process behind --workers, --limit-max-requests and --reload.

The master binds the listening sockets and runs each worker as a fresh
``python -m blazeasgi <the same arguments>`` that serves inherited sockets: on
Linux for TCP one SO_REUSEPORT socket per worker place, which spreads the load
evenly, else one socket all workers share (see processflags.use_reuse_port,
sockets.SlotSockets). Fresh interpreters rather than ``os.fork``: the master never imports the app nor runs an
event loop, so every worker (and every reload) imports the code as it is on disk
now, and nothing of the master (threads, loop, signal handlers) leaks into one.
Waiting is one ``select`` over the workers' channels, a signal wake-up socket and,
with --reload, the file watcher's socket.

Replacing a worker is always start-then-stop: the new worker starts, and only
once it is ready does the old one get SIGTERM (a graceful drain, see
engine/server.py). The master holds the sockets throughout, so capacity never
drops to zero and a connection arriving meanwhile waits in the backlog instead of
being refused: SIGHUP, --reload and max-requests all work this way. A worker that
dies is replaced after the fact. A worker that exits before it was ready at boot
means the app cannot start: the master stops and exits 1 with that worker's error
rather than restart-looping (with --reload it keeps watching for a fix instead).

Master and worker talk over one socketpair per worker: blazeasgi/workerlink.py states
that protocol and holds the worker's end. What the flags mean for the processes is
blazeasgi/processflags.py; the per-slot listening sockets are sockets.SlotSockets.
"""

from __future__ import annotations

import argparse
import enum
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .processflags import use_reuse_port, worker_count
from .sockets import SlotSockets, bind_tcp
from .workerlink import ERROR, READY, RETIRE, WORKER_ENV

if TYPE_CHECKING:
    from .reload import Watcher

logger = logging.getLogger("blazeasgi.error")

#: A stopping worker still alive this long after its --timeout-graceful-shutdown is
#: killed: the engine aborts connections at the timeout, so this only catches a hang.
KILL_MARGIN = 5.0
#: A dead worker whose replacement fails to start is retried after 1 s, doubling
#: up to 30 s: a broken deploy logs twice a minute instead of spinning a CPU.
RESPAWN_DELAY, RESPAWN_DELAY_MAX = 1.0, 30.0


class Phase(enum.Enum):
    STARTING = "starting"  # spawned; importing the app, running its startup
    SERVING = "serving"
    RETIRING = "retiring"  # still serving while its replacement starts
    STOPPING = "stopping"  # SIGTERM sent: draining


class Worker:
    __slots__ = ("buffer", "channel", "error", "kill_at", "phase", "proc", "replaces", "slot")

    def __init__(
        self, proc: subprocess.Popen[bytes], channel: socket.socket, slot: int, replaces: Worker | None
    ) -> None:
        self.proc = proc
        self.channel = channel
        #: Which of the --workers places this is; with --reuse-port, which socket.
        self.slot = slot
        #: The worker to stop once this one is ready (SIGHUP, reload, max-requests).
        self.replaces = replaces
        self.phase = Phase.STARTING
        self.buffer = b""
        self.error: str | None = None
        self.kill_at = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid


class Supervisor:
    """Keeps ``workers`` worker processes serving ``sockets`` until told to stop."""

    def __init__(
        self,
        argv: Sequence[str],
        sockets_for_slot: Callable[[int], list[socket.socket]],
        workers: int,
        graceful_timeout: float,
        listening: list[str],
        watcher: Watcher | None = None,
        release_slot: Callable[[int], None] | None = None,
    ) -> None:
        self.command = [sys.executable, "-m", "blazeasgi", *argv]
        #: What worker place ``slot`` serves: the one shared group of sockets, or
        #: with --reuse-port, that slot's own SO_REUSEPORT group.
        self.sockets_for_slot = sockets_for_slot
        self.target = workers
        self.graceful_timeout = graceful_timeout
        self.listening = listening
        self.watcher = watcher
        #: Called with a slot that SIGTTOU removed (its SO_REUSEPORT group closes).
        self.release_slot = release_slot
        self.workers: list[Worker] = []
        self.selector = selectors.DefaultSelector()
        self.pending_signals: list[int] = []
        self.booted = False
        self.stopping = False
        self.exit_code = 0
        self.respawn_at: dict[int, float] = {}
        self.failures: dict[int, int] = {}

    # -- main loop ----------------------------------------------------------------------
    def run(self) -> int:
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        handled = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU]
        handled.append(signal.SIGCHLD)  # no action: it only wakes select to reap the worker
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        previous_wakeup = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        try:
            if self.watcher is not None:
                self.selector.register(self.watcher, selectors.EVENT_READ, self.watcher)
                self.watcher.start()
            for slot in range(self.target):
                self._spawn(slot)
            while not (self.stopping and not self.workers):
                self._step(wake_r)
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                if handler is not None:
                    signal.signal(sig, handler)
            if self.watcher is not None:
                self.watcher.stop()
            for worker in self.workers:  # only after an unexpected error in the loop
                worker.proc.kill()
            self.selector.close()
            wake_r.close()
            wake_w.close()
        if self.exit_code == 0:
            logger.info("Stopped")
        return self.exit_code

    def _on_signal(self, signum: int, frame: object) -> None:
        self.pending_signals.append(signum)  # handled in the loop; the wake-up fd ends select

    def _step(self, wake: socket.socket) -> None:
        for key, _ in self.selector.select(self._timeout()):
            if key.data is None:
                try:
                    while wake.recv(4096):
                        pass
                except BlockingIOError:
                    pass
            elif key.data is self.watcher:
                assert self.watcher is not None
                changed = self.watcher.changes()
                if changed and not self.stopping:
                    shown = ", ".join(os.path.relpath(path) for path in changed[:3])
                    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
                    logger.warning("Detected changes in %s%s; reloading", shown, more)
                    self.reload()
            else:
                self._read(key.data)
        self._handle_signals()
        self._reap()
        self._check_deadlines()

    def _timeout(self) -> float:
        deadlines = [w.kill_at for w in self.workers if w.phase is Phase.STOPPING]
        deadlines.extend(self.respawn_at.values())
        if not deadlines:
            return 1.0
        return min(max(min(deadlines) - time.monotonic(), 0.0), 1.0)

    # -- workers ------------------------------------------------------------------------
    def _spawn(self, slot: int, replaces: Worker | None = None) -> Worker:
        self.respawn_at.pop(slot, None)
        listen_fds = [sock.fileno() for sock in self.sockets_for_slot(slot)]
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env[WORKER_ENV] = f"{theirs.fileno()}:{','.join(map(str, listen_fds))}"
        if self.watcher is not None:
            # A .pyc is trusted while its source keeps its size and its mtime in
            # whole seconds: two edits within a second could reload stale code.
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            proc = subprocess.Popen(self.command, env=env, pass_fds=(theirs.fileno(), *listen_fds))
        finally:
            theirs.close()
        ours.setblocking(False)
        worker = Worker(proc, ours, slot, replaces)
        self.selector.register(ours, selectors.EVENT_READ, worker)
        self.workers.append(worker)
        if self.booted:
            logger.info("Started worker [%d]", proc.pid)
        return worker

    def _read(self, worker: Worker) -> None:
        try:
            data = worker.channel.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker exited (or is exiting): _reap takes it from here
            self.selector.unregister(worker.channel)
            return
        *lines, worker.buffer = (worker.buffer + data).split(b"\n")
        for line in lines:
            self._on_message(worker, line)

    def _on_message(self, worker: Worker, line: bytes) -> None:
        kind, text = line[:1], line[1:].decode("utf-8", "replace")
        if kind == ERROR:
            worker.error = text
        elif kind == READY and worker.phase is Phase.STARTING:
            self._on_ready(worker)
        elif kind == RETIRE and worker.phase is Phase.SERVING and not self.stopping:
            logger.info("Worker [%d] reached its request limit; replacing it", worker.pid)
            worker.phase = Phase.RETIRING
            self._spawn(worker.slot, replaces=worker)

    def _on_ready(self, worker: Worker) -> None:
        worker.phase = Phase.SERVING
        self.failures.pop(worker.slot, None)
        old, worker.replaces = worker.replaces, None
        if self.stopping:
            self._stop(worker)
            return
        if old is not None and old in self.workers:
            self._stop(old)
        if self.booted:
            logger.info("Worker [%d] ready", worker.pid)
            return
        serving = [w for w in self.workers if w.phase is Phase.SERVING]
        if len(serving) >= self.target:
            self.booted = True
            pids = ", ".join(str(w.pid) for w in serving)
            for where in self.listening:
                logger.info("Serving on %s (press CTRL+C to quit)", where)
            logger.info("Started %d worker%s [%s]", len(serving), "s" if len(serving) > 1 else "", pids)

    def _stop(self, worker: Worker) -> None:
        if worker.phase is Phase.STOPPING:
            return
        worker.phase = Phase.STOPPING
        worker.kill_at = time.monotonic() + self.graceful_timeout + KILL_MARGIN
        try:
            worker.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:  # pragma: no cover - exited in between; _reap sees it
            pass

    def _reap(self) -> None:
        for worker in list(self.workers):
            code = worker.proc.poll()
            if code is None:
                continue
            self.workers.remove(worker)
            if worker.channel.fileno() in self.selector.get_map():
                self._read(worker)  # a last E line may still be unread
                if worker.channel.fileno() in self.selector.get_map():
                    self.selector.unregister(worker.channel)
            worker.channel.close()
            self._on_exit(worker, code)

    def _on_exit(self, worker: Worker, code: int) -> None:
        if worker.phase is Phase.STOPPING or self.stopping:
            if self.booted and self.exit_code == 0:
                logger.info("Worker [%d] stopped", worker.pid)
            return
        if worker.phase is Phase.STARTING:
            reason = worker.error or f"worker exited with {_exit_reason(code)} before it was ready"
            if not self.booted and self.watcher is None:
                # Nothing serves yet: a broken app or environment, not a flaky worker.
                print(f"Error: {reason}", file=sys.stderr, flush=True)
                self.exit_code = 1
                self.stop()
                return
            logger.error("Worker [%d] failed to start: %s", worker.pid, reason)
            old = worker.replaces
            if old is not None and old in self.workers and old.phase is Phase.RETIRING:
                old.phase = Phase.SERVING  # keeps serving the previous code
                logger.warning("Worker [%d] keeps serving", old.pid)
            elif old is None and self.watcher is None:
                failures = self.failures[worker.slot] = self.failures.get(worker.slot, 0) + 1
                delay = min(RESPAWN_DELAY * 2 ** (failures - 1), RESPAWN_DELAY_MAX)
                logger.warning("Retrying in %.0f s", delay)
                self.respawn_at[worker.slot] = time.monotonic() + delay
            return
        logger.warning("Worker [%d] died (%s); starting a replacement", worker.pid, _exit_reason(code))
        pending = [w for w in self.workers if w.replaces is worker]
        if pending:
            pending[0].replaces = None  # its replacement was already on the way
        elif worker.slot < self.target:
            self._spawn(worker.slot)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.phase is Phase.STOPPING and now >= worker.kill_at:
                logger.warning("Worker [%d] did not stop in time; killing it", worker.pid)
                worker.proc.kill()
                worker.kill_at = float("inf")
        for slot, due in list(self.respawn_at.items()):
            if now >= due and not self.stopping:
                self._spawn(slot)

    # -- signals and commands -------------------------------------------------------------
    def _handle_signals(self) -> None:
        pending, self.pending_signals = self.pending_signals, []
        for signum in pending:
            if signum in (signal.SIGINT, signal.SIGTERM):
                if self.stopping:
                    logger.warning("Second %s: killing the workers", signal.Signals(signum).name)
                    for worker in self.workers:
                        worker.proc.kill()
                else:
                    logger.info("Shutting down: workers finish their in-flight requests")
                    self.stop()
            elif signum == signal.SIGHUP and not self.stopping:
                logger.info("SIGHUP: starting new workers to replace the running ones")
                self.reload()
            elif signum in (signal.SIGTTIN, signal.SIGTTOU) and not self.stopping:
                self._resize(+1 if signum == signal.SIGTTIN else -1)

    def stop(self) -> None:
        """Drain every worker; run() returns once they have all exited."""
        self.stopping = True
        self.respawn_at.clear()
        for worker in self.workers:
            self._stop(worker)

    def reload(self) -> None:
        """Replace every worker with a new one that imports the code afresh."""
        for worker in list(self.workers):
            if worker.phase is Phase.SERVING:
                worker.phase = Phase.RETIRING
                self._spawn(worker.slot, replaces=worker)
            elif worker.phase is Phase.STARTING:
                # It may have imported the code before this change: start over.
                self._spawn(worker.slot, replaces=worker.replaces)
                worker.replaces = None
                self._stop(worker)
        busy = {w.slot for w in self.workers if w.phase is not Phase.STOPPING}
        for slot in range(self.target):
            if slot not in busy:  # its worker died or never started: try again now
                self._spawn(slot)

    def _resize(self, delta: int) -> None:
        """SIGTTIN / SIGTTOU: one worker more or less, as gunicorn does."""
        if self.target + delta < 1:
            logger.warning("Already down to one worker")
            return
        self.target += delta
        logger.info("Now %d worker%s", self.target, "s" if self.target > 1 else "")
        if delta > 0:
            self._spawn(self.target - 1)
            return
        self.respawn_at.pop(self.target, None)
        for worker in self.workers:
            if worker.slot >= self.target:
                self._stop(worker)
        if self.release_slot is not None:
            self.release_slot(self.target)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:  # pragma: no cover - a real-time signal
            return f"signal {-code}"
    return f"exit code {code}"


def run_master(
    args: argparse.Namespace,
    argv: Sequence[str],
    open_sockets: Callable[[argparse.Namespace], list[socket.socket]],
    describe: Callable[[socket.socket], str],
) -> int:
    """Bind, start the workers and supervise them; the exit code of the CLI.

    ``open_sockets`` and ``describe`` are the CLI's: the master listens exactly
    where a single process would. A bad value or a failed bind raises (a
    BlazeasgiError or OSError), which the CLI reports as one line.
    """
    workers = worker_count(args)
    if use_reuse_port(args):
        slots = SlotSockets(
            bind_tcp(args.host, args.port, args.backlog, reuse_port=True), (args.host, args.backlog)
        )
    else:
        slots = SlotSockets(open_sockets(args))
    try:
        watcher = _watcher(args) if args.reload else None
        listening = [describe(sock) for sock in slots(0)]
        graceful = args.timeout_graceful_shutdown
        supervisor = Supervisor(argv, slots, workers, graceful, listening, watcher, slots.release)
        return supervisor.run()
    finally:
        slots.close()


def _watcher(args: argparse.Namespace) -> Watcher:
    from .reload import Watcher, combine_patterns

    includes, excludes = combine_patterns(args.reload_include or [], args.reload_exclude or [])
    return Watcher(args.reload_dir or [os.getcwd()], includes, excludes)  # may raise ReloadUnavailable
