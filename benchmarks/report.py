"""Markdown tables and PNG charts from a results.json (``python -m benchmarks.report FILE``).

Ratios: "vs uvicorn" divides a server's req/s by uvicorn's on the same app (the raw
ASGI app for servers with no ASGI app of their own: native, RSGI, Robyn; the FastAPI
app for mixed mode, since that is what the mixed app adds native routes to); "vs
Granian" by Granian's on the same interface and app (Granian RSGI for native handlers
and Robyn). A dash means that baseline was not part of the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from blazeasgi.wrk import NA, fmt_bytes_rate, fmt_latency, fmt_ratio, fmt_rps, markdown_table

from .machine import describe

Group = tuple[str, int]


def groups(data: dict[str, Any]) -> list[Group]:
    """(scenario, connections) in the order they were run."""
    seen: list[Group] = []
    for r in data["results"]:
        key = (r["scenario"], r["connections"])
        if key not in seen:
            seen.append(key)
    return seen


def _ok(data: dict[str, Any], group: Group) -> dict[str, dict[str, Any]]:
    return {
        r["server"]: r["median"]
        for r in data["results"]
        if (r["scenario"], r["connections"]) == group and r["status"] == "ok"
    }


def baseline_for(data: dict[str, Any], server: str, kind: str) -> str | None:
    """The server this one is compared with: ``kind`` is "uvicorn" or "granian"."""
    info = data["servers"].get(server, {})
    if info.get("server") == kind:
        return server
    name = info.get(f"{kind}_baseline")
    return str(name) if name else None


def ratio(data: dict[str, Any], group: Group, server: str, kind: str) -> str:
    by_server = _ok(data, group)
    base = baseline_for(data, server, kind)
    if server not in by_server or base is None or base not in by_server:
        return NA
    return fmt_ratio(by_server[server]["rps"], by_server[base]["rps"])


def title(data: dict[str, Any], group: Group) -> str:
    scenario, conns = group
    info = data.get("scenarios", {}).get(scenario, {})
    request = f"{info.get('method', 'GET')} {info.get('path', '')}"
    load = f"{conns} connections"
    if info.get("protocol") == "h2c":
        streams = info.get("streams", 1)
        load += f", {streams} stream{'s' if streams != 1 else ''} each"
    return f"{info.get('title', scenario)} ({request}), {load}"


def is_http2(data: dict[str, Any], group: Group) -> bool:
    return bool(data.get("scenarios", {}).get(group[0], {}).get("protocol") == "h2c")


def group_table(data: dict[str, Any], group: Group) -> str:
    header = [
        "server",
        "req/s",
        "transfer/s",
        "p50",
        "p99",
        "socket errors",
        "timeouts",
        "server CPU",
        "vs uvicorn",
        "vs Granian",
    ]
    http2 = is_http2(data, group)
    if http2:  # h2load: failed, reset, timed-out and non-2xx requests
        header[5] = "errors"
    rows = []
    medians = _ok(data, group)
    errors = _run_errors(data, group, http2)
    busy = {
        r["server"]: f"{statistics.median(r['server_cpu']):.0%}"
        for r in data["results"]
        if (r["scenario"], r["connections"]) == group and r.get("server_cpu")
    }
    for server, m in sorted(medians.items(), key=lambda kv: -kv[1]["rps"]):
        lat = m["latency_us"]
        rows.append(
            [
                server,
                fmt_rps(m["rps"]),
                fmt_bytes_rate(m["transfer_per_s"]),
                fmt_latency(lat.get("p50")),
                fmt_latency(lat.get("p99")),
                _flag_errors(errors.get(server, [])),
                str(m["timeouts"]),
                busy.get(server, NA),
                ratio(data, group, server, "uvicorn"),
                ratio(data, group, server, "granian"),
            ]
        )
    for r in data["results"]:
        if (r["scenario"], r["connections"]) == group and r["status"] != "ok":
            rows.append([r["server"], "failed", *[NA] * 8])
    return markdown_table(header, rows, "lrrrrrrrrr")


def _socket_errors(run: dict[str, Any], http2: bool) -> int:
    if http2:  # h2load's failed, errored and timed-out requests and non-2xx answers
        return int(run["errors"])
    return int(run["connect_errors"] + run["read_errors"] + run["write_errors"])


def _run_errors(data: dict[str, Any], group: Group, http2: bool = False) -> dict[str, list[int]]:
    """Each server's errors in every measured run of ``group``, not just the median
    run the other columns show: errors come and go between runs (issue 18)."""
    return {
        r["server"]: [_socket_errors(run, http2) for run in r.get("runs") or [r["median"]]]
        for r in data["results"]
        if (r["scenario"], r["connections"]) == group and r["status"] == "ok"
    }


def _flag_errors(counts: Sequence[int]) -> str:
    """Socket errors per run for the table, "0" when there were none; any non-zero
    count stands out (connections dropped under load are lost requests, whatever
    the req/s): ``0 / **98** / 0 (!)``."""
    if not any(counts):
        return "0"
    return " / ".join(f"**{n}**" if n else "0" for n in counts) + " (!)"


def render_table(data: dict[str, Any]) -> str:
    parts = []
    for group in groups(data):
        parts += [f"### {title(data, group)}", "", group_table(data, group), ""]
    return "\n".join(parts).rstrip()


# -- the Blazeio post's shape ---------------------------------------------------------------------

#: The connection levels of the Blazeio benchmark post (wrk -t1, 10 s runs, "Hello world"
#: with five security headers): results.md adds its tables when a run covers all four.
BLAZEIO_LEVELS = (1000, 3000, 5000, 10000)
MIB = 1 << 20


def _median(values: Iterable[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def blazeio_figures(data: dict[str, Any], scenario: str = "hello") -> dict[int, dict[str, dict[str, Any]]]:
    """{connections: {server: figures}} for ``scenario``: req/s, bytes/s, mean latency (µs) and
    requests per run, each the median over the cell's measured runs (not the median run's);
    a failed cell is ``{"failed": True}``."""
    cells: dict[int, dict[str, dict[str, Any]]] = {}
    for r in data["results"]:
        if r["scenario"] != scenario:
            continue
        by_server = cells.setdefault(r["connections"], {})
        if r["status"] != "ok":
            by_server[r["server"]] = {"failed": True}
            continue
        runs = r.get("runs") or [r["median"]]
        by_server[r["server"]] = {
            "rps": _median(run["rps"] for run in runs),
            "transfer_per_s": _median(run["transfer_per_s"] for run in runs),
            "latency_mean_us": _median(run["latency_us"].get("mean") for run in runs),
            "requests": _median(run["requests"] for run in runs),
        }
    return dict(sorted(cells.items()))


def has_blazeio_levels(data: dict[str, Any], scenario: str = "hello") -> bool:
    return set(BLAZEIO_LEVELS) <= {c for sc, c in groups(data) if sc == scenario}


def render_blazeio(data: dict[str, Any], scenario: str = "hello") -> str:
    """The Blazeio post's tables for ``scenario``: one per figure (req/s, transfer rate,
    average latency, requests served in one run), a row per connection level, a column
    per server in the run's order."""
    cells = blazeio_figures(data, scenario)
    servers = [name for name in data.get("servers", {}) if any(name in c for c in cells.values())]
    servers += sorted({name for c in cells.values() for name in c} - set(servers))
    duration = data["settings"]["duration"]

    def mib(value: float) -> str:
        return f"{value / MIB:.2f}"

    def count(value: float) -> str:
        return f"{value:,.0f}"

    figures = [
        ("Requests per second", "rps", fmt_rps),
        ('Transfer rate, MiB/s (wrk\'s "MB")', "transfer_per_s", mib),
        ("Average latency", "latency_mean_us", fmt_latency),
        (f"Requests served in {duration} s (one run)", "requests", count),
    ]
    parts = []
    for heading, key, fmt in figures:
        rows = []
        for conns, by_server in cells.items():
            row = [f"{conns:,}"]
            for server in servers:
                cell = by_server.get(server)
                if cell is None or (not cell.get("failed") and cell[key] is None):
                    row.append(NA)
                else:
                    row.append("failed" if cell.get("failed") else fmt(cell[key]))
            rows.append(row)
        parts += [
            f"**{heading}**",
            "",
            markdown_table(["connections", *servers], rows, "r" * (len(servers) + 1)),
            "",
        ]
    return "\n".join(parts).rstrip()


