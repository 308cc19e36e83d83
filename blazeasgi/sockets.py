"""Listening sockets from the command line's flags.

``open_sockets`` turns flag values into plain, bound, listening, non-blocking
socket objects and nothing more: no event loop, no app. A supervisor can open
them once and let the workers it forks inherit them.

Where a socket comes from, first match wins:
  1. ``--fd N``: a descriptor the parent process opened;
  2. ``--uds PATH``: a UNIX domain socket, created here;
  3. systemd socket activation: ``LISTEN_PID`` is this process and ``LISTEN_FDS``
     counts descriptors from 3 (sd_listen_fds(3));
  4. ``--host``/``--port``: TCP on every address the host resolves to.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Mapping
from typing import Any

from .errors import BlazeasgiError

#: uvicorn's mode for a --uds socket file: any local user may connect (the
#: directory's permissions still apply). --uds-perms 660 keeps it to the group.
DEFAULT_UDS_PERMS = 0o666
#: sd_listen_fds(3): activated sockets are the descriptors from 3 on.
SD_LISTEN_FDS_START = 3
#: Bind errors that mean "this address does not exist here" (e.g. localhost's
#: ::1 on a host with IPv6 disabled): skipped when another address binds.
_ABSENT_ADDRESS = frozenset({errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})


class ListenError(BlazeasgiError, OSError):
    """The sockets cannot be opened; the message is one line for the user.

    An OSError, so that code catching bind errors the usual way catches it too.
    """


def open_sockets(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    uds: str | None = None,
    uds_perms: int | None = None,
    fd: int | None = None,
    backlog: int = 2048,
    reuse_port: bool = False,
    environ: Mapping[str, str] | None = None,
) -> list[socket.socket]:
    """The listening sockets the flags describe (see the module docstring).

    ``environ`` (default ``os.environ``) is read for systemd's LISTEN_PID and
    LISTEN_FDS. Raises ListenError.
    """
    if fd is not None:
        return [adopt_socket(fd, f"--fd {fd}")]
    if uds is not None:
        return [bind_unix(uds, uds_perms, backlog)]
    activated = systemd_fds(os.environ if environ is None else environ)
    if activated:
        return [adopt_socket(n, f"systemd socket (fd {n})") for n in activated]
    return bind_tcp(host, port, backlog, reuse_port)


def systemd_fds(environ: Mapping[str, str]) -> list[int]:
    """The descriptors systemd passed to this process ([] when none)."""
    pid, count = environ.get("LISTEN_PID"), environ.get("LISTEN_FDS")
    if not pid or not count:
        return []
    if pid.strip() != str(os.getpid()):  # meant for another process (our parent)
        return []
    try:
        n = int(count)
    except ValueError:
        raise ListenError(f"LISTEN_FDS={count!r} is not a number") from None
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + max(n, 0)))


def adopt_socket(fd: int, what: str) -> socket.socket:
    """A socket object owning the already-open, bound stream socket ``fd``.

    It need not listen yet: the event loop calls listen() with the backlog.
    """
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ListenError(f"{what}: not an open socket ({exc.strerror or exc})") from None
    problem = None
    if sock.type != socket.SOCK_STREAM:
        problem = "not a stream socket"
    elif sock.family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        problem = "not a TCP or UNIX socket"
    elif not _is_bound(sock.getsockname()):
        # listen() would pick a random port: surely not what was meant.
        problem = "not bound to an address"
    if problem is not None:
        sock.detach()  # not ours to close
        raise ListenError(f"{what}: {problem}")
    sock.setblocking(False)
    return sock


def _is_bound(name: Any) -> bool:
    if isinstance(name, tuple):
        return int(name[1]) != 0
    return bool(name)  # AF_UNIX: '' (or b'') when unbound


def bind_unix(path: str, perms: int | None, backlog: int) -> socket.socket:
    """A UNIX socket at ``path``, replacing a stale socket file left by a crash."""
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        # Before listen(): nobody can connect while the mode is still the umask's.
        os.chmod(path, DEFAULT_UDS_PERMS if perms is None else perms)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ListenError(f"could not bind to unix:{path}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ListenError(f"--uds {path}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(mode):
        raise ListenError(f"--uds {path}: exists and is not a socket; not replacing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        # Only a refusal means nobody listens and the file is a crash's leftover.
        result = probe.connect_ex(path)
    if result in (0, errno.EAGAIN, errno.EINPROGRESS):  # EAGAIN: its backlog is full
        raise ListenError(f"another server is listening on unix:{path}")
    if result not in (errno.ECONNREFUSED, errno.ENOENT):
        raise ListenError(f"--uds {path}: {os.strerror(result)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def bind_tcp(host: str, port: int, backlog: int, reuse_port: bool = False) -> list[socket.socket]:
    """One listening socket per address ``host`` resolves to, all on one port.

    ``localhost`` gives 127.0.0.1 and ::1 (where IPv6 is up). ``::`` is one
    dual-stack socket, IPv4 included, where the OS allows it (Linux, macOS,
    Windows; OpenBSD keeps it IPv6-only).
    """
    if not 0 <= port <= 65535:
        raise ListenError(f"--port {port}: not a port number (0-65535)")
    if host.startswith("[") and host.endswith("]"):  # [::1], as in URLs
        host = host[1:-1]
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ListenError(f"--host {host!r}: cannot resolve it ({reason})") from None
    addresses: list[tuple[socket.AddressFamily, Any]] = []
    for info_family, _, _, _, info_address in infos:
        if info_family in (socket.AF_INET, socket.AF_INET6) and (info_family, info_address) not in addresses:
            addresses.append((info_family, info_address))
    has_ipv4 = any(family == socket.AF_INET for family, _ in addresses)
    sockets: list[socket.socket] = []
    absent: str | None = None
    try:
        for family, sockaddr in addresses:
            if sockets and port == 0:  # the same (first) free port on every address
                sockaddr = (sockaddr[0], sockets[0].getsockname()[1], *sockaddr[2:])
            try:
                sockets.append(_bind_inet(family, sockaddr, backlog, reuse_port, v6only=has_ipv4))
            except OSError as exc:
                message = f"could not bind to {_show(sockaddr)}: {exc.strerror or exc}"
                if exc.errno not in _ABSENT_ADDRESS:
                    raise ListenError(message) from None
                absent = absent or message
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if not sockets:
        raise ListenError(absent or f"--host {host!r}: no IPv4 or IPv6 address")
    return sockets


def _bind_inet(
    family: socket.AddressFamily, sockaddr: Any, backlog: int, reuse_port: bool, v6only: bool
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # Off: "::" takes IPv4 too, unless the host also resolved to an IPv4
            # address bound separately. Some systems refuse: IPv6 only there.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _show(sockaddr: Any) -> str:
    host = str(sockaddr[0])
    return f"[{host}]:{sockaddr[1]}" if ":" in host else f"{host}:{sockaddr[1]}"


def describe(sock: socket.socket, scheme: str = "http") -> str:
    """How a user reaches ``sock``: ``https://[::1]:8443``, ``unix:/run/app.sock``."""
    name = sock.getsockname()
    if isinstance(name, tuple):
        return f"{scheme}://{_show(name)}"
    path = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    return f"unix:{path}" + (" (TLS)" if scheme == "https" else "")


