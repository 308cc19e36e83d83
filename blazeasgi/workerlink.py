"""A worker's end of its channel to the master (supervisor.py), and the protocol.

Master and worker talk over one socketpair per worker, one line per message:

    worker -> master   R        ready: the app started and the socket is served
                       M        served its --limit-max-requests: replace me
                       E<text>  startup failed; <text> is the one-line reason
    master -> worker   nothing; end-of-file means the master is gone: drain, exit
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine.server import Server

logger = logging.getLogger("blazeasgi.error")

#: A worker's environment holds "<channel fd>:<listening fd>,<listening fd>..." here.
WORKER_ENV = "BLAZEASGI_WORKER_FDS"
READY, RETIRE, ERROR = b"R", b"M", b"E"


class WorkerLink:
    """A worker's end of its channel to the master (see the module docstring)."""

    def __init__(self, channel_fd: int, listen_fds: list[int]) -> None:
        self.channel = socket.socket(fileno=channel_fd)
        self.listen_fds = listen_fds

    @classmethod
    def from_environ(cls) -> WorkerLink | None:
        """The link when this process is a worker; the variable is removed so that
        processes the app starts are not mistaken for workers."""
        value = os.environ.pop(WORKER_ENV, None)
        if value is None:
            return None
        channel, _, listening = value.partition(":")
        return cls(int(channel), [int(fd) for fd in listening.split(",")])

    def sockets(self) -> list[socket.socket]:
        """The listening sockets the master opened, inherited by descriptor."""
        sockets = [socket.socket(fileno=fd) for fd in self.listen_fds]
        for sock in sockets:
            sock.setblocking(False)
        return sockets

    def fail(self, message: str) -> None:
        """Startup failed: the master prints (or logs) this line, not the worker."""
        self._send(ERROR + message.replace("\n", " ").encode("utf-8", "replace"))

    def retire(self) -> None:
        """The request limit was reached: keep serving until the master stops us."""
        self._send(RETIRE)

    def ready(self, server: Server) -> None:
        """Serving: tell the master, and drain should the master go away."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self.channel.fileno(), self._on_master, loop, server)
        self._send(READY)

    def _on_master(self, loop: asyncio.AbstractEventLoop, server: Server) -> None:
        try:
            data = self.channel.recv(64)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(self.channel.fileno())
            logger.warning("Master process is gone; stopping worker [%d]", os.getpid())
            server.request_stop()

    def _send(self, message: bytes) -> None:
        try:
            self.channel.sendall(message + b"\n")
        except OSError:  # the master is gone: _on_master stops this worker
            pass
