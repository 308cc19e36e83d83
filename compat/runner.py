"""Serve one app with uvicorn (the reference) and blazeasgi, send both the corpus, compare.

Both servers run as subprocesses on free 127.0.0.1 ports, with the same event loop
(``--loop``), the same app module and the same data directory. Compared per case:
the status, the headers and the body, after the normalisation below; for raw
socket cases also every interim (1xx) response and whether the connection was
closed afterwards.

Normalised, and why:

* ``Date`` and ``Server`` are dropped: a clock and the server's name.
* Header names are compared lower-cased (RFC 9110 §5.1: case-insensitive; uvicorn
  lower-cases them on the wire, blazeasgi sends the app's spelling).
* Headers are compared sorted by name, keeping the order of repeated fields
  (RFC 9110 §5.3: only the order of same-name fields carries meaning; the two
  servers place their framing headers differently).
* ``127.0.0.1:<port>`` in headers and bodies becomes ``127.0.0.1:<port>``: each
  server has its own port.
* Values that differ between any two runs of the same server: signed session
  cookies (they embed a timestamp), cookie ``expires`` dates (now + max-age) and
  the random ``multipart/byteranges`` boundary.
* httpx decodes gzip bodies, so the gzip header's timestamp never shows; the
  ``Content-Length`` of an encoded body is dropped because Django pads every
  gzip body with random bytes (its BREACH mitigation), so it varies per response
  even from one server. The decoded bodies are compared.

Both servers get ``PYTHONHASHSEED=0``: set-built headers (Starlette's ``Allow``)
are otherwise ordered differently by each process.

Each httpx case gets a fresh connection (a flow keeps one for its steps): a case
whose response closes the connection (an app exception) must not turn the next
case into a race between the server's FIN and the client's next request.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .corpus import Case, Flow, Http, Raw, cases_for
from .known import KNOWN

ROOT = Path(__file__).resolve().parent.parent
APPS = {
    "fastapi": "compat.apps.fastapi_app:app",
    "starlette": "compat.apps.starlette_app:app",
    "django": "compat.apps.django_app:app",
}
SERVERS = ("uvicorn", "blazeasgi")
TIMEOUT = 10.0


# -- servers ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    kind: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def start_server(kind: str, target: str, loop: str, env: dict[str, str], logdir: Path) -> Server:
    port = free_port()
    if kind == "uvicorn":
        args = ["-m", "uvicorn", target, "--http", "httptools", "--log-level", "warning"]
    else:
        args = ["-m", "blazeasgi", target, "--log-level", "warning"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--loop", loop, "--no-access-log"]
    log = logdir / f"{kind}-{target.split(':')[0].rsplit('.', 1)[-1]}-{loop}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited ({proc.returncode}) serving {target}:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return Server(kind, port, proc, log)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} did not start serving {target}:\n{log.read_text()}")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(10)


# -- one observation ----------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Observed:
    responses: list[Response] = field(default_factory=list)
    closed: bool | None = None  # raw cases: did the server close the connection afterwards?
    error: str | None = None


def run_http(client: httpx.Client, case: Http | Flow) -> Observed:
    try:
        if isinstance(case, Flow):
            r = case.steps(client)
        else:
            content: Any = case.content
            if case.chunked and content is not None:
                data = content
                content = (data[i : i + 65536] for i in range(0, len(data), 65536))
            r = client.request(
                case.method,
                case.path,
                headers=case.headers,
                content=content,
                json=case.json,
                data=case.data,
                files=case.files,
            )
    except httpx.HTTPError as exc:
        return Observed(error=f"{type(exc).__name__}: {exc}")
    return Observed([Response(r.status_code, list(r.headers.multi_items()), r.content)])


def run_raw(port: int, case: Raw) -> Observed:
    observed = Observed()
    buf = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        for i, part in enumerate(case.parts):
            if i:  # a later part: first give the server a moment to answer (100 Continue)
                sock.settimeout(0.3)
                with contextlib.suppress(TimeoutError):
                    while b"\r\n\r\n" not in buf:
                        chunk = sock.recv(65536)
                        if not chunk:
                            closed = True
                            break
                        buf += chunk
            if not closed:
                with contextlib.suppress(OSError):
                    sock.sendall(part)
        methods = list(case.methods)
        sock.settimeout(TIMEOUT)
        while methods:
            parsed = parse_response(buf, methods[0], closed)
            if parsed is not None:
                response, buf = parsed
                observed.responses.append(response)
                if not 100 <= response.status < 200:
                    methods.pop(0)
                elif len(methods) > 1 and methods[1] == methods[0]:
                    methods.pop(0)  # the interim response was expected as an entry of its own
                continue
            if closed:
                break
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError) as exc:
                observed.error = f"no complete response: {type(exc).__name__}"
                break
            if not chunk:
                closed = True
            buf += chunk
        if not closed:
            sock.settimeout(0.5)
            try:
                chunk = sock.recv(65536)
                closed = not chunk
                if chunk:
                    observed.error = f"unexpected bytes after the responses: {chunk[:80]!r}"
            except TimeoutError:
                closed = False
            except OSError:
                closed = True
    if buf:
        observed.error = f"unparsed bytes: {buf[:80]!r}"
    observed.closed = closed
    return observed


def parse_response(buf: bytes, method: str, closed: bool) -> tuple[Response, bytes] | None:
    """One response off the front of ``buf``, framed as RFC 9112 §6.3 says; None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].split(b"\r\n")
    rest = buf[end + 4 :]
    status = int(lines[0].split(b" ")[1])
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    names = {n.lower(): v for n, v in headers}
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        return Response(status, headers, b""), rest
    if "chunked" in names.get("transfer-encoding", "").lower():
        body = b""
        pos = 0
        while True:
            eol = rest.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(rest[pos:eol].split(b";")[0], 16)
            pos = eol + 2
            if size == 0:
                trailer_end = rest.find(b"\r\n", pos)
                while trailer_end >= 0 and trailer_end != pos:  # trailer fields
                    headers.append(("<trailer>", rest[pos:trailer_end].decode("latin-1")))
                    pos = trailer_end + 2
                    trailer_end = rest.find(b"\r\n", pos)
                if trailer_end < 0:
                    return None
                return Response(status, headers, body), rest[pos + 2 :]
            if len(rest) < pos + size + 2:
                return None
            body += rest[pos : pos + size]
            pos += size + 2
    if "content-length" in names:
        length = int(names["content-length"])
        if len(rest) < length:
            return None
        return Response(status, headers, rest[:length]), rest[length:]
    if not closed:
        return None
    return Response(status, headers, rest), b""


