"""Coverage-guided fuzzing of the engine with atheris (libFuzzer), same invariant as
tests/engine/test_fuzz.py (``check_input``: no exception, no hang, well-formed responses or
one 4xx/5xx and a close, never two responses for one request, no desync with h11).

    pip install atheris          # not a test dependency: only for this harness
    python fuzz/atheris_engine.py -runs=100000            # from the repository root
    python fuzz/atheris_engine.py -max_total_time=600 my_corpus/
    FUZZ_LOOP=uvloop python fuzz/atheris_engine.py -runs=50000

Input layout: byte 0 picks the interface (bit 0: ASGI or native), the limits (bit 1:
defaults or small ones) and how many cut points follow (bits 2-4, two bytes each);
the rest is what the client sends. Without a corpus directory argument, a seed
corpus (valid and classic-smuggling requests) and an HTTP token dictionary are
written to a temporary directory. blazeasgi's Python code is instrumented for
coverage; httptools/llhttp is C and is not.

A failing input is saved by libFuzzer as crash-<sha1> (``-artifact_prefix=DIR/``
puts it elsewhere); replay it with ``python fuzz/atheris_engine.py crash-<sha1>``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris
from fuzzsetup import prepare_imports

prepare_imports()  # (else the hot modules load uninstrumented: see fuzzsetup.py)

with atheris.instrument_imports(include=["blazeasgi"]):
    import blazeasgi.asgi.adapter
    import blazeasgi.engine.connection
    import blazeasgi.engine.exchange
    import blazeasgi.engine.http11
    import blazeasgi.native.app
    import blazeasgi.native.request
    import blazeasgi.native.responses  # noqa: F401

from tests.conftest import new_loop  # noqa: E402 (after prepare_imports)
from tests.engine.test_fuzz import CONFIGS, check_input  # noqa: E402

LOOP = new_loop(os.environ.get("FUZZ_LOOP", "asyncio"))

SEEDS = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\nHEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 36\r\n\r\n"
    b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n",
    b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nabGET / HTTP/1.0\r\n\r\n",
    b"POST /stream HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET http://x/a HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
]
DICTIONARY = [
    b"\r\n",
    b"\r\n\r\n",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"Host: ",
    b"Content-Length: ",
    b"Transfer-Encoding: ",
    b"chunked",
    b"Connection: ",
    b"close",
    b"keep-alive",
    b"upgrade",
    b"Expect: 100-continue",
    b"0\r\n\r\n",
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"/ignore",
    b"/stream",
    b"http://",
]


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    flags = fdp.ConsumeInt(1)
    app_kind = "asgi" if flags & 1 else "native"
    config = CONFIGS[(flags >> 1) & 1]
    cuts = [fdp.ConsumeIntInRange(0, 4096) for _ in range((flags >> 2) & 7)]
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    check_input(payload, cuts, app_kind, config, LOOP)


def _default_corpus() -> list[str]:
    root = Path(tempfile.mkdtemp(prefix="blazeasgi-fuzz-"))
    corpus = root / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS):
        for flags in (0b00000, 0b00001, 0b01110):
            cuts = b"\x00\x07" * ((flags >> 2) & 7)
            (corpus / f"seed-{i}-{flags}").write_bytes(bytes([flags]) + cuts + seed)
    dictionary = root / "http.dict"
    escaped = ("".join(f"\\x{b:02x}" for b in token) for token in DICTIONARY)
    dictionary.write_text("".join(f'"{token}"\n' for token in escaped))
    return [f"-dict={dictionary}", str(corpus)]


def main() -> None:
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        args += _default_corpus()
    if not any(a.startswith("-timeout=") for a in args):
        args.append("-timeout=20")
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
