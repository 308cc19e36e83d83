"""What the atheris targets share: loading blazeasgi so that atheris sees all of it.

blazeasgi/_compiled.py, run when the package is first imported, puts a finder of its
own first in ``sys.meta_path``; running pure, it loads the hot modules (engine,
HTTP/2, the ASGI adapter: _compiled.MODULES) itself. Inside
``atheris.instrument_imports`` that finder would sit before atheris's and load
them uninstrumented, leaving most of the engine out of the coverage libFuzzer
steers by. Loaded first, by path, its finder goes in before atheris's, which then
wraps it and instruments what it loads.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare_imports() -> None:
    """Put the repository on sys.path and decide compiled-or-pure (blazeasgi._compiled)
    before anything of blazeasgi is imported; call it before instrument_imports."""
    sys.path.insert(0, str(ROOT))
    if "blazeasgi._compiled" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("blazeasgi._compiled", ROOT / "blazeasgi" / "_compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
