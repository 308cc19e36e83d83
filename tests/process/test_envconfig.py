"""BLAZEASGI_* variables and --env-file: every flag from the environment, flags first."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from blazeasgi.cli import build_parser, config_from_args
from blazeasgi.envconfig import EnvFileError, env_var, load_env_file, parse_args, parse_env

from ..helpers.cli import APPS, Blaze, assert_one_line_error, free_port, run_cli

StartBlaze = Callable[..., Blaze]


def cli_args(argv: list[str], env: dict[str, str]) -> argparse.Namespace:
    return parse_args(build_parser(), ["main:app", *argv], env)


def env_error(argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a rejected environment; argparse's exit status 2."""
    with pytest.raises(SystemExit) as exc:
        cli_args(argv, env)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# -- the CLI's own flags -------------------------------------------------------------------
def test_names() -> None:
    assert env_var("--timeout-keep-alive") == "BLAZEASGI_TIMEOUT_KEEP_ALIVE"
    assert env_var("--no-access-log") == "BLAZEASGI_NO_ACCESS_LOG"


def test_values_from_env() -> None:
    args = cli_args(
        [],
        {
            "BLAZEASGI_PORT": "9001",
            "BLAZEASGI_HOST": "0.0.0.0",
            "BLAZEASGI_TIMEOUT_KEEP_ALIVE": "2.5",
            "BLAZEASGI_LOOP": "asyncio",
            "BLAZEASGI_WS_PER_MESSAGE_DEFLATE": "off",  # a flag whose own type parses booleans
            "BLAZEASGI_ACCESS_LOG_FORMAT": "%(status)d",
        },
    )
    assert (args.port, args.host, args.loop, args.ws_per_message_deflate) == (
        9001,
        "0.0.0.0",
        "asyncio",
        False,
    )
    config = config_from_args(args)
    assert config.keep_alive_timeout == 2.5
    assert config.access_log_format == "%(status)d"


def test_defaults_without_env() -> None:
    args = cli_args([], {})
    assert (args.port, args.access_log, args.timeout_keep_alive) == (8000, True, 5.0)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BLAZEASGI_ACCESS_LOG": "0"}, False),
        ({"BLAZEASGI_ACCESS_LOG": "off"}, False),
        ({"BLAZEASGI_ACCESS_LOG": "False"}, False),
        ({"BLAZEASGI_ACCESS_LOG": "yes"}, True),
        ({"BLAZEASGI_NO_ACCESS_LOG": "1"}, False),
        ({"BLAZEASGI_NO_ACCESS_LOG": "no"}, True),
        ({"BLAZEASGI_SERVER_HEADER": "false"}, True),  # a different flag: access log untouched
    ],
)
def test_boolean_pairs(env: dict[str, str], expected: bool) -> None:
    assert cli_args([], env).access_log is expected


def test_boolean_pair_sets_config() -> None:
    config = config_from_args(cli_args([], {"BLAZEASGI_SERVER_HEADER": "off", "BLAZEASGI_DATE_HEADER": "on"}))
    assert (config.server_header, config.date_header) == (False, True)


