"""``python -m benchmarks.techempower``: the TechEmpower test types on PostgreSQL.

1. Start a throwaway PostgreSQL cluster (postgres.py), pinned to the load generator's core.
2. Start each server once and run the verifier (verify.py) on every test; a test that
   fails on a server is reported and never benchmarked on it.
3. For every passing (test, load level, server): start the server, warm up, run wrk,
   stop it. Results go to benchmarks/results/techempower/<timestamp>/ and .../latest/.

Load levels, scaled down from TechEmpower's for a 2-core machine (one core for the
server; wrk and PostgreSQL share the other):

| test | TechEmpower | here (full) | here (--quick) |
|---|---|---|---|
| plaintext (pipelined 16) | 256, 1024, 4096, 16384 connections | 256, 1024 | 256 |
| json, db, fortunes | 16, 32, 64, 128, 256, 512 connections | 16, 64, 256 | 64 |
| queries, updates | N = 1, 5, 10, 15, 20 at 512 connections | N = 1, 5, 20 at 256 | N = 20 at 256 |
| cached-queries | N = 1, 10, 20, 50, 100 at 512 connections | N = 1, 20, 100 at 256 | N = 20 at 256 |

15 s per level after a 3 s warm-up, one run per level (TechEmpower's 15 s; --quick: 3 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blazeasgi.benchprocess import ServerProcess, free_port, pinning, raise_fd_limit, sigterm_as_interrupt
from blazeasgi.wrk import BenchError, find_wrk, fmt_latency, fmt_rps

from .. import report
from ..machine import ROOT, machine_info
from ..runner import RESULTS, _base_env, cpu_note, run_cell, write_results
from ..scenarios import Scenario
from ..servers import GRANIAN, UVICORN, ServerSpec, _blazeasgi, _granian, _uvicorn
from . import verify
from .postgres import PostgresCluster

APP = "benchmarks.techempower.app_{}:app"

SERVERS: list[ServerSpec] = [
    ServerSpec("blazeasgi-native", "blazeasgi", "native", "native", _blazeasgi, "pip install -e .",
               "uvicorn-fastapi", "granian-rsgi", app_target=APP.format("native")),
    ServerSpec("blazeasgi-fastapi", "blazeasgi", "asgi", "fastapi", _blazeasgi, "pip install -e .",
               "uvicorn-fastapi", "granian-fastapi", app_target=APP.format("fastapi")),
    ServerSpec("uvicorn-fastapi", "uvicorn", "asgi", "fastapi", _uvicorn, UVICORN, None, "granian-fastapi",
               app_target=APP.format("fastapi")),
    ServerSpec("granian-rsgi", "granian", "rsgi", "rsgi", _granian, GRANIAN, "uvicorn-fastapi", None,
               app_target=APP.format("rsgi")),
    ServerSpec("granian-fastapi", "granian", "asgi", "fastapi", _granian, GRANIAN, "uvicorn-fastapi", None,
               default=False, app_target=APP.format("fastapi")),
]  # fmt: skip
BY_NAME = {s.name: s for s in SERVERS}
NEEDS = ("asyncpg", "jinja2", "fastapi")


def _ok(reply: Any) -> None:
    return None  # the verifier has checked the answers already


@dataclasses.dataclass(frozen=True)
class Level:
    test: str
    scenario: Scenario


def levels(tests: Sequence[str], quick: bool) -> list[Level]:
    """Every (test, load) the run measures, in TechEmpower's order."""
    out = []

    def add(
        test: str, name: str, path: str, full: tuple[int, ...], fast: tuple[int, ...], pipe: int = 1
    ) -> None:
        out.append(Level(test, Scenario(name, f"TechEmpower {name}", path, full, fast, _ok, pipeline=pipe)))

    for test in tests:
        if test == "plaintext":
            add(test, "plaintext", "/plaintext", (256, 1024), (256,), 16)
        elif test in ("json", "db", "fortunes"):
            add(test, test, f"/{test}", (16, 64, 256), (64,))
        elif test in ("queries", "updates", "cached-queries"):
            counts = (1, 20, 100) if test == "cached-queries" else (1, 5, 20)
            for n in (20,) if quick else counts:
                add(test, f"{test}-{n}", verify.query_path(test, str(n)), (256,), (256,))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.techempower",
        description="TechEmpower test types (PostgreSQL) on blazeasgi, FastAPI/uvicorn and Granian RSGI.",
    )
    p.add_argument("--quick", action="store_true", help="one load level per test, 3 s runs")
    p.add_argument("--tests", help=f"comma-separated tests (default all): {', '.join(verify.TESTS)}")
    p.add_argument(
        "--servers",
        help="comma-separated servers or 'all': "
        + ", ".join(s.name + ("" if s.default else "*") for s in SERVERS),
    )
    p.add_argument("--duration", type=int, help="seconds per level (default 15, quick 3)")
    p.add_argument("--warmup", type=int, help="seconds of warm-up per level (default 3, quick 1)")
    p.add_argument("--runs", type=int, default=1, help="runs per level, median kept (default 1)")
    p.add_argument("--timeout", type=int, default=8, help="wrk request timeout in seconds (default 8)")
    p.add_argument("--verify-only", action="store_true", help="run the verifier, no load")
    p.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    p.add_argument("--output", type=Path, help="results directory (default results/techempower/<timestamp>)")
    p.add_argument("--no-charts", action="store_true")
    return p


