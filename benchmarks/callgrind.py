"""Instructions per request of the engine (benchmarks/micro.py) under callgrind.

    python -m benchmarks.callgrind [native|asgi|starlette|fastapi] [--close | --each] [--browser]
        [--suspend] [--small N] [--large N]
    python -m benchmarks.callgrind --parse httptools|httptools-bare|zttp|zttp-event [--browser] ...

Runs ``benchmarks.micro`` twice under ``valgrind --tool=callgrind`` (N small and N
large requests) and prints (Collected(large) - Collected(small)) / (large - small):
the start-up, import and warm-up costs cancel out. Instruction counts are stable on
a shared, noisy host where wall-clock figures are not; compare pure and compiled
builds with it (``BLAZEASGI_PURE=1`` forces the pure-Python modules).
``--browser`` sends a browser-sized request instead of wrk's; ``--suspend`` asks for
a route whose handler awaits once (with ``--each``: the cost of the hand-off to a
task, against ``BLAZEASGI_TASKS=task``); ``--parse`` counts
the HTTP/1.1 parse alone (micro.parser_for says what each parser's count covers).

``--one N`` is the child mode: run micro once with N requests under uvloop.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile


def child(kind: str, n: int, mode: str, request_flags: list[str]) -> None:
    import uvloop

    from benchmarks import micro

    request = micro.BROWSER_REQUEST if "--browser" in request_flags else micro.REQUEST
    if "--suspend" in request_flags:  # the handler suspends once (the task hand-off)
        request = request.replace(b"GET / ", b"GET /suspend ", 1)
    if "--parse" in request_flags:
        micro.run_parse(kind, n, request)
    elif mode == "--close":
        uvloop.run(micro.run_close(kind, n, request))
    elif mode == "--each":
        uvloop.run(micro.run_each(kind, n, request))
    else:
        uvloop.run(micro.run(kind, n, False, request))


def collected(kind: str, n: int, mode: str, request_flags: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        argv += ["-m", "benchmarks.callgrind", kind, "--one", str(n)] + ([mode] if mode else [])
        argv += request_flags
        # A fixed hash seed: str hashes (dict and set probing) vary from run to run
        # otherwise (unseeded, two near-identical builds differed by 1.6%).
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        result = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
        match = re.search(r"Collected : (\d+)", result.stderr)
        if match is None:
            raise SystemExit(f"no 'Collected' line from callgrind:\n{result.stderr}")
        return int(match.group(1))


def main(argv: list[str]) -> None:
    kind = argv[0] if argv and not argv[0].startswith("-") else "native"
    # --parse PARSER: the parser is the kind (the child gets it first, then a bare
    # --parse); --browser: the browser-sized request.
    request_flags = [flag for flag in ("--browser", "--parse", "--suspend") if flag in argv]
    if "--parse" in argv and "--one" not in argv:
        kind = argv[argv.index("--parse") + 1]
    # --close: a new connection per request; --each: the loop run until each is
    # answered (what a Task per request costs, BLAZEASGI_TASKS=task).
    mode = next((m for m in ("--close", "--each") if m in argv), "")
    if "--one" in argv:
        child(kind, int(argv[argv.index("--one") + 1]), mode, request_flags)
        return
    small = int(argv[argv.index("--small") + 1]) if "--small" in argv else 20_000
    large = int(argv[argv.index("--large") + 1]) if "--large" in argv else 60_000
    a = collected(kind, small, mode, request_flags)
    b = collected(kind, large, mode, request_flags)
    label = " ".join([kind, *([mode] if mode else []), *request_flags])
    print(f"{label}: {(b - a) / (large - small):.0f} instructions/request ({a} @ {small}, {b} @ {large})")


if __name__ == "__main__":
    main(sys.argv[1:])
