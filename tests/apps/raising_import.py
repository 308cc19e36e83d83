"""A module whose import fails in the user's own code, one call deeper."""

from .raising_helper import make_app

app = make_app()
