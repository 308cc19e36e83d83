"""fuzz/atheris_h2.py, the coverage-guided HTTP/2 fuzz target, replayed over its seeds.

The fuzzer itself runs by hand (atheris is not a test dependency); this keeps the
target runnable and its seeds within its invariant: nothing escapes, the answers
are well-formed HTTP/2, no stream is left open once the connection ends.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from blazeasgi.engine import http2

from ..helpers.cli import ROOT

pytestmark = pytest.mark.skipif(not http2.AVAILABLE, reason="zttp (the HTTP/2 codec) is not installed")


def test_target_replays_its_seeds() -> None:
    """The seeds: a request; two uploads, one reset; streams past a small stream
    budget, the answer to its GOAWAY's PING and one stream after (the two-step
    GOAWAY); the last stream id; a download, more window and the client's GOAWAY."""
    argv = [sys.executable, str(ROOT / "fuzz" / "atheris_h2.py"), "--replay"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "5 inputs, 0 failed", done.stderr