def verify_server(
    spec: ServerSpec, cluster: PostgresCluster, tests: Sequence[str], cpu: list[str]
) -> dict[str, list[str]]:
    port = free_port()
    env = {**_base_env(), **spec.process_env(port)}
    with ServerProcess(spec.name, spec.argv(port), port, env=env, cwd=ROOT, prefix=cpu) as proc:
        proc.wait_ready("/plaintext", timeout=30)
        verifier = verify.Verifier(
            port,
            read_worlds=cluster.read_worlds,
            stats=cluster.statement_stats,
            reset_stats=cluster.reset_stats,
        )
        return verifier.run(tests)


def main(argv: Sequence[str] | None = None) -> int:
    with sigterm_as_interrupt():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        wrk = find_wrk()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tests = [t.strip() for t in args.tests.split(",")] if args.tests else list(verify.TESTS)
    unknown = [t for t in tests if t not in verify.TESTS]
    if unknown:
        print(
            f"error: unknown test(s) {', '.join(unknown)}; choose from {', '.join(verify.TESTS)}",
            file=sys.stderr,
        )
        return 2
    if args.servers == "all":
        servers = list(SERVERS)
    elif args.servers:
        try:
            servers = [BY_NAME[n.strip()] for n in args.servers.split(",")]
        except KeyError as exc:
            print(f"error: unknown server {exc}; choose from {', '.join(BY_NAME)}", file=sys.stderr)
            return 2
    else:
        servers = [s for s in SERVERS if s.default]
    from blazeasgi.benchprocess import module_available

    missing = [m for m in NEEDS if not module_available(m)]
    if missing:
        print(f"error: {', '.join(missing)} not installed: pip install {' '.join(missing)}", file=sys.stderr)
        return 2
    skipped = {}
    for spec in list(servers):
        why = spec.missing()
        if why:
            print(f"skip {spec.name}: {why}")
            skipped[spec.name] = why
            servers.remove(spec)
    if not servers:
        print("error: no server to run", file=sys.stderr)
        return 2

    quick = args.quick
    settings: dict[str, Any] = {
        "quick": quick,
        "duration": args.duration or (3 if quick else 15),
        "warmup": args.warmup if args.warmup is not None else (1 if quick else 3),
        "runs": args.runs,
        "threads": 1,
        "timeout": args.timeout,
    }
    server_cpu, wrk_cpu = pinning(not args.no_pin)
    settings["pinning"] = (
        {"server": server_cpu[-1], "wrk and PostgreSQL": wrk_cpu[-1]} if server_cpu else "none"
    )
    settings["fd_limit"] = raise_fd_limit(4096)
    plan = levels(tests, quick)
    started = dt.datetime.now(dt.UTC)
    data: dict[str, Any] = {
        "suite": "techempower",
        "title": "TechEmpower test types on blazeasgi",
        "created": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks.techempower "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_info(),
        "settings": settings,
        "scenarios": {
            lv.scenario.name: {"title": lv.scenario.name, "path": lv.scenario.path, "method": "GET"}
            for lv in plan
        },
        "servers": {
            s.name: {
                "server": s.server,
                "interface": s.interface,
                "app": s.target,
                "uvicorn_baseline": s.uvicorn_baseline,
                "granian_baseline": s.granian_baseline,
            }
            for s in servers
        },
        "skipped_servers": skipped,
        "verification": {},
        "results": [],
        "preamble": [
            "PostgreSQL runs on the load generator's core; the verifier checked every test against "
            "the TechEmpower rules before load, and only passing tests were benchmarked. Load levels "
            "are scaled down for 2 cores (see benchmarks/techempower/run.py).",
            "",
        ],
        "notes": [
            "*vs uvicorn*: req/s divided by uvicorn's on the same FastAPI app (for native handlers "
            "and Granian too: the FastAPI app on uvicorn is what they would replace).",
            "*vs Granian*: divided by Granian RSGI's on the same asyncpg code (native handlers), or "
            "Granian ASGI's on the same FastAPI app when that server was part of the run.",
            "Latency is not reported for pipelined plaintext (wrk's figures are invalid with pipelining).",
        ],
    }
    t0 = time.monotonic()
    failures = 0
    try:
        print(f"PostgreSQL: starting a temporary cluster (pinned with the load generator: {wrk_cpu or 'no'})")
        with PostgresCluster(cpu_prefix=wrk_cpu) as cluster:
            servers = [dataclasses.replace(s, env=cluster.app_env()) for s in servers]
            passing: dict[str, set[str]] = {}
            for spec in servers:
                print(f"verify {spec.name} …", flush=True)
                try:
                    results = verify_server(spec, cluster, tests, server_cpu)
                except BenchError as exc:
                    results = {t: [f"server did not start: {exc}"] for t in tests}
                data["verification"][spec.name] = results
                for line in verify.describe(results):
                    print(f"  {line}")
                passing[spec.name] = {t for t, p in results.items() if not p}
            if args.verify_only:
                return 0 if all(len(p) == len(tests) for p in passing.values()) else 1
            cells = [
                (lv, conns, spec)
                for lv in plan
                for conns in (lv.scenario.quick_connections if quick else lv.scenario.connections)
                for spec in servers
                if lv.test in passing[spec.name]
            ]
            per = settings["warmup"] + settings["duration"] * settings["runs"] + 2
            print(f"{len(cells)} runs, about {len(cells) * per / 60:.0f} min")
            for i, (lv, conns, spec) in enumerate(cells, 1):
                if lv.test == "updates":
                    cluster.psql("VACUUM ANALYZE world")  # same table state for every server
                print(f"[{i}/{len(cells)}] {spec.name} {lv.scenario.name} c={conns} …", end=" ", flush=True)
                record = run_cell(lv.scenario, conns, spec, settings, server_cpu, wrk_cpu, wrk)
                record["test"] = lv.test
                data["results"].append(record)
                if record["status"] == "ok":
                    m = record["median"]
                    p99 = m["latency_us"].get("p99")
                    errors = m["connect_errors"] + m["read_errors"] + m["write_errors"] + m["timeouts"]
                    extra = (f", p99 {fmt_latency(p99)}" if p99 is not None else "") + (
                        f", {errors} errors" if errors else ""
                    )
                    print(f"{fmt_rps(m['rps'])} req/s{extra}{cpu_note(record)}", flush=True)
                else:
                    failures += 1
                    print(f"FAILED: {record['error']}", flush=True)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: writing what was measured so far")
        data["interrupted"] = True
    data["elapsed_s"] = round(time.monotonic() - t0, 1)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    out = args.output or RESULTS / "techempower" / (f"quick-{stamp}" if quick else stamp)
    written = write_results(data, out, latest=not (quick or args.output), charts=not args.no_charts)
    print(f"\n{report.render_verification(data)}\n\n{report.render_table(data)}\n")
    print(f"done in {data['elapsed_s'] / 60:.1f} min; wrote {', '.join(str(p) for p in written)}")
    failed_tests = sum(1 for r in data["verification"].values() for p in r.values() if p)
    if failures or failed_tests:
        print(f"{failed_tests} verification failure(s), {failures} failed run(s)", file=sys.stderr)
        return 1
    return 0
