"""Real applications for the compatibility runner: FastAPI, Starlette and Django (ASGI).

They expose the same endpoints where the frameworks allow it, so one request
corpus (compat/corpus.py) exercises all three. Files they serve live in
``$COMPAT_DATA_DIR`` (the runner creates it once, so both servers see the same
file, mtime and ETag); without it a temporary directory is made on import.
"""
