"""Defaults from the environment: ``BLAZEASGI_*`` variables and ``--env-file``.

Every long option ``--some-flag`` of the CLI parser takes its default from
``BLAZEASGI_SOME_FLAG`` when that is set, converted by the option's own ``type``
and ``choices``, so the rule holds for any parser (blazeasgi.options also names
uvicorn's unprefixed aliases). Order of precedence: command line, then the
environment, then the env file (it only fills variables the environment lacks,
as python-dotenv does by default), then the parser's default. The env file is
loaded into ``os.environ`` before the app is imported, so the app sees its
variables too.

Kinds of option:
  * a value (``--port``): the variable is one value;
  * a flag pair (``--access-log``/``--no-access-log``): ``BLAZEASGI_ACCESS_LOG``
    (or ``BLAZEASGI_NO_ACCESS_LOG``) is a boolean: 1/0, true/false, yes/no, on/off;
  * repeatable (``action="append"``): a comma- or whitespace-separated list,
    replaced, not extended, by the same option on the command line.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

from .errors import BlazeasgiError
from .options import ENV_ALIASES

PREFIX = "BLAZEASGI_"

#: uvicorn's unprefixed variables, honoured when the BLAZEASGI_ one is unset
#: (the ``env`` of blazeasgi.options.OPTIONS).
UNPREFIXED = ENV_ALIASES

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
#: Options whose value never comes from the environment.
_SKIPPED_ACTIONS = (argparse._HelpAction, argparse._VersionAction)


class EnvFileError(BlazeasgiError):
    """The ``--env-file`` could not be read or parsed; the message is one line."""


def env_var(option: str) -> str:
    """``--timeout-keep-alive`` -> ``BLAZEASGI_TIMEOUT_KEEP_ALIVE``."""
    return PREFIX + option.lstrip("-").replace("-", "_").upper()


def parse_args(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> argparse.Namespace:
    """``parser.parse_args`` with defaults from ``environ`` (``os.environ``).

    The parser must have an ``--env-file`` option. Raises EnvFileError for an
    unreadable or malformed env file; a bad variable value exits like argparse
    does for a bad flag value (status 2, one line naming the variable).
    """
    env = os.environ if environ is None else environ
    appended = apply_env_defaults(parser, env)
    args = parser.parse_args(argv)
    if args.env_file:
        load_env_file(args.env_file, env)
        appended = apply_env_defaults(parser, env)
        args = parser.parse_args(argv)
    for dest, from_env in appended.items():
        # argparse appends command-line values to a copy of the default list:
        # the command line replaces the environment's list instead.
        value = getattr(args, dest)
        if value is not from_env and isinstance(value, list):
            setattr(args, dest, value[len(from_env) :])
    return args


def apply_env_defaults(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> dict[str, list[Any]]:
    """Set the parser's defaults from ``environ``; returns the lists set for append options."""
    appended: dict[str, list[Any]] = {}
    for action in parser._actions:
        if isinstance(action, _SKIPPED_ACTIONS):
            continue
        for option in action.option_strings:
            if not option.startswith("--"):
                continue
            name = env_var(option)
            raw = environ.get(name)
            if raw is None and option in UNPREFIXED:
                name = UNPREFIXED[option]
                raw = environ.get(name)
            if raw is None:
                continue
            value = _convert(parser, action, option, name, raw)
            if value is _UNSET:
                continue
            parser.set_defaults(**{action.dest: value})
            if isinstance(action, argparse._AppendAction):
                appended[action.dest] = value
            break
    return appended


_UNSET: Any = object()


