"""blazeasgi.options is the one table of flags: the parser, Config and README follow it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from blazeasgi.cli import build_parser, config_from_args
from blazeasgi.config import Config
from blazeasgi.envconfig import UNPREFIXED
from blazeasgi.options import OPTIONS, Option

README = Path(__file__).resolve().parents[2] / "README.md"
BY_FLAG = {flag: opt for opt in OPTIONS for flag in opt.flags}


def readme_rows() -> dict[str, str | None]:
    """Each flag of README's "Command line" table -> the default its row states
    for it (None: the row states none)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Command line\n", 1)[1].split("\n#", 1)[0]
    rows: dict[str, str | None] = {}
    for line in section.splitlines():
        if not line.startswith("| `--"):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        flags_cell, default_cell = cells[0], cells[1]
        # "`--a`, `--b` / `--no-b`": one group per option, a switch's pair in one group
        groups = re.split(r",\s*(?=`)", flags_cell)
        defaults = [item.strip() for item in default_cell.split(", ")] if default_cell else []
        assert not defaults or len(defaults) == len(groups), f"one default per option: {line}"
        for i, group in enumerate(groups):
            default = defaults[i].replace("`", "") if defaults and defaults[i] else None
            for flag in re.findall(r"--[a-z0-9-]+", group):
                assert flag not in rows, f"{flag} twice in the README"
                rows[flag] = default
    return rows


def test_readme_table_lists_every_flag_and_only_those() -> None:
    rows = readme_rows()
    table = set(BY_FLAG)
    assert sorted(table - set(rows)) == [], "flags missing from README.md"
    assert sorted(set(rows) - table) == [], "README.md flags that do not exist"


def test_readme_defaults_are_the_tables() -> None:
    for flag, stated in readme_rows().items():
        opt = BY_FLAG[flag]
        if flag != opt.flag:  # --no-x: its row states --x's default
            continue
        assert stated == opt.shown, flag


def test_shown_default_is_the_real_one() -> None:
    """Where ``shown`` is a number or a plain value, it is the default argparse uses."""
    defaults = vars(build_parser().parse_args(["m:a"]))
    for opt in OPTIONS:
        value = defaults[opt.dest]
        assert value == opt.default_value, opt.flag
        if opt.shown is None or value is None or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and re.fullmatch(r"[\d.]+", opt.shown):
            assert float(opt.shown) == value, opt.flag
        elif isinstance(value, str) and value:
            assert opt.shown.strip("'") == value, opt.flag


def test_config_defaults_come_from_config() -> None:
    defaults = Config()
    for opt in OPTIONS:
        if opt.field is not None and opt.dest not in ("proxy_headers",):
            assert opt.default_value == getattr(defaults, opt.field), opt.flag
    assert config_from_args(build_parser().parse_args(["m:a"])) == defaults


def test_every_option_fills_its_config_field() -> None:
    fields = [opt for opt in OPTIONS if opt.field is not None]
    assert len({opt.field for opt in fields}) == len(fields)
    argv = ["m:a", "--timeout-keep-alive", "7", "--no-date-header", "--ws", "none", "--backlog", "9"]
    config = config_from_args(build_parser().parse_args(argv))
    assert (config.keep_alive_timeout, config.date_header, config.ws, config.backlog) == (
        7.0,
        False,
        "none",
        9,
    )


def test_env_aliases_come_from_the_table() -> None:
    assert UNPREFIXED == {"--forwarded-allow-ips": "FORWARDED_ALLOW_IPS", "--workers": "WEB_CONCURRENCY"}


def test_max_requests_jitter_is_drawn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import blazeasgi.cli as cli

    calls: list[argparse.Namespace] = []
    real = cli.config_from_args

    def counting(args: argparse.Namespace) -> Config:
        calls.append(args)
        return real(args)

    monkeypatch.setattr(cli, "config_from_args", counting)
    monkeypatch.setattr(cli, "serve", lambda *args, **kwargs: 0)
    monkeypatch.setattr(cli, "open_sockets", lambda args: [])
    monkeypatch.setattr(cli.sys, "path", list(cli.sys.path))
    argv = ["tests.apps.cli_apps:app", "--limit-max-requests", "100", "--limit-max-requests-jitter", "50"]
    monkeypatch.setattr(cli.WorkerLink, "from_environ", classmethod(lambda cls: _FakeLink()))
    assert cli.main(argv) == 0
    assert len(calls) == 1


class _FakeLink:
    def sockets(self) -> list[object]:
        return []


def test_help_mentions_bench(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "blazeasgi bench APP" in out
    assert "pip install 'blazeasgi[bench]'" in out and "wrk" in out


def test_option_properties() -> None:
    switch = Option("--x-y", "help", kind="switch", default=True, shown="on")
    assert (switch.flags, switch.dest, switch.full_help) == (
        ("--x-y", "--no-x-y"),
        "x_y",
        "help (default: on)",
    )
    assert Option("--pct", "a %-format").full_help == "a %%-format"