def parse_mode(text: str) -> int:
    """A file mode as uvicorn users write it: 660, 0660 or 0o660."""
    digits = text[2:] if text[:2].lower() == "0o" else text
    try:
        mode = int(digits, 8)
    except ValueError:
        raise ValueError(f"{text!r} is not an octal mode such as 660 or 0o660") from None
    if not 0 <= mode <= 0o777:
        raise ValueError(f"{text!r} is not a file mode (0 to 0o777)")
    return mode


class SlotSockets:
    """The listening sockets each worker place (slot) serves.

    Shared: every slot serves the one group the CLI flags name. SO_REUSEPORT: each
    slot has its own group on the same port, made on first use and kept by the
    master across that slot's replacements, so what queues on it while one worker
    gives way to the next waits instead of being reset. The kernel spreads new
    connections over the groups by a hash of the client's address and port.
    """

    def __init__(self, first: list[socket.socket], reuse_port: tuple[str, int] | None = None) -> None:
        self.groups = {0: first}
        #: (host, backlog) when each slot gets its own SO_REUSEPORT group.
        self.reuse_port = reuse_port

    def __call__(self, slot: int) -> list[socket.socket]:
        if self.reuse_port is None:
            return self.groups[0]
        if slot not in self.groups:
            host, backlog = self.reuse_port
            port = self.groups[0][0].getsockname()[1]  # the one --port 0 picked, for every slot
            self.groups[slot] = bind_tcp(host, port, backlog, reuse_port=True)
        return self.groups[slot]

    def release(self, slot: int) -> None:
        """The slot is gone (SIGTTOU): stop the kernel routing connections to it."""
        if self.reuse_port is not None and slot:
            for sock in self.groups.pop(slot, []):
                sock.close()

    def close(self) -> None:
        for group in self.groups.values():
            for sock in group:
                sock.close()
