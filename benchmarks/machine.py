"""What the figures were measured on: recorded with every result file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "blazeasgi", "uvicorn", "granian", "hypercorn", "robyn", "starlette", "fastapi", "pydantic",
    "uvloop", "httptools", "orjson", "asyncpg", "jinja2", "matplotlib",
)  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def interpreter_info(python: str, names: tuple[str, ...] = PACKAGES) -> dict[str, Any]:
    """Another interpreter (``--python``): its version and its versions of ``names``.

    ``{"executable": python, "python": None, "packages": {}}`` if it cannot be run.
    """
    script = (
        "import json, platform, sys\n"
        "from importlib import metadata\n"
        "def version(name):\n"
        "    try:\n"
        "        return metadata.version(name)\n"
        "    except metadata.PackageNotFoundError:\n"
        "        return None\n"
        "print(json.dumps({'python': platform.python_implementation() + ' ' + platform.python_version(),"
        " 'packages': {name: version(name) for name in sys.argv[1:]}}))"
    )
    info: dict[str, Any] = {"executable": python, "python": None, "packages": {}}
    try:
        info.update(json.loads(_run([python, "-c", script, *names]) or "{}"))
    except ValueError:
        pass
    return info


def _run(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (out.stdout or out.stderr).strip()


def git_revision() -> dict[str, Any]:
    commit = _run(["git", "rev-parse", "HEAD"])
    dirty = bool(_run(["git", "status", "--porcelain", "--untracked-files=no"]))
    return {"commit": commit or None, "dirty": dirty}


def machine_info() -> dict[str, Any]:
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    wrk = _run(["wrk", "-v"]).splitlines()
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return {
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "cpu_model": cpu_model(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_executable": sys.executable,
        "wrk": wrk[0].split(" Copyright")[0] if wrk else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "packages": package_versions(),
        "git": git_revision(),
    }


def describe(info: dict[str, Any]) -> str:
    """One line for the report header."""
    pkgs = ", ".join(f"{k} {v}" for k, v in info.get("packages", {}).items() if v)
    load = info.get("load_average")
    load_text = f"; load average at start {load[0]:.2f}" if load else ""
    git = info.get("git") or {}
    rev = (
        f"; blazeasgi at {str(git.get('commit'))[:10]}{' (dirty)' if git.get('dirty') else ''}"
        if git.get("commit")
        else ""
    )
    others = "".join(
        f" {server} ran on {other.get('executable')} ({other.get('python')}"
        + "".join(f", {k} {v}" for k, v in other.get("packages", {}).items() if v)
        + ")."
        for server, other in info.get("interpreters", {}).items()
    )
    return (
        f"{info.get('cpu_model')}, {info.get('cores')} cores, {info.get('memory_gib')} GiB, "
        f"Linux {info.get('kernel')}, {info.get('python')}, {info.get('wrk')}{load_text}{rev}. "
        f"Packages: {pkgs}.{others}"
    )


def process_tree_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by ``pid`` and every descendant.

    Read from /proc (None elsewhere). Sampled around a wrk run it tells whether the
    server's core was saturated: a server below 100% was waiting on something else
    (the load generator, or PostgreSQL on the other core).
    """
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").exists():
        return None
    stats: dict[int, tuple[int, int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # The command name (field 2) may hold spaces or parentheses: split after it.
        fields = text[text.rfind(")") + 2 :].split()
        # utime + stime, plus cutime + cstime: children that already exited (a worker
        # replaced during the run) moved their time to their parent.
        stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    tick = os.sysconf("SC_CLK_TCK")
    family, total = {pid}, 0
    changed = True
    while changed:
        changed = False
        for child, (parent, _) in stats.items():
            if parent in family and child not in family:
                family.add(child)
                changed = True
    for member in family:
        if member in stats:
            total += stats[member][1]
    return total / tick