DEFAULT_NOTES = [
    "*vs uvicorn*: req/s divided by uvicorn's (httptools, uvloop) on the same app; native handlers, "
    "RSGI and Robyn are compared with uvicorn on the raw ASGI app, mixed mode with uvicorn on the "
    "FastAPI app it extends.",
    "*vs Granian*: divided by Granian's on the same interface and app (Granian RSGI for native "
    "handlers and Robyn); a dash means that server was not in the run.",
    "*socket errors*: wrk's connect + read + write errors in each measured run (the other columns "
    "are the median run's), in bold with (!) when any is not zero; "
    "*timeouts*: requests with no answer within wrk's timeout.",
    "*server CPU*: share of its one core the server process tree used during the measured runs "
    "(median); below 100% it was waiting on the other core (wrk, PostgreSQL).",
    "Latency is not reported for pipelined runs: wrk's latency figures are invalid with pipelining.",
]
BLAZEIO_NOTE = (
    "Hello world with five security headers at the Blazeio benchmark post's connection levels, "
    "as its tables: each figure is the median over the measured runs (so a row may mix runs); "
    "transfer rate in MiB/s, which wrk prints as MB/s; average latency is wrk's mean."
)
HTTP2_NOTES = [
    "HTTP/2 tables (h2c with prior knowledge, h2load -t1 with -m streams per connection): *errors* "
    "counts every request that did not end with a 2xx (h2load's failed, errored and timed-out "
    "requests and 3xx/4xx/5xx answers); requests still in flight when a timed run ends are neither "
    "(a server that answered nothing shows 0 req/s and 0 errors); h2load gives no latency "
    "percentiles. On HTTP/2, uvicorn "
    "runs `--http zttp --http2` and Granian `--http auto`.",
]