def _convert(
    parser: argparse.ArgumentParser, action: argparse.Action, option: str, name: str, raw: str
) -> Any:
    def fail(message: str) -> Any:
        # Like parser.error, but without the usage text: the command line is fine.
        parser.exit(2, f"{parser.prog}: error: environment variable {name}: {message}\n")

    if isinstance(action, argparse._CountAction):  # -v -v: a number
        return _one(action, raw, fail, int)
    if action.nargs == 0:  # a flag: the variable says whether it is given
        lowered = raw.strip().lower()
        if lowered not in _TRUE and lowered not in _FALSE:
            return fail(f"expected 1/0, true/false, yes/no or on/off, got {raw!r}")
        on = lowered in _TRUE
        if isinstance(action, argparse.BooleanOptionalAction):  # --x/--no-x in one action
            return not on if option.startswith("--no-") else on
        if isinstance(action, argparse._AppendConstAction):
            return [action.const] if on else _UNSET
        if isinstance(action.const, bool):  # store_true/store_false: off is the opposite
            return action.const if on else not action.const
        return action.const if on else _UNSET
    many = action.nargs in ("*", "+") or isinstance(action.nargs, int)
    if many or isinstance(action, argparse._AppendAction):
        items = [item for item in re.split(r"[,\s]+", raw.strip()) if item]
        if action.nargs == "+" and not items:
            return fail("expected at least one value")
        return [_one(action, item, fail) for item in items]
    return _one(action, raw, fail)


def _one(
    action: argparse.Action,
    raw: str,
    fail: Callable[[str], Any],
    default_type: Callable[[str], Any] | None = None,
) -> Any:
    convert = action.type if callable(action.type) else default_type
    value: Any = raw
    if convert is not None:
        try:
            value = convert(raw)
        except argparse.ArgumentTypeError as exc:
            return fail(str(exc))
        except (TypeError, ValueError):
            type_name = getattr(convert, "__name__", repr(convert))
            return fail(f"invalid {type_name} value: {raw!r}")
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(repr, action.choices))
        return fail(f"invalid choice: {raw!r} (choose from {choices})")
    return value


# -- env files -------------------------------------------------------------------------------
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_INLINE_COMMENT = re.compile(r"\s+#.*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def load_env_file(path: str, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Read a dotenv file into ``environ`` without overriding what is set there."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise EnvFileError(f"--env-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise EnvFileError(f"--env-file {path}: not UTF-8 text ({exc.reason})") from None
    values = parse_env(text, path)
    for key, value in values.items():
        environ.setdefault(key, value)
    return values


def parse_env(text: str, source: str = "<env>") -> dict[str, str]:
    """Parse dotenv text: ``KEY=VALUE`` lines, ``#`` comments, an optional
    ``export`` prefix, and values that are bare (an inline comment needs a space
    before ``#``), 'single-quoted' (literal) or "double-quoted" (backslash
    escapes); quoted values may span lines. No ``${VAR}`` interpolation.
    """
    values: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        key, eq, rest = line.partition("=")
        key = key.strip()
        if not eq or not _KEY.fullmatch(key):
            raise EnvFileError(f"--env-file {source}:{lineno}: expected KEY=VALUE, got {line!r}")
        rest = rest.lstrip()
        quote = rest[:1]
        if quote in ("'", '"'):
            body = rest[1:]
            end = _closing_quote(body, quote)
            while end == -1:
                if i >= len(lines):
                    raise EnvFileError(f"--env-file {source}:{lineno}: unterminated {quote} quote")
                body += "\n" + lines[i]
                i += 1
                end = _closing_quote(body, quote)
            after = body[end + 1 :].strip()
            if after and not after.startswith("#"):
                raise EnvFileError(f"--env-file {source}:{lineno}: unexpected text after the quoted value")
            value = body[:end]
            values[key] = _unescape(value) if quote == '"' else value
        else:
            values[key] = _INLINE_COMMENT.sub("", rest).strip()
    return values


def _closing_quote(body: str, quote: str) -> int:
    if quote == "'":
        return body.find("'")
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i
        i += 1
    return -1


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value) and value[i + 1] in _ESCAPES:
            out.append(_ESCAPES[value[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)
