"""The compiled hot path (blazeasgi/_compiled.py, setup.py): used when built, never stale.

A build with mypyc leaves extensions beside the sources and a manifest of the sources
they came from. These tests check that such a build is really what gets imported,
that ``BLAZEASGI_PURE=1`` and a changed source both fall back to the ``.py`` files,
and that a package without a build runs pure. Without a build here, the tests that
need one are skipped; the rest still run.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import blazeasgi
from blazeasgi import _compiled

PACKAGE = Path(blazeasgi.__file__).parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
#: Built for this interpreter: an in-place build for another Python leaves the
#: manifest too (its extensions carry that Python's suffix).
BUILT = (PACKAGE / _compiled.MANIFEST).exists() and (
    PACKAGE / (_compiled.GROUP.split(".")[-1] + "__mypyc" + SUFFIX)
).exists()
#: An in-place build a source has changed since (an edit without a rebuild) runs pure.
STALE = (_compiled._unusable(str(PACKAGE)) or "").startswith("stale")
needs_build = pytest.mark.skipif(
    not BUILT or STALE,
    reason="the compiled modules are not built (pure install, or for another Python), or stale (rebuild)",
)

REPORT = (
    "import blazeasgi, blazeasgi.engine.server, blazeasgi.asgi.adapter\n"
    "from blazeasgi import _compiled\n"
    "print(_compiled.STATUS)\n"
    "print(sorted(_compiled.loaded_compiled().items()))\n"
)


def report(root: Path, **env: str) -> tuple[str, dict[str, bool]]:
    """(STATUS, {module: compiled}) of a fresh interpreter importing blazeasgi from ``root``."""
    environ = {k: v for k, v in os.environ.items() if k != _compiled.PURE_ENV}
    environ.update(env, PYTHONPATH=str(root))
    out = subprocess.run(
        [sys.executable, "-c", REPORT], capture_output=True, text=True, env=environ, cwd=root, timeout=60
    )
    assert out.returncode == 0, out.stderr
    status, loaded = out.stdout.splitlines()
    return status, dict(eval(loaded))


def copy_package(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "blazeasgi", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_this_process_loaded_what_was_decided() -> None:
    import blazeasgi.asgi.adapter
    import blazeasgi.engine.server

    loaded = _compiled.loaded_compiled()
    assert set(loaded) == set(_compiled.MODULES)
    assert set(loaded.values()) == {_compiled.COMPILED}
    assert blazeasgi.COMPILED is _compiled.COMPILED


@needs_build
def test_a_build_is_what_gets_imported() -> None:
    if _compiled.pure_requested():
        pytest.skip(f"{_compiled.PURE_ENV} is set")
    status, loaded = report(PACKAGE.parent)
    assert status == "compiled (mypyc)"
    assert loaded == dict.fromkeys(_compiled.MODULES, True)
    for module in _compiled.MODULES:
        assert Path(_compiled.source_path(module, str(PACKAGE))[: -len(".py")] + SUFFIX).exists()


def test_pure_on_request(tmp_path: Path) -> None:
    status, loaded = report(copy_package(tmp_path), **{_compiled.PURE_ENV: "1"})
    assert status == f"pure Python ({_compiled.PURE_ENV}=1)"
    assert loaded == dict.fromkeys(_compiled.MODULES, False)


def test_pure_when_not_built(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    (root / "blazeasgi" / _compiled.MANIFEST).unlink(missing_ok=True)
    status, loaded = report(root)
    assert status == "pure Python (not built)"
    assert loaded == dict.fromkeys(_compiled.MODULES, False)


@needs_build
def test_an_edited_source_is_never_shadowed_by_its_old_build(tmp_path: Path) -> None:
    """Editable installs build in place: after an edit, the .py runs until the next build."""
    root = copy_package(tmp_path)
    source = Path(_compiled.source_path("blazeasgi.engine.exchange", str(root / "blazeasgi")))
    source.write_text(source.read_text() + "\nEDITED = True\n")
    status, loaded = report(root)
    assert status.startswith("pure Python (stale: blazeasgi.engine.exchange changed")
    # All or none: compiled modules reach each other's classes directly.
    assert loaded == dict.fromkeys(_compiled.MODULES, False)


@needs_build
def test_pure_when_built_for_another_python(tmp_path: Path) -> None:
    root = copy_package(tmp_path)
    for built in (root / "blazeasgi").rglob("*" + SUFFIX):
        built.rename(str(built)[: -len(SUFFIX)] + ".cpython-399-x86_64-linux-gnu.so")
    status, loaded = report(root)
    assert status == "pure Python (not built for this Python)"
    assert loaded == dict.fromkeys(_compiled.MODULES, False)


@needs_build
def test_a_module_an_older_build_compiled_loads_from_its_source(tmp_path: Path) -> None:
    """An in-place build leaves a module's extension after the module leaves MODULES
    (here tasks.py, compiled once): the .py is what runs, not an import error."""
    root = copy_package(tmp_path)
    leftover = Path(_compiled.source_path("blazeasgi.engine.exchange", str(root / "blazeasgi")))
    stale = root / "blazeasgi" / "engine" / ("tasks" + SUFFIX)
    shutil.copy(str(leftover)[: -len(".py")] + SUFFIX, stale)  # a shim into the group library
    status, loaded = report(root)
    assert status == "compiled (mypyc)"
    assert loaded == dict.fromkeys(_compiled.MODULES, True)


def test_version_says_which(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "blazeasgi", "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, _compiled.PURE_ENV: "1"},
        timeout=60,
    )
    assert out.stdout.strip().endswith(f"pure Python ({_compiled.PURE_ENV}=1)")