def _pinning(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} on CPU {v}" for k, v in value.items())
    return str(value)


def render_markdown(data: dict[str, Any], charts: Iterable[str] = ()) -> str:
    s = data["settings"]
    http2 = any(is_http2(data, group) for group in groups(data))
    lines = [
        f"# {data.get('title', 'blazeasgi benchmarks')}, {data['created']}",
        "",
        f"**Machine:** {describe(data['machine'])}",
        "",
        f"**Method:** wrk -t{s['threads']} (timeout {s['timeout']} s), "
        f"{s['runs']} run(s) of {s['duration']} s "
        f"after {s['warmup']} s of warm-up per cell, median run shown; pinning: {_pinning(s['pinning'])}; "
        "one server worker, access logs off, keep-alive on; every server checked before load "
        "(same payload everywhere)."
        + (
            " HTTP/2 cells: h2load -t1 instead of wrk, h2c with prior knowledge, the same runs "
            "(quick mode: one run of a fixed number of requests)."
            if http2
            else ""
        )
        + (" **Quick mode: smoke-test figures, not for comparison.**" if s.get("quick") else ""),
        "",
        f"**Command:** `{data['command']}` ({data.get('elapsed_s', 0) / 60:.1f} min)",
        "",
    ]
    lines += [f"{line}" for line in data.get("preamble", [])]
    if data.get("interrupted"):
        lines += ["**Interrupted before the end: some cells are missing.**", ""]
    for chart in charts:
        lines += [f"![{chart}]({chart})", ""]
    if data.get("verification"):
        lines += ["## Verification", "", render_verification(data), ""]
    lines += ["## Results", "", render_table(data), ""]
    if has_blazeio_levels(data):
        lines += ["## In the Blazeio post's shape", "", BLAZEIO_NOTE, "", render_blazeio(data), ""]
    lines += ["## Notes", ""]
    notes = data.get("notes", DEFAULT_NOTES + (HTTP2_NOTES if http2 else []))
    lines += [f"- {note}" for note in notes]
    servers = data.get("servers", {})
    if servers:
        lines += ["", "| server | interface | app |", "| --- | --- | --- |"]
        lines += [f"| {k} | {v['interface']} | `{v['app']}` |" for k, v in servers.items()]
    if data.get("skipped_servers"):
        lines += ["", "Skipped servers:", ""]
        lines += [f"- {k}: {v}" for k, v in data["skipped_servers"].items()]
    failed = [r for r in data["results"] if r["status"] != "ok"]
    if failed:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {r['server']} {r['scenario']} c={r['connections']}: {r.get('error')}" for r in failed]
    return "\n".join(lines) + "\n"