def test_flags_beat_env() -> None:
    env = {"BLAZEASGI_PORT": "9001", "BLAZEASGI_ACCESS_LOG": "true", "BLAZEASGI_LOG_LEVEL": "debug"}
    args = cli_args(["--port", "9002", "--no-access-log", "--log-level", "error"], env)
    assert (args.port, args.access_log, args.log_level) == (9002, False, "error")
    args = cli_args(["--access-log"], {"BLAZEASGI_ACCESS_LOG": "0"})
    assert args.access_log is True


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"BLAZEASGI_PORT": "eighty"}, ["BLAZEASGI_PORT", "invalid int value: 'eighty'"]),
        ({"BLAZEASGI_TIMEOUT_KEEP_ALIVE": "5s"}, ["BLAZEASGI_TIMEOUT_KEEP_ALIVE", "float"]),
        ({"BLAZEASGI_LOOP": "trio"}, ["BLAZEASGI_LOOP", "invalid choice: 'trio'", "'uvloop'"]),
        ({"BLAZEASGI_ACCESS_LOG": "maybe"}, ["BLAZEASGI_ACCESS_LOG", "'maybe'", "on/off"]),
        ({"BLAZEASGI_WS_PER_MESSAGE_DEFLATE": "2"}, ["BLAZEASGI_WS_PER_MESSAGE_DEFLATE", "true or false"]),
        ({"BLAZEASGI_ACCESS_LOG_FORMAT": "%(nope)s"}, ["BLAZEASGI_ACCESS_LOG_FORMAT", "unknown field"]),
    ],
)
def test_bad_values_name_the_variable(
    env: dict[str, str], words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    line = env_error([], env, capsys)
    assert line.startswith("blazeasgi: error: environment variable ")
    for word in words:
        assert word in line


def test_bad_env_value_is_an_error_even_under_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # A broken variable is reported even if the flag overrides it: it is a
    # misconfiguration either way, and the message says where it is.
    assert "BLAZEASGI_PORT" in env_error(["--port", "1"], {"BLAZEASGI_PORT": "x"}, capsys)


def test_uvicorn_unprefixed_variables() -> None:
    args = cli_args([], {"FORWARDED_ALLOW_IPS": "10.0.0.1"})
    assert args.forwarded_allow_ips == "10.0.0.1"
    both = {"FORWARDED_ALLOW_IPS": "10.0.0.1", "BLAZEASGI_FORWARDED_ALLOW_IPS": "10.0.0.2"}
    assert cli_args([], both).forwarded_allow_ips == "10.0.0.2"
    assert cli_args(["--forwarded-allow-ips", "*"], both).forwarded_allow_ips == "*"


# -- generic over any parser: kinds of option the CLI may grow ----------------------------------
def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="blazeasgi")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--reload-dir", action="append", default=None)
    p.add_argument("--ports", type=int, nargs="+", default=[1])
    p.add_argument("--color", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--mode", action="store_const", const="fast", default="safe")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("--env-file")
    return p


def test_append_is_a_list_replaced_by_flags() -> None:
    env = {"BLAZEASGI_RELOAD_DIR": "src, lib  tests"}
    assert parse_args(make_parser(), [], env).reload_dir == ["src", "lib", "tests"]
    assert parse_args(make_parser(), ["--reload-dir", "a", "--reload-dir", "b"], env).reload_dir == ["a", "b"]
    assert parse_args(make_parser(), ["--reload-dir", "a"], {}).reload_dir == ["a"]


def test_other_kinds_of_option(capsys: pytest.CaptureFixture[str]) -> None:
    env = {
        "BLAZEASGI_PORTS": "80,443",
        "BLAZEASGI_NO_COLOR": "yes",
        "BLAZEASGI_MODE": "on",
        "BLAZEASGI_VERBOSE": "2",
        "WEB_CONCURRENCY": "3",
    }
    args = parse_args(make_parser(), [], env)
    assert (args.ports, args.color, args.mode, args.verbose, args.workers) == ([80, 443], False, "fast", 2, 3)
    assert parse_args(make_parser(), [], {"BLAZEASGI_COLOR": "1", "BLAZEASGI_MODE": "0"}).color is True
    assert parse_args(make_parser(), [], {"BLAZEASGI_MODE": "0"}).mode == "safe"
    assert parse_args(make_parser(), [], {"WEB_CONCURRENCY": "3", "BLAZEASGI_WORKERS": "4"}).workers == 4
    with pytest.raises(SystemExit):
        parse_args(make_parser(), [], {"WEB_CONCURRENCY": "many"})
    assert "environment variable WEB_CONCURRENCY: invalid int value: 'many'" in capsys.readouterr().err


# -- env files -----------------------------------------------------------------------------------
def test_parse_env_syntax() -> None:
    text = textwrap.dedent(
        """\
        # a comment
        PLAIN=value
        export EXPORTED=1
        SPACED = padded value   # trailing comment
        HASH=a#b
        EMPTY=
        SINGLE='literal \\n $HOME # kept'
        DOUBLE="line\\nbreak \\"quoted\\" # kept"
        MULTI="first
        second"
        URL=postgres://u:p@db/x?sslmode=require
        """
    )
    assert parse_env(text) == {
        "PLAIN": "value",
        "EXPORTED": "1",
        "SPACED": "padded value",
        "HASH": "a#b",
        "EMPTY": "",
        "SINGLE": "literal \\n $HOME # kept",
        "DOUBLE": 'line\nbreak "quoted" # kept',
        "MULTI": "first\nsecond",
        "URL": "postgres://u:p@db/x?sslmode=require",
    }


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("GOOD=1\nnot a pair\n", [":2:", "expected KEY=VALUE", "not a pair"]),
        ("1BAD=x\n", [":1:", "expected KEY=VALUE"]),
        ('A="open\nB=2\n', [":1:", "unterminated"]),
        ("A='x' y\n", [":1:", "after the quoted value"]),
    ],
)
def test_parse_env_errors(text: str, words: list[str]) -> None:
    with pytest.raises(EnvFileError) as exc:
        parse_env(text, "app.env")
    message = str(exc.value)
    assert message.startswith("--env-file app.env:") and "\n" not in message
    for word in words:
        assert word in message


