"""``blazeasgi module:app``: load a native App or an ASGI app and serve it.

Flags keep uvicorn's names. Every user error (unimportable app, port in use,
failed startup) is one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .asgi.adapter import ASGIAdapter
from .asgi.interfaces import INTERFACES, as_asgi3
from .config import Config
from .engine.server import ServedApp, Server, StartupFailed
from .envconfig import EnvFileError, parse_args
from .logs import LOG_LEVELS, LogConfigError, access_log_format_arg, configure_logging
from .native.app import App
from .proxy import TrustedHosts
from .sockets import ListenError, describe, parse_mode
from .sockets import open_sockets as listening_sockets
from .supervisor import UsageError, WorkerLink, max_requests, run_master, wants_master
from .supervisor import add_arguments as add_process_arguments
from .tls import TLSConfigError, load_tls

logger = logging.getLogger("blazeasgi.error")
DEFAULTS = Config()


class AppLoadError(Exception):
    """The app named on the command line could not be loaded."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="blazeasgi",
        description="Serve a native blazeasgi App or any ASGI 3 application.",
    )
    p.add_argument("app", help="the application as module:attribute, e.g. main:app")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="bind address or host name, every address it resolves to; '::' is dual-stack "
        "IPv6+IPv4 where the OS allows (default: 127.0.0.1)",
    )
    p.add_argument("--port", type=int, default=8000, help="bind port (default: 8000)")
    p.add_argument("--uds", help="bind to this UNIX domain socket instead (a stale socket file is replaced)")
    p.add_argument(
        "--uds-perms",
        type=_file_mode,
        default=None,
        metavar="MODE",
        help="mode of the --uds socket file, e.g. 660 or 0o660 (default: 0o666, as uvicorn)",
    )
    p.add_argument(
        "--fd",
        type=int,
        help="serve on this already-open socket file descriptor "
        "(systemd socket activation via LISTEN_FDS needs no flag)",
    )
    p.add_argument("--backlog", type=int, default=DEFAULTS.backlog, help="listen backlog (default: 2048)")
    p.add_argument("--ssl-certfile", metavar="PATH", help="PEM certificate (chain): serve HTTPS")
    p.add_argument("--ssl-keyfile", metavar="PATH", help="PEM private key (default: in --ssl-certfile)")
    p.add_argument("--ssl-keyfile-password", metavar="PASSWORD", help="password of an encrypted key")
    p.add_argument(
        "--ssl-ca-certs", metavar="PATH", help="CA bundle (or hashed directory) for client certificates"
    )
    p.add_argument(
        "--ssl-cert-reqs",
        type=int,
        choices=[0, 1, 2],
        default=DEFAULTS.ssl_cert_reqs,
        help="client certificate: 0 none, 1 optional, 2 required (default: 0)",
    )
    p.add_argument(
        "--ssl-ciphers",
        default=DEFAULTS.ssl_ciphers,
        help="OpenSSL cipher list for TLS <= 1.2 (default: Python's AEAD-only list; uvicorn uses TLSv1)",
    )
    p.add_argument(
        "--ssl-version",
        type=int,
        default=None,
        help="ssl.PROTOCOL_* number as uvicorn: 17 or 2 negotiate (default), 5 pins TLS 1.2",
    )
    p.add_argument(
        "--loop", choices=["auto", "asyncio", "uvloop"], default="auto", help="event loop (default: auto)"
    )
    p.add_argument(
        "--lifespan", choices=["auto", "on", "off"], default="auto", help="ASGI lifespan (default: auto)"
    )
    p.add_argument(
        "--interface",
        choices=list(INTERFACES),
        default="auto",
        help="application interface: ASGI 3, ASGI 2 or WSGI (default: auto, as uvicorn detects it)",
    )
    p.add_argument("--root-path", default="", help="ASGI root_path for apps mounted under a prefix")
    p.add_argument("--factory", action="store_true", help="treat APP as a factory called with no arguments")
    p.add_argument("--app-dir", default=".", help="directory added to sys.path before importing (default: .)")
    p.add_argument(
        "--timeout-keep-alive",
        type=float,
        default=DEFAULTS.keep_alive_timeout,
        help="close idle keep-alive connections after this many seconds (default: 5)",
    )
    p.add_argument(
        "--timeout-request-head",
        type=float,
        default=DEFAULTS.head_timeout,
        help="a request head must arrive within this many seconds (default: 10)",
    )
    p.add_argument(
        "--timeout-graceful-shutdown",
        type=float,
        default=DEFAULTS.graceful_shutdown_timeout,
        help="seconds in-flight requests get on shutdown (default: 30)",
    )
    p.add_argument(
        "--limit-concurrency", type=int, default=0, help="max connections; 503 past it (default: none)"
    )
    p.add_argument(
        "--limit-request-body",
        type=int,
        default=DEFAULTS.max_body_size,
        help="max request body bytes (default: 1 GiB; 0 = none)",
    )
    p.add_argument(
        "--limit-request-head",
        type=int,
        default=DEFAULTS.max_head_size,
        help="max request head bytes (default: 65536)",
    )
    p.add_argument(
        "--limit-request-fields",
        type=int,
        default=DEFAULTS.max_header_count,
        help="max header fields (default: 100)",
    )
    p.add_argument(
        "--ws",
        choices=["auto", "none", "websockets", "wsproto"],
        default=DEFAULTS.ws,
        help="WebSocket frame library; none serves upgrades as plain HTTP (default: auto)",
    )
    p.add_argument(
        "--ws-max-size",
        type=int,
        default=DEFAULTS.ws_max_size,
        help="largest incoming WebSocket message in bytes; past it: close 1009 (default: 16777216)",
    )
    p.add_argument(
        "--ws-ping-interval",
        type=float,
        default=DEFAULTS.ws_ping_interval,
        help="seconds between WebSocket keepalive pings; 0 disables (default: 20)",
    )
    p.add_argument(
        "--ws-ping-timeout",
        type=float,
        default=DEFAULTS.ws_ping_timeout,
        help="seconds a keepalive pong may take before closing with 1011; 0 waits forever (default: 20)",
    )
    p.add_argument(
        "--ws-per-message-deflate",
        type=_on_off,
        default=DEFAULTS.ws_per_message_deflate,
        metavar="BOOL",
        help="offer permessage-deflate compression (default: true)",
    )
    _switch(
        p,
        "proxy-headers",
        True,
        "trust Forwarded and X-Forwarded-For/-Proto from --forwarded-allow-ips (default)",
        "ignore proxy headers",
    )
    p.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="proxies to trust, comma-separated: addresses, networks (10.0.0.0/8), names, "
        "'unix:' (Unix socket peers) or '*' (default: $FORWARDED_ALLOW_IPS or 127.0.0.1,::1)",
    )
    p.add_argument(
        "--forwarded-host",
        action="store_true",
        default=False,
        help="also take the Host from a trusted proxy's X-Forwarded-Host/-Port or Forwarded host= "
        "(off: only safe if the proxy sets or strips them)",
    )
    p.add_argument(
        "--log-level",
        choices=list(LOG_LEVELS),
        default=None,
        help="log level (default: info; with --log-config, the file's)",
    )
    p.add_argument(
        "--log-config",
        metavar="PATH",
        help="logging config file: .json or .yaml/.yml (dictConfig) or .ini/.conf (fileConfig); "
        "it replaces blazeasgi's own handlers",
    )
    _switch(p, "use-colors", None, "colour level names (default: on a terminal)", "never colour the log")
    p.add_argument(
        "--access-log-format",
        type=access_log_format_arg,
        default=DEFAULTS.access_log_format,
        metavar="FORMAT",
        help="%%-format of the access line; fields: client, method, path, version, status, bytes, "
        "duration_ms, header_<name> (e.g. %%(header_user_agent)s) "
        "(default: '%%(client)s - \"%%(method)s %%(path)s HTTP/%%(version)s\" %%(status)d "
        "%%(bytes)d %%(duration_ms).1fms')",
    )
    p.add_argument(
        "--env-file",
        metavar="PATH",
        help="load KEY=VALUE lines into the environment before the app is imported; "
        "every --flag also reads BLAZEASGI_FLAG from the environment",
    )
    _switch(p, "access-log", True, "log each request (default)", "do not log each request")
    _switch(p, "server-header", True, "send Server (default)", "do not send Server")
    _switch(p, "date-header", True, "send Date (default)", "do not send Date")
    add_process_arguments(p)  # --workers, --limit-max-requests, --reload: supervisor.py
    p.add_argument("--version", action="version", version=f"blazeasgi {__version__}")
    return p