def render_verification(data: dict[str, Any]) -> str:
    """PASS/FAIL per server and test, then the problems of each failure."""
    verification: dict[str, dict[str, list[str]]] = data["verification"]
    tests: list[str] = []
    for by_test in verification.values():
        tests += [t for t in by_test if t not in tests]
    rows = [
        [server, *(NA if t not in by_test else "FAIL" if by_test[t] else "PASS" for t in tests)]
        for server, by_test in verification.items()
    ]
    text = markdown_table(["server", *tests], rows)
    problems = [
        f"- {server} {test}: {'; '.join(p)}"
        for server, by_test in verification.items()
        for test, p in by_test.items()
        if p
    ]
    return text + ("\n\nFailures (not benchmarked):\n\n" + "\n".join(problems) if problems else "")


# -- charts ---------------------------------------------------------------------------------------


FAMILY_MAPS = {"blazeasgi": "Blues", "uvicorn": "Greens", "granian": "Oranges", "hypercorn": "Purples"}


def _colors(data: dict[str, Any]) -> dict[str, Any]:
    """One hue per server family (blazeasgi blue, uvicorn green, Granian orange, ...),
    shades within it."""
    import matplotlib

    servers = data.get("servers", {})
    names = list(servers) or sorted({r["server"] for r in data["results"]})
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(servers.get(name, {}).get("server", name.split("-")[0]), []).append(name)
    colors = {}
    for family, members in families.items():
        cmap = matplotlib.colormaps[FAMILY_MAPS.get(family, "Greys" if family == "robyn" else "RdPu")]
        for i, name in enumerate(members):
            colors[name] = cmap(0.9 - 0.5 * i / max(len(members) - 1, 1))
    return colors