# -- normalisation and comparison -----------------------------------------------------------------
_VOLATILE = {"date", "server"}
_SESSION = re.compile(r"^(session|sessionid)=[^;]*", re.IGNORECASE)
_EXPIRES = re.compile(r"expires=(?!Thu, 01 Jan 1970)[^;]*", re.IGNORECASE)
_BOUNDARY = re.compile(r"boundary=([0-9A-Za-z'()+_,\-./:=?]+)")


def normalise(response: Response, port: int) -> Response:
    here = f"127.0.0.1:{port}"
    headers = []
    body = response.body.replace(here.encode(), b"127.0.0.1:<port>")
    for name, value in response.headers:
        name = name.lower()
        if name in _VOLATILE:
            continue
        value = value.replace(here, "127.0.0.1:<port>")
        if name == "set-cookie":
            value = _EXPIRES.sub("expires=<now+max-age>", _SESSION.sub(r"\1=<signed>", value))
        if name == "content-type" and (match := _BOUNDARY.search(value)):
            body = body.replace(match.group(1).encode(), b"<boundary>")
            value = value.replace(match.group(1), "<boundary>")
        headers.append((name, value))
    if any(name == "content-encoding" for name, _ in headers):
        headers = [(n, v) for n, v in headers if n != "content-length"]
    headers.sort(key=lambda item: item[0])  # stable: repeated fields keep their order
    return Response(response.status, headers, body)


def differences(ref: Observed, got: Observed) -> list[str]:
    out: list[str] = []
    if ref.error or got.error:
        if ref.error != got.error:
            out.append(f"error: uvicorn={ref.error!r} blazeasgi={got.error!r}")
    if len(ref.responses) != len(got.responses):
        out.append(
            f"responses: uvicorn sent {len(ref.responses)} "
            f"({[r.status for r in ref.responses]}), blazeasgi {len(got.responses)} "
            f"({[r.status for r in got.responses]})"
        )
    for i, (a, b) in enumerate(zip(ref.responses, got.responses, strict=False)):
        where = f"response {i + 1}: " if len(ref.responses) > 1 else ""
        if a.status != b.status:
            out.append(f"{where}status: uvicorn={a.status} blazeasgi={b.status}")
        if a.headers != b.headers:
            only_a = [h for h in a.headers if h not in b.headers]
            only_b = [h for h in b.headers if h not in a.headers]
            detail = f"uvicorn only={only_a} blazeasgi only={only_b}" if only_a or only_b else "order differs"
            out.append(f"{where}headers: {detail}")
        if a.body != b.body:
            at = next(
                (j for j, (x, y) in enumerate(zip(a.body, b.body, strict=False)) if x != y),
                min(len(a.body), len(b.body)),
            )
            out.append(
                f"{where}body: {len(a.body)} vs {len(b.body)} bytes, first difference at {at}: "
                f"uvicorn={a.body[at : at + 60]!r} blazeasgi={b.body[at : at + 60]!r}"
            )
    if ref.closed != got.closed:
        out.append(f"connection closed afterwards: uvicorn={ref.closed} blazeasgi={got.closed}")
    return out


