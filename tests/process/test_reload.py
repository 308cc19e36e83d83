"""--reload: an edited file restarts the workers; a broken edit leaves the old ones serving."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from blazeasgi.reload import DEFAULT_EXCLUDES, DEFAULT_INCLUDES, ReloadFilter, combine_patterns

from ..helpers.cli import assert_one_line_error, free_port
from ..helpers.workers import TIMEOUT, Clients, Master, get, run_cli

APP = """\
import pathlib

VERSION = {version!r}
DATA = pathlib.Path(__file__).with_name("data.txt")


async def app(scope, receive, send):
    body = VERSION + "|" + (DATA.read_text() if DATA.exists() else "")
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": body.encode()}})
"""


def write_app(directory: Path, version: str) -> None:
    # A different length each time: a .pyc is trusted when the source's size and
    # mtime (in whole seconds) match, and two edits can fall in one second.
    (directory / "reload_app.py").write_text(APP.format(version=version))


def start(master, directory: Path, *args: str) -> tuple[Master, int]:
    port = free_port()
    m = master(
        "reload_app:app",
        "--port",
        str(port),
        "--reload",
        "--reload-dir",
        str(directory),
        "--lifespan",
        "off",
        "--no-access-log",
        *args,
        cwd=directory,
    )
    m.wait_for_match(f"Serving on http://127.0.0.1:{port}")
    return m, port


def until_body(port: int, prefix: str) -> str:
    deadline = time.monotonic() + TIMEOUT
    while True:
        body = get(port)
        if body.startswith(prefix) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_edit_restarts_workers_and_no_request_fails(master, tmp_path: Path) -> None:
    write_app(tmp_path, "one")
    m, port = start(master, tmp_path)
    assert get(port) == "one|"
    clients = Clients(port)
    try:
        write_app(tmp_path, "version two")
        assert until_body(port, "version two") == "version two|"
    finally:
        clients.stop()
    assert not clients.failures, clients.failures[:3]
    m.wait_for_match(r"Detected changes in .*reload_app\.py; reloading")
    assert m.stop() == 0


def test_syntax_error_keeps_old_code_serving_until_fixed(master, tmp_path: Path) -> None:
    write_app(tmp_path, "one")
    m, port = start(master, tmp_path)
    (tmp_path / "reload_app.py").write_text("def broken(:\n")
    line = m.wait_for_match(r"failed to start: .*SyntaxError").string
    assert "reload_app" in line
    assert get(port) == "one|"  # the old worker still serves
    write_app(tmp_path, "fixed at last")
    assert until_body(port, "fixed") == "fixed at last|"
    assert m.stop() == 0
    assert "Traceback" not in "\n".join(m.log)


def test_broken_at_start_waits_for_a_fix(master, tmp_path: Path) -> None:
    (tmp_path / "reload_app.py").write_text("raise RuntimeError('not yet')\n")
    port = free_port()
    m = master("reload_app:app", "--port", str(port), "--reload", "--reload-dir", str(tmp_path), cwd=tmp_path)
    m.wait_for_match(r"failed to start: .*not yet")
    write_app(tmp_path, "works now")
    m.wait_for_match(f"Serving on http://127.0.0.1:{port}")
    assert get(port) == "works now|"
    assert m.stop() == 0


def test_reload_include_pattern(master, tmp_path: Path) -> None:
    write_app(tmp_path, "one")
    (tmp_path / "data.txt").write_text("a")
    m, port = start(master, tmp_path, "--reload-include", "*.txt")
    assert get(port) == "one|a"
    (tmp_path / "data.txt").write_text("bb")  # read per request: the log shows the reload
    m.wait_for_match(r"Detected changes in data\.txt; reloading")
    m.wait_for_match(r"Worker \[\d+\] ready")
    assert get(port) == "one|bb"
    assert m.stop() == 0


# -- errors --------------------------------------------------------------------------------
def test_missing_watchfiles_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "watchfiles.py").write_text("raise ImportError('no watchfiles here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    out = run_cli("tests.apps.worker_apps:pid_app", "--reload", "--port", str(free_port()), env=env)
    assert_one_line_error(out, "pip install 'blazeasgi[reload]'")


def test_missing_reload_dir_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    out = run_cli("tests.apps.worker_apps:pid_app", "--reload", "--reload-dir", str(missing))
    assert_one_line_error(out, "--reload-dir", "not a directory")


# -- which files count -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("relative", "counts"),
    [
        ("app.py", True),
        ("pkg/models.py", True),
        ("README.md", False),
        ("app.pyc", False),
        ("__pycache__/app.cpython-311.py", False),
        (".hidden.py", False),
        (".git/hooks/post.py", False),
        ("pkg/.app.py.swp", False),
        ("app.py~", False),
    ],
)
def test_default_filter(tmp_path: Path, relative: str, counts: bool) -> None:
    check = ReloadFilter([tmp_path], DEFAULT_INCLUDES, DEFAULT_EXCLUDES)
    assert check(None, str(tmp_path / relative)) is counts


def test_filter_patterns(tmp_path: Path) -> None:
    check = ReloadFilter([tmp_path], ["*.py", "templates/*.html"], ["tests", "*_draft.py"])
    assert check(None, str(tmp_path / "templates" / "index.html"))
    assert not check(None, str(tmp_path / "static" / "index.html"))
    assert not check(None, str(tmp_path / "tests" / "test_app.py"))
    assert not check(None, str(tmp_path / "app_draft.py"))
    assert check(None, str(tmp_path / "app.py"))


def test_filter_judges_only_below_the_watched_directory(tmp_path: Path) -> None:
    root = tmp_path / ".venv-like" / "src"  # a hidden directory above the root does not count
    check = ReloadFilter([root], DEFAULT_INCLUDES, DEFAULT_EXCLUDES)
    assert check(None, str(root / "app.py"))


def test_flags_add_to_the_default_patterns() -> None:
    includes, excludes = combine_patterns(["*.html", "*.sw?"], ["*_draft.py"])
    assert includes == ["*.py", "*.html", "*.sw?"]
    assert "*.sw?" not in excludes  # excluded by default, but asked for
    assert excludes == [".*", "*.py[cod]", "*~", "*_draft.py"]
