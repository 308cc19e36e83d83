"""A module whose import fails on a missing dependency."""

import importlib

importlib.import_module("blazeasgi_no_such_dependency")

app = None