def observe(server: Server, case: Case) -> Observed:
    if isinstance(case, Raw):
        observed = run_raw(server.port, case)
    else:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=TIMEOUT) as client:
            observed = run_http(client, case)
    observed.responses = [normalise(r, server.port) for r in observed.responses]
    return observed


# -- the run ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    app: str
    loop: str
    case: str
    diffs: list[str]

    @property
    def documented(self) -> bool:
        return self.case in KNOWN


@contextlib.contextmanager
def data_environment() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="compat-") as tmp:
        env = dict(os.environ)
        env["COMPAT_DATA_DIR"] = str(Path(tmp) / "data")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop("FORWARDED_ALLOW_IPS", None)
        # One hash seed for both servers: apps build some headers from sets
        # (Starlette's Allow), whose order otherwise changes per process.
        env["PYTHONHASHSEED"] = "0"
        # Make the served file once, so both servers see the same bytes, mtime and ETag.
        sys.path.insert(0, str(ROOT))
        old = os.environ.get("COMPAT_DATA_DIR")
        os.environ["COMPAT_DATA_DIR"] = env["COMPAT_DATA_DIR"]
        from .apps.common import data_dir

        data_dir()
        if old is None:
            os.environ.pop("COMPAT_DATA_DIR")
        else:
            os.environ["COMPAT_DATA_DIR"] = old
        env["COMPAT_LOG_DIR"] = tmp
        yield env


def run(
    apps: list[str], loops: list[str], only: set[str] | None = None, out: Any = sys.stdout
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with data_environment() as env:
        logdir = Path(env["COMPAT_LOG_DIR"])
        for app in apps:
            cases = [c for c in cases_for(app) if only is None or c.name in only]
            for loop in loops:
                servers = [start_server(kind, APPS[app], loop, env, logdir) for kind in SERVERS]
                try:
                    for case in cases:
                        ref, got = (observe(server, case) for server in servers)
                        outcome = Outcome(app, loop, case.name, differences(ref, got))
                        outcomes.append(outcome)
                        if outcome.diffs:
                            label = "documented" if outcome.documented else "UNDOCUMENTED"
                            print(f"[{app}/{loop}] {case.name} ({label}):", file=out)
                            for line in outcome.diffs:
                                print(f"    {line}", file=out)
                finally:
                    for server in servers:
                        stop_server(server)
    return outcomes


def versions(apps: list[str]) -> str:
    from importlib.metadata import PackageNotFoundError, version

    names = ["uvicorn", "blazeasgi", "httptools"]
    if "fastapi" in apps:
        names.append("fastapi")
    if "fastapi" in apps or "starlette" in apps:
        names += ["starlette", "pydantic"]
    if "django" in apps:
        names.append("django")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (missing)")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--apps",
        default=os.environ.get("COMPAT_APPS", "fastapi,starlette,django"),
        help="comma-separated: fastapi,starlette,django (default: $COMPAT_APPS or all)",
    )
    parser.add_argument(
        "--loop",
        default=os.environ.get("COMPAT_LOOP", "uvloop,asyncio"),
        help="comma-separated event loops: uvloop,asyncio (default: $COMPAT_LOOP or both)",
    )
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    args = parser.parse_args(argv)
    apps = [a for a in args.apps.split(",") if a]
    loops = [loop for loop in args.loop.split(",") if loop]
    for app in apps:
        if app not in APPS:
            parser.error(f"unknown app {app!r}; choose from {', '.join(APPS)}")
    print("versions:", versions(apps), "| loops:", ", ".join(loops))
    outcomes = run(apps, loops, set(args.case) if args.case else None)
    identical = sum(1 for o in outcomes if not o.diffs)
    documented = sum(1 for o in outcomes if o.diffs and o.documented)
    undocumented = [o for o in outcomes if o.diffs and not o.documented]
    if undocumented:
        print(f"{len(undocumented)} undocumented difference(s): see compat/README.md")
    print(f"{documented} documented difference(s) (compat/README.md)")
    vanished = vanished_differences(outcomes, apps, set(args.case) if args.case else None)
    if vanished:
        # Reported, not failed: a newer uvicorn may have adopted the RFC's rule
        # (0.55 strips trailing whitespace from header values, as blazeasgi does).
        print(f"documented but no longer different with this uvicorn: {', '.join(vanished)}")
    print(f"{identical}/{len(outcomes)} identical")
    return 1 if undocumented else 0


def vanished_differences(
    outcomes: list[Outcome], apps: list[str], cases: set[str] | None = None
) -> list[str]:
    """Documented differences that none of ``outcomes`` showed (all apps run)."""
    if len(apps) != len(APPS):
        return []  # some differences show up with one app only
    seen = {o.case for o in outcomes if o.diffs}
    return [name for name in KNOWN if name not in seen and (cases is None or name in cases)]
