"""``blazeasgi module:app``: load a native App or an ASGI app and serve it.

Flags keep uvicorn's names (defined in blazeasgi/options.py). Every user error
(a BlazeasgiError: app not found, port in use, failed startup) is one line on
stderr and exit code 1; only an exception raised by the user's own module while
it is imported shows its traceback first.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from ._compiled import STATUS
from .apploader import AppLoadError, import_from_string
from .asgi.adapter import ASGIAdapter
from .asgi.interfaces import as_asgi3
from .config import Config
from .engine.http2 import serves_http2
from .engine.server import ServedApp, StartupFailed, server_tls
from .envconfig import parse_args
from .errors import BlazeasgiError
from .lifecycle import Announced, AnnouncingServer
from .logs import configure_logging
from .native.app import App
from .options import add_options, config_kwargs
from .processflags import max_requests, wants_master
from .settings import InterfaceSettings
from .sockets import describe
from .sockets import open_sockets as listening_sockets
from .supervisor import run_master
from .tls import ServerTLS
from .workerlink import WorkerLink

logger = logging.getLogger("blazeasgi.error")
DEFAULTS = Config()


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser: the APP argument, then every option of blazeasgi.options."""
    p = argparse.ArgumentParser(
        prog="blazeasgi",
        description="Serve a native blazeasgi App or any ASGI 3 application.",
        epilog=BENCH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("app", help="the application as module:attribute, e.g. main:app")
    add_options(p)
    p.add_argument("--version", action="version", version=f"blazeasgi {__version__}, {STATUS}")
    return p


BENCH_HELP = """\
subcommand:
  blazeasgi bench APP [--path /...]
                        serve your own app on blazeasgi and on uvicorn under the same
                        load (wrk) and print the ratio per path; needs
                        `pip install 'blazeasgi[bench]'` and wrk on PATH
                        (blazeasgi bench --help for its options)
"""


def to_served_app(obj: Any, settings: InterfaceSettings | None = None, interface: str = "auto") -> ServedApp:
    """A native App as is; any other callable as an ASGI 3, ASGI 2 or WSGI app.

    ``settings`` (root_path, lifespan, proxy headers; interface_settings builds
    them from the CLI's Config) apply to both interfaces; by default
    InterfaceSettings(). ``interface`` is uvicorn's ``--interface``: ``auto``
    tells ASGI 3 from ASGI 2 the way uvicorn does; a WSGI app needs ``wsgi``.
    """
    if settings is None:
        settings = InterfaceSettings()
    if isinstance(obj, App):
        obj.configure(settings)
        return obj
    if not callable(obj):
        raise AppLoadError(f"{obj!r} is neither a blazeasgi App nor an ASGI callable.")
    app, _ = as_asgi3(obj, interface)
    return ASGIAdapter(app, settings)


def interface_settings(config: Config) -> InterfaceSettings:
    """The interfaces' settings from ``config``: uvicorn's ``--root-path``,
    ``--lifespan``, ``--proxy-headers`` (on by default), ``--forwarded-allow-ips``
    (default: ``$FORWARDED_ALLOW_IPS`` or 127.0.0.1,::1) and ``--forwarded-host``.
    AppLoadError naming a bad entry in the list of trusted proxies."""
    try:
        return InterfaceSettings.from_config(config)
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
    """The Config the parsed options describe. Call it once per process: each call
    draws a fresh --limit-max-requests-jitter."""
    return Config(**config_kwargs(args), max_requests=max_requests(args))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":  # `blazeasgi bench myapp:app`: compare with uvicorn
        from .bench import main as bench_main

        return bench_main(argv[1:])
    # A worker of a master (supervisor.py) serves the master's sockets and reports
    # errors to it; else --workers N, --reload or max-requests make this the master.
    link = WorkerLink.from_environ()
    try:
        return _main(argv, link)
    except BlazeasgiError as exc:  # every one-line user error of ours ends here
        if exc.details:
            sys.stderr.write(exc.details)
            sys.stderr.flush()
        return _fail(str(exc), link)
    except OSError as exc:
        return _fail(f"could not bind: {exc}", link)


def _main(argv: list[str], link: WorkerLink | None) -> int:
    # BLAZEASGI_* variables and --env-file, all before the app is imported.
    args = parse_args(build_parser(), argv)
    configure_logging(args.log_level, args.log_config, args.use_colors)
    config = config_from_args(args)  # once: it draws this process's max-requests jitter
    serves_http2(config)  # --http2 without its codec: one line, before any worker starts
    if link is None and wants_master(args):
        return run_master(args, argv, open_sockets, lambda sock: _describe(sock, config))
    # A bad certificate, key or password: one line now, before the app loads; the
    # server serves with this context (loaded once).
    tls = server_tls(config)
    sys.path.insert(0, os.path.abspath(args.app_dir))
    # Before the import, which may build an App that reads $FORWARDED_ALLOW_IPS.
    settings = interface_settings(config)
    served = to_served_app(import_from_string(args.app, args.factory), settings, args.interface)
    factory = loop_factory(args.loop)
    sockets = open_sockets(args) if link is None else link.sockets()
    return serve(served, config, sockets, factory, link, tls)


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
    tls: ServerTLS | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM, logging uvicorn's lines (blazeasgi.lifecycle).
    ``link``: this is a worker; its master logs where it serves and when it
    stops, and replaces it at --limit-max-requests. ``tls``: the context
    server_tls(config) loaded (else the server loads it)."""
    announced = Announced(app, process=link is None)
    server = AnnouncingServer(
        announced, config, on_max_requests=link.retire if link is not None else None, tls=tls
    )

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
        logger.info("Finished server process [%d]", os.getpid())
    return 0


def _describe(sock: socket.socket, config: Config = DEFAULTS) -> str:
    return describe(sock, "https" if config.ssl_certfile else "http")


def run(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: Config | None = None,
    loop: str = "auto",
    lifespan: str | None = None,
) -> int:
    """Programmatic equivalent of the CLI, like ``uvicorn.run``. ``lifespan``:
    instead of config.lifespan."""
    config = config or Config()
    if lifespan is not None:
        config = dataclasses.replace(config, lifespan=lifespan)
    served = to_served_app(app, interface_settings(config))
    return serve(served, config, listening_sockets(host, port, backlog=config.backlog), loop_factory(loop))
