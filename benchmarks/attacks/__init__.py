"""Attack and load measurements, the same way for blazeasgi and uvicorn (see common.py)."""
