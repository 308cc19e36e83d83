"""Every command-line option, defined once.

``OPTIONS`` is the one table: the CLI's argparse parser is built from it
(add_options), the environment is read through it (envconfig derives
``BLAZEASGI_<FLAG>`` from each flag, plus the explicit ``env`` alias), and the
Config is filled from it (config_kwargs). An option's default is its Config
field's own default unless it says otherwise; ``shown`` is that default as
``--help`` and the README's "Command line" table state it (tests/process/test_options.py
holds the README to this table).

Adding a flag: a Config field if the engine needs it, one Option here, one README row.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .asgi.interfaces import INTERFACES
from .config import Config
from .logs import DEFAULT_ACCESS_LOG_FORMAT, LOG_LEVELS, access_log_format_arg
from .sockets import parse_mode

#: value: ``--flag VALUE``; flag: ``--flag`` alone (store_true); switch: ``--flag``
#: and ``--no-flag``, one boolean (uvicorn's spelling); append: repeatable.
Kind = Literal["value", "flag", "switch", "append"]


class _FromConfig:
    def __repr__(self) -> str:
        return "FROM_CONFIG"


#: The default of an option that fills a Config field: that field's own default.
FROM_CONFIG: Any = _FromConfig()
_CONFIG_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Config)}


@dataclass(frozen=True, slots=True)
class Option:
    #: The long option, e.g. ``--timeout-keep-alive``; a switch also gets ``--no-...``.
    flag: str
    help: str
    #: The Config field the value fills (None: only the CLI uses it).
    field: str | None = None
    kind: Kind = "value"
    type: Callable[[str], Any] | None = None
    choices: Sequence[Any] | None = None
    default: Any = FROM_CONFIG
    #: The default as people read it ("1 GiB"); None when there is none to state.
    shown: str | None = None
    metavar: str | None = None
    #: Help of ``--no-<flag>`` (switches only).
    off_help: str | None = None
    #: An unprefixed variable (uvicorn's) read when ``BLAZEASGI_<FLAG>`` is unset.
    env: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def flags(self) -> tuple[str, ...]:
        """Every option string: the flag, and ``--no-<flag>`` for a switch."""
        if self.kind == "switch":
            return (self.flag, "--no-" + self.flag.removeprefix("--"))
        return (self.flag,)

    @property
    def default_value(self) -> Any:
        if self.default is not FROM_CONFIG:
            return self.default
        if self.field is not None:
            return _CONFIG_DEFAULTS[self.field]
        return False if self.kind == "flag" else None

    @property
    def full_help(self) -> str:
        # argparse %-formats help strings: a literal % must be doubled.
        text = self.help.replace("%", "%%")
        return f"{text} (default: {self.shown.replace('%', '%%')})" if self.shown else text


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


# In --help order; flags keep uvicorn's names.
OPTIONS: tuple[Option, ...] = (
    # -- where to listen (blazeasgi/sockets.py) ------------------------------------------------
    Option(
        "--host",
        "bind address or host name, every address it resolves to; '::' is dual-stack "
        "IPv6+IPv4 where the OS allows",
        default="127.0.0.1",
        shown="127.0.0.1",
    ),
    Option("--port", "bind port", type=int, default=8000, shown="8000"),
    Option("--uds", "bind to this UNIX domain socket instead (a stale socket file is replaced)"),
    Option(
        "--uds-perms",
        "mode of the --uds socket file, e.g. 660 or 0o660; uvicorn's default",
        type=_file_mode,
        metavar="MODE",
        shown="0o666",
    ),
    Option(
        "--fd",
        "serve on this already-open socket file descriptor "
        "(systemd socket activation via LISTEN_FDS needs no flag)",
        type=int,
    ),
    Option("--backlog", "listen backlog", "backlog", type=int, shown="2048"),
    # -- TLS (blazeasgi/tls.py) -----------------------------------------------------------------
    Option("--ssl-certfile", "PEM certificate (chain): serve HTTPS", "ssl_certfile", metavar="PATH"),
    Option("--ssl-keyfile", "PEM private key (else: in --ssl-certfile)", "ssl_keyfile", metavar="PATH"),
    Option(
        "--ssl-keyfile-password",
        "password of an encrypted key",
        "ssl_keyfile_password",
        metavar="PASSWORD",
    ),
    Option(
        "--ssl-ca-certs",
        "CA bundle (or hashed directory) for client certificates",
        "ssl_ca_certs",
        metavar="PATH",
    ),
    Option(
        "--ssl-cert-reqs",
        "client certificate: 0 none, 1 optional, 2 required",
        "ssl_cert_reqs",
        type=int,
        choices=(0, 1, 2),
        shown="0",
    ),
    Option(
        "--ssl-ciphers",
        "OpenSSL cipher list for TLS <= 1.2 (Python's is AEAD-only; uvicorn uses TLSv1)",
        "ssl_ciphers",
        shown="Python's list",
    ),
    Option(
        "--ssl-version",
        "ssl.PROTOCOL_* number as uvicorn: 17 or 2 negotiate, 5 pins TLS 1.2",
        "ssl_version",
        type=int,
        shown="negotiate",
    ),
    # -- the application -----------------------------------------------------------------------
    Option(
        "--loop",
        "event loop (uvloop when installed)",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        shown="auto",
    ),
    Option("--lifespan", "ASGI lifespan", "lifespan", choices=("auto", "on", "off"), shown="auto"),
    Option(
        "--interface",
        "application interface: ASGI 3, ASGI 2 or WSGI (auto: as uvicorn detects it)",
        choices=tuple(INTERFACES),
        default="auto",
        shown="auto",
    ),
    Option("--root-path", "ASGI root_path for apps mounted under a prefix", "root_path", shown='""'),
    Option("--factory", "treat APP as a factory called with no arguments", kind="flag", shown="off"),
    Option("--app-dir", "directory added to sys.path before importing", default=".", shown="."),
    # -- timeouts and limits (blazeasgi/config.py) ---------------------------------------------
    Option(
        "--timeout-keep-alive",
        "close idle keep-alive connections after this many seconds",
        "keep_alive_timeout",
        type=float,
        shown="5",
    ),
    Option(
        "--timeout-request-head",
        "a request head must arrive within this many seconds",
        "head_timeout",
        type=float,
        shown="10",
    ),
    Option(
        "--timeout-graceful-shutdown",
        "seconds in-flight requests get on shutdown",
        "graceful_shutdown_timeout",
        type=float,
        shown="30",
    ),
    Option("--limit-concurrency", "max connections; 503 past it", "max_connections", type=int, shown="none"),
    Option(
        "--limit-request-body", "max request body bytes; 0 = none", "max_body_size", type=int, shown="1 GiB"
    ),
    Option("--limit-request-head", "max request head bytes", "max_head_size", type=int, shown="65536"),
    Option("--limit-request-fields", "max header fields", "max_header_count", type=int, shown="100"),
    # -- WebSockets ----------------------------------------------------------------------------
    Option(
        "--ws",
        "WebSocket frame library; none serves upgrades as plain HTTP",
        "ws",
        choices=("auto", "none", "websockets", "wsproto"),
        shown="auto",
    ),
    Option(
        "--ws-max-size",
        "largest incoming WebSocket message in bytes; past it: close 1009",
        "ws_max_size",
        type=int,
        shown="16 MiB",
    ),
    Option(
        "--ws-ping-interval",
        "seconds between WebSocket keepalive pings; 0 disables",
        "ws_ping_interval",
        type=float,
        shown="20",
    ),
    Option(
        "--ws-ping-timeout",
        "seconds a keepalive pong may take before closing with 1011; 0 waits forever",
        "ws_ping_timeout",
        type=float,
        shown="20",
    ),
    Option(
        "--ws-per-message-deflate",
        "offer permessage-deflate compression (true or false)",
        "ws_per_message_deflate",
        type=_on_off,
        metavar="BOOL",
        shown="on",
    ),
    # -- HTTP/2 (blazeasgi/engine/http2.py) ---------------------------------------------------
    Option(
        "--http2",
        "serve HTTP/2 too: h2c with prior knowledge, and h2 by ALPN over TLS (needs zttp: "
        "asked for without it, the server does not start)",
        "http2",
        kind="switch",
        shown="on when zttp is installed",
        off_help="serve HTTP/1.1 only",
    ),
    # -- proxies (blazeasgi/proxy.py) ----------------------------------------------------------
    Option(
        "--proxy-headers",
        "trust Forwarded and X-Forwarded-For/-Proto from --forwarded-allow-ips",
        "proxy_headers",
        kind="switch",
        shown="on",
        off_help="ignore proxy headers",
    ),
    Option(
        "--forwarded-allow-ips",
        "proxies to trust, comma-separated: addresses, networks (10.0.0.0/8), names, "
        "'unix:' (Unix socket peers) or '*'; else $FORWARDED_ALLOW_IPS",
        "forwarded_allow_ips",
        shown="127.0.0.1,::1",
        env="FORWARDED_ALLOW_IPS",
    ),
    Option(
        "--forwarded-host",
        "also take the Host from a trusted proxy's X-Forwarded-Host/-Port or Forwarded host= "
        "(only safe if the proxy sets or strips them)",
        "forwarded_host",
        kind="flag",
        shown="off",
    ),
    # -- logging (blazeasgi/logs.py) -----------------------------------------------------------
    Option(
        "--log-level",
        "log level (with --log-config: the file's unless given)",
        choices=tuple(LOG_LEVELS),
        shown="info",
    ),
    Option(
        "--log-config",
        "logging config file: .json or .yaml/.yml (dictConfig) or .ini/.conf (fileConfig); "
        "it replaces blazeasgi's own handlers",
        metavar="PATH",
    ),
    Option(
        "--use-colors",
        "colour level names",
        kind="switch",
        default=None,
        shown="on a TTY",
        off_help="never colour the log",
    ),
    Option(
        "--access-log-format",
        "%-format of the access line; fields: client, method, path, version, status, bytes, "
        "duration_ms, header_<name> (e.g. %(header_user_agent)s)",
        "access_log_format",
        type=access_log_format_arg,
        metavar="FORMAT",
        shown=f"'{DEFAULT_ACCESS_LOG_FORMAT}'",
    ),
    Option(
        "--env-file",
        "load KEY=VALUE lines into the environment before the app is imported; "
        "every --flag also reads BLAZEASGI_FLAG from the environment",
        metavar="PATH",
    ),
    Option(
        "--access-log",
        "log each request",
        "access_log",
        kind="switch",
        shown="on",
        off_help="do not log each request",
    ),
    Option(
        "--server-header",
        "send Server",
        "server_header",
        kind="switch",
        shown="on",
        off_help="do not send Server",
    ),
    Option(
        "--date-header", "send Date", "date_header", kind="switch", shown="on", off_help="do not send Date"
    ),
    # -- processes (blazeasgi/supervisor.py; --reuse-port is Granian's idea) -------------------
    Option(
        "--workers",
        "worker processes; more than 1 starts a master process",
        type=int,
        shown="$WEB_CONCURRENCY or 1",
        env="WEB_CONCURRENCY",
    ),
    Option(
        "--reuse-port",
        "give each worker its own SO_REUSEPORT socket (spreads load evenly)",
        kind="switch",
        default=None,
        shown="on for TCP on Linux",
        off_help="let every worker accept from one shared socket instead",
    ),
    Option(
        "--limit-max-requests",
        "replace a worker after it has served this many requests",
        type=int,
        default=0,
        shown="off",
    ),
    Option(
        "--limit-max-requests-jitter",
        "add random 0..N to each worker's --limit-max-requests so they do not restart together",
        type=int,
        default=0,
        shown="0",
    ),
    Option("--reload", "restart the workers when source files change", kind="flag", shown="off"),
    Option(
        "--reload-dir",
        "directory to watch, repeatable",
        kind="append",
        metavar="DIR",
        shown="cwd",
    ),
    Option(
        "--reload-include",
        "file pattern that also triggers a reload, repeatable (added to the default)",
        kind="append",
        metavar="GLOB",
        shown="*.py",
    ),
    Option(
        "--reload-exclude",
        "file or directory pattern to ignore too, repeatable (added to the default)",
        kind="append",
        metavar="GLOB",
        shown=".* *.py[cod] *.sw? *~",
    ),
)


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option] = OPTIONS) -> None:
    """One ``add_argument`` per option (two for a switch)."""
    for opt in options:
        if opt.kind == "switch":
            on, off = opt.flags
            parser.add_argument(
                on, dest=opt.dest, action="store_true", default=opt.default_value, help=opt.full_help
            )
            parser.add_argument(off, dest=opt.dest, action="store_false", help=opt.off_help)
        elif opt.kind == "flag":
            parser.add_argument(opt.flag, action="store_true", default=opt.default_value, help=opt.full_help)
        else:
            extra: dict[str, Any] = {"type": opt.type} if opt.type is not None else {}
            parser.add_argument(
                opt.flag,
                action="append" if opt.kind == "append" else "store",
                choices=opt.choices,
                default=opt.default_value,
                metavar=opt.metavar,
                help=opt.full_help,
                **extra,
            )


def config_kwargs(args: argparse.Namespace, options: Sequence[Option] = OPTIONS) -> dict[str, Any]:
    """The Config fields the parsed options fill, by field name."""
    return {opt.field: getattr(args, opt.dest) for opt in options if opt.field is not None}


#: Unprefixed environment variables (uvicorn's), by flag: see blazeasgi/envconfig.py.
ENV_ALIASES: dict[str, str] = {opt.flag: opt.env for opt in OPTIONS if opt.env is not None}