def test_env_file_fills_but_does_not_override(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("BLAZEASGI_PORT=9100\nBLAZEASGI_LOOP=asyncio\nAPP_SECRET=s3cret\n")
    env = {"BLAZEASGI_LOOP": "uvloop"}
    args = cli_args(["--env-file", str(path)], env)
    assert (args.port, args.loop) == (9100, "uvloop")  # the real environment wins over the file
    assert env["APP_SECRET"] == "s3cret"
    assert cli_args(["--env-file", str(path), "--port", "1"], {}).port == 1  # and flags over both


def test_env_file_named_by_env(tmp_path: Path) -> None:
    path = tmp_path / "prod.env"
    path.write_text("BLAZEASGI_PORT=9200\n")
    assert cli_args([], {"BLAZEASGI_ENV_FILE": str(path)}).port == 9200


def test_missing_env_file(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match="No such file"):
        load_env_file(str(tmp_path / "absent.env"), {})


# -- on the command line -------------------------------------------------------------------------
APP_SOURCE = """\
import os

AT_IMPORT = os.environ.get("GREETING", "unset")  # read while the module is imported


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"{AT_IMPORT} {os.environ.get('DATABASE_URL')}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


def test_cli_env_file_visible_to_app(blaze: StartBlaze, tmp_path: Path) -> None:
    (tmp_path / "envapp.py").write_text(APP_SOURCE)
    port = free_port()
    env_file = tmp_path / "app.env"
    env_file.write_text(
        f"# deployment settings\nexport GREETING='hello there'\nDATABASE_URL=postgres://db/x\n"
        f"BLAZEASGI_PORT={port}\nBLAZEASGI_LIFESPAN=off\nBLAZEASGI_ACCESS_LOG=0\n"
    )
    b = blaze("envapp:app", "--app-dir", str(tmp_path), "--env-file", str(env_file))
    b.wait_for(f"Serving on http://127.0.0.1:{port}")
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "hello there postgres://db/x"
    assert b.stop() == 0
    assert not [line for line in b.log if '"GET /' in line]  # BLAZEASGI_ACCESS_LOG=0 from the file


def test_cli_env_port_and_flag_precedence(blaze: StartBlaze, monkeypatch: pytest.MonkeyPatch) -> None:
    env_port, flag_port = free_port(), free_port()
    monkeypatch.setenv("BLAZEASGI_PORT", str(env_port))
    monkeypatch.setenv("BLAZEASGI_NO_ACCESS_LOG", "true")
    b = blaze(f"{APPS}:native")
    b.wait_for(f"Serving on http://127.0.0.1:{env_port}")
    assert httpx.get(f"http://127.0.0.1:{env_port}/", timeout=5).text == "native hello"
    assert b.stop() == 0
    assert not [line for line in b.log if '"GET /' in line]
    b = blaze(f"{APPS}:native", "--port", str(flag_port))
    b.wait_for(f"Serving on http://127.0.0.1:{flag_port}")
    assert b.stop() == 0


def test_cli_bad_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLAZEASGI_TIMEOUT_KEEP_ALIVE", "forever")
    out = run_cli(f"{APPS}:app")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "BLAZEASGI_TIMEOUT_KEEP_ALIVE" in lines[0] and "'forever'" in lines[0]


def test_cli_missing_env_file(tmp_path: Path) -> None:
    out = run_cli(f"{APPS}:app", "--env-file", str(tmp_path / "nope.env"))
    assert_one_line_error(out, "--env-file", "nope.env", "No such file")


def test_cli_malformed_env_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text("OK=1\nthis is not an assignment\n")
    assert_one_line_error(run_cli(f"{APPS}:app", "--env-file", str(path)), "bad.env:2", "KEY=VALUE")
