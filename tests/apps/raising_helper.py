"""Called while tests.apps.raising_import is imported: raises NameError."""

from typing import Any


def make_app() -> Any:
    return undefined_name  # type: ignore[name-defined]  # noqa: F821
