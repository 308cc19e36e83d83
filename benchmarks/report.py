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
from collections.abc import Iterable
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
                _flag_errors(
                    m["errors"] if http2 else m["connect_errors"] + m["read_errors"] + m["write_errors"]
                ),
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


def _flag_errors(count: int) -> str:
    """A socket error count for the table: any non-zero one stands out (connections
    dropped under load are lost requests, whatever the req/s)."""
    return f"**{count}** (!)" if count else "0"


def render_table(data: dict[str, Any]) -> str:
    parts = []
    for group in groups(data):
        parts += [f"### {title(data, group)}", "", group_table(data, group), ""]
    return "\n".join(parts).rstrip()


DEFAULT_NOTES = [
    "*vs uvicorn*: req/s divided by uvicorn's (httptools, uvloop) on the same app; native handlers, "
    "RSGI and Robyn are compared with uvicorn on the raw ASGI app, mixed mode with uvicorn on the "
    "FastAPI app it extends.",
    "*vs Granian*: divided by Granian's on the same interface and app (Granian RSGI for native "
    "handlers and Robyn); a dash means that server was not in the run.",
    "*socket errors*: wrk's connect + read + write errors, in bold with (!) when not zero; "
    "*timeouts*: requests with no answer within wrk's timeout.",
    "*server CPU*: share of its one core the server process tree used during the measured runs "
    "(median); below 100% it was waiting on the other core (wrk, PostgreSQL).",
    "Latency is not reported for pipelined runs: wrk's latency figures are invalid with pipelining.",
]
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
    args = p.parse_args(argv)
    data = json.loads(args.results.read_text())
    out = args.results.parent
    charts = [] if args.no_charts else write_charts(data, out)
    (out / "results.md").write_text(render_markdown(data, charts))
    print(f"wrote {out / 'results.md'}" + (f" and {', '.join(charts)}" if charts else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
