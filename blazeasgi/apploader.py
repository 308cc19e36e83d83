"""Loading the user's app from a ``module:attribute`` string, as the CLI and
``blazeasgi bench`` name it.

Our own usage errors are one-line AppLoadErrors; an exception the user's module
raises while it is imported carries its traceback (ending at the user's file and
line) in ``details``.
"""

from __future__ import annotations

import importlib
import os
import traceback
from typing import Any

from .errors import BlazeasgiError


class AppLoadError(BlazeasgiError):
    """The app named on the command line could not be loaded."""


def import_from_string(target: str, factory: bool = False) -> Any:
    module_name, sep, attrs = target.partition(":")
    if not sep or not module_name or not attrs:
        raise AppLoadError(f'Import string "{target}" must be in format "<module>:<attribute>".')
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name and not module_name.startswith(f"{exc.name}."):
            raise AppLoadError(f'Error importing "{module_name}": {exc}') from exc
        raise AppLoadError(f'Could not import module "{module_name}".') from exc
    except Exception as exc:  # raised by the user's own code: show where
        error = AppLoadError(f'Error importing "{module_name}": {type(exc).__name__}: {exc}')
        error.details = user_traceback(exc)
        raise error from exc
    obj: Any = module
    try:
        for attr in attrs.split("."):
            obj = getattr(obj, attr)
    except AttributeError:
        raise AppLoadError(f'Attribute "{attrs}" not found in module "{module_name}".') from None
    if factory:
        if not callable(obj):
            raise AppLoadError(f'Factory "{target}" is not callable.')
        try:
            obj = obj()
        except Exception as exc:
            raise AppLoadError(f'Factory "{target}" failed: {type(exc).__name__}: {exc}') from exc
    return obj


def user_traceback(exc: BaseException) -> str:
    """The traceback of an exception the user's module raised while imported,
    without the frames of blazeasgi and importlib above it: it ends at the
    user's file and line (a SyntaxError shows its line and caret)."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen importlib")
        and os.path.abspath(frame.filename) not in _IMPORT_MACHINERY
    ]
    text = "".join(traceback.format_exception_only(type(exc), exc))
    if not frames:
        return text
    return (
        "Traceback (most recent call last):\n"
        + "".join(traceback.StackSummary.from_list(frames).format())
        + text
    )


_IMPORT_MACHINERY = frozenset({os.path.abspath(__file__), os.path.abspath(importlib.__file__ or "")})
