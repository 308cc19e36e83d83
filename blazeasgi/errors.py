"""The one base of blazeasgi's own user-facing errors.

Each subclass's message is one line for the user: the CLI catches
BlazeasgiError in one place, prints ``Error: <message>`` and exits with status 1.
This module imports nothing of blazeasgi, so any module may import it.
"""

from __future__ import annotations


class BlazeasgiError(Exception):
    """A user error (bad flag, unloadable app, port in use...) with a one-line message.

    ``details``, when set, is printed above that line: e.g. the traceback of an
    exception raised by the user's own code while it was imported.
    """

    details: str = ""