def write_charts(data: dict[str, Any], out: Path) -> list[str]:
    """req/s against connections, req/s per scenario, latency percentiles; returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    if not any(r["status"] == "ok" for r in data["results"]):
        return []
    colors = _colors(data)
    files = []
    pinned = _pinning(data["settings"].get("pinning"))
    machine = data["machine"]
    subtitle = f"{machine.get('cpu_model')}, {machine.get('cores')} cores ({pinned}); {data['created'][:10]}"
    thousands = FuncFormatter(lambda x, _: f"{x / 1000:.3g}k" if x >= 1000 else f"{x:.0f}")

    # 1. req/s against connections, one line per server, one panel per scenario with levels.
    by_scenario: dict[str, list[int]] = {}
    for scenario, conns in groups(data):
        by_scenario.setdefault(scenario, []).append(conns)
    multi = [sc for sc, levels in by_scenario.items() if len(levels) > 1] or list(by_scenario)[:1]
    ncols = min(2, len(multi))
    nrows = (len(multi) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(9 * ncols, 5.5 * nrows), squeeze=False)
    for ax in axes.flat[len(multi) :]:
        ax.set_visible(False)
    for ax, scenario in zip(axes.flat, multi, strict=False):
        levels = sorted(by_scenario[scenario])
        for server in colors:
            points = [(c, _ok(data, (scenario, c)).get(server)) for c in levels]
            xs = [c for c, m in points if m]
            ys = [m["rps"] for c, m in points if m]
            if xs:
                ax.plot(xs, ys, marker="o", label=server, color=colors[server], linewidth=2)
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(levels)
        ax.set_xticklabels([str(c) for c in levels])
        ax.yaxis.set_major_formatter(thousands)
        ax.set_xlabel("connections")
        ax.set_ylabel("requests per second")
        ax.set_title(data["scenarios"].get(scenario, {}).get("title", scenario))
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"req/s against connections\n{subtitle}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.7 / fig.get_figheight()))
    fig.savefig(out / "rps_vs_connections.png", dpi=110)
    plt.close(fig)
    files.append("rps_vs_connections.png")

    # 2 and 3. Per (scenario, level): req/s bars, then p50/p90/p99 latency bars.
    for kind in ("throughput", "latency"):
        cells = [g for g in groups(data) if _ok(data, g)]
        if kind == "latency":  # pipelined runs have no latency figures
            cells = [g for g in cells if any(m["latency_us"] for m in _ok(data, g).values())]
            if not cells:
                continue
        cols = 2 if len(cells) > 1 else 1
        rows = (len(cells) + cols - 1) // cols
        height = max(3.0, 0.32 * max(len(_ok(data, g)) for g in cells) + 1.2)
        fig, axes = plt.subplots(rows, cols, figsize=(8 * cols, height * rows), squeeze=False)
        for ax in axes.flat[len(cells) :]:
            ax.set_visible(False)
        for ax, group in zip(axes.flat, cells, strict=False):
            medians = sorted(_ok(data, group).items(), key=lambda kv: kv[1]["rps"])
            if kind == "latency":
                medians = [(n, m) for n, m in medians if m["latency_us"]]
            names = [n for n, _ in medians]
            ypos = range(len(names))
            if kind == "throughput":
                values = [m["rps"] for _, m in medians]
                bars = ax.barh(ypos, values, color=[colors.get(n, "grey") for n in names])
                for bar, value in zip(bars, values, strict=True):
                    ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:,.0f}",
                            va="center", fontsize=7)  # fmt: skip
                ax.xaxis.set_major_formatter(thousands)
                ax.set_xlabel("requests per second")
                ax.set_xlim(right=max(values) * 1.18)
            else:
                width = 0.27
                for j, (pct, shade) in enumerate((("p50", 0.45), ("p90", 0.7), ("p99", 1.0))):
                    values = [m["latency_us"].get(pct, 0) / 1000 for _, m in medians]
                    ax.barh([y + (j - 1) * width for y in ypos], values, height=width, label=pct,
                            color=(0.12, 0.35, 0.65, shade))  # fmt: skip
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.set_xlabel("latency, ms (log scale)")
                ax.legend(fontsize=7, loc="lower right")
            ax.set_yticks(list(ypos))
            ax.set_yticklabels(names, fontsize=8)
            ax.set_title(title(data, group), fontsize=9)
            ax.grid(True, axis="x", alpha=0.3)
        label = "requests per second" if kind == "throughput" else "latency percentiles (p50, p90, p99)"
        fig.suptitle(f"{label}\n{subtitle}", fontsize=11)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.7 / fig.get_figheight()))
        fig.savefig(out / f"{kind}.png", dpi=100)
        plt.close(fig)
        files.append(f"{kind}.png")
    return files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    p.add_argument("results", type=Path, help="a results.json written by python -m benchmarks")
    p.add_argument("--no-charts", action="store_true")
    p.add_argument(
        "--blazeio",
        nargs="?",
        const="hello",
        metavar="SCENARIO",
        help="print the Blazeio post's tables (req/s, transfer rate, average latency, requests "
        "per run by connection level) for SCENARIO (default hello) instead of writing files",
    )
    args = p.parse_args(argv)
    data = json.loads(args.results.read_text())
    if args.blazeio:
        if not any(sc == args.blazeio for sc, _ in groups(data)):
            raise SystemExit(f"no {args.blazeio!r} results in {args.results}")
        print(render_blazeio(data, args.blazeio))
        return 0
    out = args.results.parent
    charts = [] if args.no_charts else write_charts(data, out)
    (out / "results.md").write_text(render_markdown(data, charts))
    print(f"wrote {out / 'results.md'}" + (f" and {', '.join(charts)}" if charts else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
