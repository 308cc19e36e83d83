"""Differential compatibility checks: the same apps under uvicorn and blazeasgi (``python -m compat``)."""
