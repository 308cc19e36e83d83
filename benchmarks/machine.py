"""What the figures were measured on: recorded with every result file."""

from __future__ import annotations

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
    return (
        f"{info.get('cpu_model')}, {info.get('cores')} cores, {info.get('memory_gib')} GiB, "
        f"Linux {info.get('kernel')}, {info.get('python')}, {info.get('wrk')}{load_text}{rev}. "
        f"Packages: {pkgs}."
    )
