"""Compile the hot modules with mypyc when possible; pure Python otherwise.

pyproject.toml holds the metadata; this file only adds the optional extensions.
The modules, the switch and the staleness check live in blazeasgi/_compiled.py.
Nothing here can fail an install: no mypyc, no C compiler, a type error mypyc
rejects, ``BLAZEASGI_PURE=1`` or a non-CPython interpreter all install the same
package as pure Python, with a warning saying why.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "_blazeasgi_compiled", os.path.join(HERE, "blazeasgi", "_compiled.py")
)
assert _spec is not None and _spec.loader is not None
compiled = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compiled)


def warn(message: str) -> None:
    print(f"blazeasgi: {message}; installing pure Python", file=sys.stderr)


def extensions() -> list[Any]:
    if compiled.pure_requested():
        warn(f"{compiled.PURE_ENV} is set")
        return []
    if sys.implementation.name != "cpython":
        warn(f"mypyc needs CPython, not {sys.implementation.name}")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        warn("mypyc is not installed")
        return []
    paths = [
        os.path.relpath(compiled.source_path(m, os.path.join(HERE, "blazeasgi")), HERE)
        for m in compiled.MODULES
    ]
    try:
        # Only the compiled modules must type-check: the rest of the package is
        # followed silently, since the build environment lacks the optional
        # dependencies (websockets, wsproto) that the full `mypy --strict` run sees.
        # The build environment lacks zttp too (pyproject: ignore_missing_imports), so
        # the `type: ignore` comments its types need look unused there.
        options = ["--follow-imports=silent", "--no-warn-unused-ignores"]  # mypy's options among the paths
        return list(mypycify(options + paths, opt_level="3", group_name=compiled.GROUP))
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        warn(f"mypyc could not translate the hot modules ({exc!r})")
        return []


class OptionalBuildExt(build_ext):
    """Builds the extensions, then records the sources they came from.

    The manifest (blazeasgi/_compiled_sources.txt) is written only when every
    extension built: without it the package runs pure. A compiler error is a
    warning, not a failed install.
    """

    def run(self) -> None:
        if not self.extensions:
            return
        group_lib = self.get_ext_fullpath(compiled.GROUP + "__mypyc")
        manifest = os.path.join(os.path.dirname(group_lib), compiled.MANIFEST)
        if os.path.exists(manifest):  # an older build's: void until this one succeeds
            os.remove(manifest)
        try:
            super().run()
        except Exception as exc:
            warn(f"building the compiled modules failed ({exc})")
            return
        with open(manifest, "w", encoding="ascii") as file:
            for module in compiled.MODULES:
                digest = compiled.source_digest(compiled.source_path(module, os.path.join(HERE, "blazeasgi")))
                file.write(f"{module} {digest}\n")

    def get_outputs(self) -> list[str]:
        outputs: list[str] = super().get_outputs()
        if self.extensions:
            group_lib = self.get_ext_fullpath(compiled.GROUP + "__mypyc")
            outputs.append(os.path.join(os.path.dirname(group_lib), compiled.MANIFEST))
        return outputs


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
