"""``--http2`` without its codec: asked for, it is an error; by default, HTTP/1.1.

Each test runs ``python -m blazeasgi`` with a ``zttp`` module ahead of the
installed one on PYTHONPATH that fails to import, as when zttp is not installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from ..helpers.cli import APPS, ROOT, Blaze, assert_one_line_error, free_port, run_cli


@pytest.fixture
def without_zttp(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import zttp`` fails."""
    (tmp_path / "zttp.py").write_text("raise ImportError('zttp is not installed (test)')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLAZEASGI_")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    return env


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_http2_asked_for_without_zttp_is_one_line_error(without_zttp: dict[str, str], how: str) -> None:
    """Without the check the server started and served HTTP/1.1 only, silently
    (here: the command would not exit)."""
    args = [f"{APPS}:app", "--port", str(free_port())]
    if how == "flag":
        args.append("--http2")
    else:
        without_zttp["BLAZEASGI_HTTP2"] = "1"
    out = run_cli(*args, env=without_zttp)
    assert_one_line_error(out, "--http2", "zttp", "pip install")


@pytest.mark.parametrize("flag", [[], ["--no-http2"]])
def test_default_without_zttp_serves_http11_silently(without_zttp: dict[str, str], flag: list[str]) -> None:
    port = free_port()
    b = Blaze([f"{APPS}:app", "--port", str(port), "--no-access-log", *flag], env=without_zttp)
    try:
        b.wait_for(f"Serving on http://127.0.0.1:{port}")
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert (response.status_code, response.http_version) == (200, "HTTP/1.1")
        assert b.stop() == 0
        assert not [line for line in b.log if "zttp" in line or "HTTP/2" in line or "rror" in line], b.log
    finally:
        b.kill()
