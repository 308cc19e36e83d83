"""Loaded by pytest before tests/conftest.py, so before anything imports blazeasgi.

Coverage cannot trace compiled modules: a measured run uses the pure-Python ones,
here and in the servers the tests start (the environment is inherited), unless
BLAZEASGI_PURE=0 asks for the compiled build anyway. The summary's last line says which ran.
"""

from __future__ import annotations

import os
import sys
from typing import Any

PURE_ENV = "BLAZEASGI_PURE"


def _coverage_measuring() -> bool:
    coverage = sys.modules.get("coverage")
    return coverage is not None and coverage.Coverage.current() is not None


PURE_FOR_COVERAGE = PURE_ENV not in os.environ and _coverage_measuring()
if PURE_FOR_COVERAGE:
    os.environ[PURE_ENV] = "1"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from blazeasgi import _compiled

    forced = ", set because coverage is measuring" if PURE_FOR_COVERAGE else ""
    terminalreporter.write_line(f"blazeasgi hot path: {_compiled.STATUS}{forced}")
