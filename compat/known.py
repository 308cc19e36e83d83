"""Differences from uvicorn that are deliberate: case name -> reason.

compat/README.md explains each at length; tests/project/test_compat_runner.py checks that
every name here is documented there and that the runner finds no other.
"""

from __future__ import annotations

KNOWN: dict[str, str] = {
    "http10_keep_alive": (
        "RFC 9112 §9.3: an HTTP/1.0 client asking for keep-alive gets it (connection: keep-alive, "
        "connection left open); uvicorn ignores the request and closes."
    ),
    "http10_streaming": (
        "RFC 9112 §6.1/§7: chunked is never sent to an HTTP/1.0 client; a streamed body without "
        "Content-Length is delimited by closing the connection. uvicorn sends chunked to HTTP/1.0."
    ),
    "missing_host_http11": (
        "RFC 9112 §3.2: an HTTP/1.1 request without Host MUST get 400; uvicorn serves it."
    ),
    "utf8_request_target": (
        "Both answer 400 and close; blazeasgi's plain-text body names the parser's reason "
        "('Invalid char in url path') where uvicorn says 'Invalid HTTP request received.'."
    ),
    "header_value_whitespace": (
        "RFC 9110 §5.5: a field value excludes leading and trailing whitespace (OWS); the engine "
        "strips the trailing part llhttp keeps, uvicorn hands the app 'padded value  \\t '."
    ),
    "status_204": (
        "RFC 9110 §8.6: no Content-Length in a 204. Django sets 'Content-Length: 0' on every "
        "response; the engine frames responses itself and drops it, uvicorn forwards it."
    ),
    "status_304": (
        "RFC 9110 §8.6: a 304 may carry Content-Length only if it equals the 200's length, which "
        "the server cannot know; the engine drops the app's value (Django's '0'), uvicorn forwards it."
    ),
    "file": (
        "Starlette/FastAPI FileResponse uses http.response.pathsend (zero-copy sendfile) when the "
        "server offers it, and GZipMiddleware passes pathsend responses through untouched: no "
        "'Vary: Accept-Encoding' (the representation does not vary). Bytes are identical."
    ),
    "file_if_none_match": (
        "Same as 'file' with a client accepting gzip: uvicorn gets the 1 MiB file gzip-compressed "
        "and chunked through GZipMiddleware, blazeasgi sends it uncompressed with Content-Length "
        "by sendfile (Starlette never compresses pathsend). Decoded bytes are identical."
    ),
}