def _switch(p: argparse.ArgumentParser, name: str, default: bool | None, on: str, off: str) -> None:
    """``--name`` / ``--no-name``, uvicorn's spelling of an on/off flag (envconfig
    reads both as one BLAZEASGI_NAME boolean)."""
    dest = name.replace("-", "_")
    p.add_argument(f"--{name}", dest=dest, action="store_true", default=default, help=on)
    p.add_argument(f"--no-{name}", dest=dest, action="store_false", help=off)


def _on_off(value: str) -> bool:
    """uvicorn's --ws-per-message-deflate takes a boolean value."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _file_mode(value: str) -> int:
    try:
        return parse_mode(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def import_from_string(target: str, factory: bool = False) -> Any:
    module_name, sep, attrs = target.partition(":")
    if not sep or not module_name or not attrs:
        raise AppLoadError(f'Import string "{target}" must be in format "<module>:<attribute>".')
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name and not module_name.startswith(f"{exc.name}."):
            raise AppLoadError(f'Error importing "{module_name}": {exc}') from exc
        raise AppLoadError(f'Could not import module "{module_name}".') from exc
    except Exception as exc:
        raise AppLoadError(f'Error importing "{module_name}": {type(exc).__name__}: {exc}') from exc
    obj: Any = module
    try:
        for attr in attrs.split("."):
            obj = getattr(obj, attr)
    except AttributeError:
        raise AppLoadError(f'Attribute "{attrs}" not found in module "{module_name}".') from None
    if factory:
        if not callable(obj):
            raise AppLoadError(f'Factory "{target}" is not callable.')
        try:
            obj = obj()
        except Exception as exc:
            raise AppLoadError(f'Factory "{target}" failed: {type(exc).__name__}: {exc}') from exc
    return obj


def to_served_app(
    obj: Any,
    root_path: str = "",
    lifespan: str = "auto",
    interface: str = "auto",
    proxy_headers: bool = True,
    forwarded_allow_ips: str | None = None,
    forwarded_host: bool = False,
) -> ServedApp:
    """A native App as is; any other callable as an ASGI 3, ASGI 2 or WSGI app.

    ``interface`` is uvicorn's ``--interface``: ``auto`` tells ASGI 3 from ASGI 2
    the way uvicorn does; a WSGI app needs ``wsgi``. ``proxy_headers`` and
    ``forwarded_allow_ips`` are uvicorn's ``--proxy-headers`` (on by default) and
    ``--forwarded-allow-ips`` (default: ``$FORWARDED_ALLOW_IPS`` or 127.0.0.1,::1);
    ``forwarded_host`` is ``--forwarded-host``. All apply to both interfaces.
    """
    if proxy_headers:
        check_forwarded_allow_ips(forwarded_allow_ips)
    if isinstance(obj, App):
        obj.configure(
            root_path=root_path,
            lifespan=lifespan,
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
            forwarded_host=forwarded_host,
        )
        return obj
    if not callable(obj):
        raise AppLoadError(f"{obj!r} is neither a blazeasgi App nor an ASGI callable.")
    app, _ = as_asgi3(obj, interface)
    return ASGIAdapter(
        app,
        root_path=root_path,
        lifespan=lifespan,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        forwarded_host=forwarded_host,
    )


def check_forwarded_allow_ips(value: str | None) -> None:
    """AppLoadError naming a bad entry in the list of trusted proxies."""
    try:
        TrustedHosts(value)
    except ValueError as exc:  # the list may come from the flag or the environment
        raise AppLoadError(f"--forwarded-allow-ips / $FORWARDED_ALLOW_IPS: {exc}") from None


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise AppLoadError("--loop uvloop: uvloop is not installed (pip install uvloop).") from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def open_sockets(args: argparse.Namespace) -> list[socket.socket]:
    """The listening sockets the flags name; raises ListenError (blazeasgi.sockets)."""
    return listening_sockets(
        args.host,
        args.port,
        uds=args.uds,
        uds_perms=args.uds_perms,
        fd=args.fd,
        backlog=args.backlog,
    )


def config_from_args(args: argparse.Namespace) -> Config:
    return Config(
        keep_alive_timeout=args.timeout_keep_alive,
        head_timeout=args.timeout_request_head,
        graceful_shutdown_timeout=args.timeout_graceful_shutdown,
        max_connections=args.limit_concurrency,
        max_body_size=args.limit_request_body,
        max_head_size=args.limit_request_head,
        max_header_count=args.limit_request_fields,
        backlog=args.backlog,
        access_log=args.access_log,
        access_log_format=args.access_log_format,
        server_header=args.server_header,
        date_header=args.date_header,
        root_path=args.root_path,
        ws=args.ws,
        ws_max_size=args.ws_max_size,
        ws_ping_interval=args.ws_ping_interval,
        ws_ping_timeout=args.ws_ping_timeout,
        ws_per_message_deflate=args.ws_per_message_deflate,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        ssl_keyfile_password=args.ssl_keyfile_password,
        ssl_ca_certs=args.ssl_ca_certs,
        ssl_cert_reqs=args.ssl_cert_reqs,
        ssl_ciphers=args.ssl_ciphers,
        ssl_version=args.ssl_version,
        max_requests=max_requests(args),
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":  # `blazeasgi bench myapp:app`: compare with uvicorn
        from .bench import main as bench_main

        return bench_main(argv[1:])
    try:
        # BLAZEASGI_* variables and --env-file, all before the app is imported.
        args = parse_args(build_parser(), argv)
        configure_logging(args.log_level, args.log_config, args.use_colors)
    except (EnvFileError, LogConfigError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    # A worker of a master (supervisor.py) serves the master's sockets and reports
    # errors to it; else --workers N, --reload or max-requests make this the master.
    link = WorkerLink.from_environ()
    try:
        if link is None and wants_master(args):
            return run_master(args, argv, open_sockets, lambda sock: _describe(sock, config_from_args(args)))
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    try:
        # A bad certificate, key or password: one line now, before the app loads.
        load_tls(config_from_args(args))
        sys.path.insert(0, os.path.abspath(args.app_dir))
        if args.proxy_headers:  # before the import, which may build an App that reads it
            check_forwarded_allow_ips(args.forwarded_allow_ips)
        served = to_served_app(
            import_from_string(args.app, args.factory),
            args.root_path,
            args.lifespan,
            args.interface,
            proxy_headers=args.proxy_headers,
            forwarded_allow_ips=args.forwarded_allow_ips,
            forwarded_host=args.forwarded_host,
        )
        factory = loop_factory(args.loop)
        sockets = open_sockets(args) if link is None else link.sockets()
    except (AppLoadError, ListenError, TLSConfigError) as exc:
        return _fail(str(exc), link)
    except OSError as exc:
        return _fail(f"could not bind: {exc}", link)
    config = config_from_args(args)
    return serve(served, config, sockets, factory, link)


def _fail(message: str, link: WorkerLink | None = None) -> int:
    """A fatal error as one line: on stderr, or to the master, which prints it once."""
    if link is not None:
        link.fail(message)
    else:
        print(f"Error: {message}", file=sys.stderr)
    return 1


def serve(
    app: ServedApp,
    config: Config,
    sockets: list[socket.socket],
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    link: WorkerLink | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM. ``link``: this is a worker; its master logs
    where it serves and when it stops, and replaces it at --limit-max-requests."""
    server = Server(app, config, on_max_requests=link.retire if link is not None else None)

    async def run() -> None:
        task = asyncio.ensure_future(server.serve(sockets))
        started = asyncio.ensure_future(server.started.wait())
        await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
        if started.done() and link is not None:
            link.ready(server)
        elif started.done():
            for sock in sockets:
                logger.info("Serving on %s (press CTRL+C to quit)", _describe(sock, config))
        else:
            started.cancel()
        await task

    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(run())
    except StartupFailed as exc:
        return _fail(f"application startup failed: {exc}", link)
    except KeyboardInterrupt:  # pragma: no cover - signal handlers normally catch it
        pass
    finally:
        for sock in sockets:
            sock.close()
    if link is None:
        logger.info("Stopped")
    return 0


def _describe(sock: socket.socket, config: Config = DEFAULTS) -> str:
    return describe(sock, "https" if config.ssl_certfile else "http")


def run(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: Config | None = None,
    loop: str = "auto",
    lifespan: str = "auto",
) -> int:
    """Programmatic equivalent of the CLI, like ``uvicorn.run``."""
    config = config or Config()
    served = to_served_app(app, config.root_path, lifespan)
    return serve(served, config, listening_sockets(host, port, backlog=config.backlog), loop_factory(loop))
