"""Mixed mode: native hot routes (``/``, ``/plaintext``, ``/json``, the same handlers as
hello_native) in front of the FastAPI app (fastapi_app), which serves everything else."""

from blazeasgi import App

from . import hello_native
from .fastapi_app import app as fastapi_app

app = App(fallback=fastapi_app)
app.add_route("/", hello_native.hello)
app.add_route("/plaintext", hello_native.plaintext)
app.add_route("/json", hello_native.json_)
