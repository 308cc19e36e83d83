"""Request heads off the common path (cold): the request line checked across reads
(one SP between its parts), the version and Host rules, Transfer-Encoding, request
targets over the limits or not in origin-form, and the header fields that steer
framing (Host, Content-Length, Transfer-Encoding, Connection, Expect). The plain
functions these use are framing.py's; the layers of the connection: connstate.py.
"""

from __future__ import annotations

import re

import httptools

from .endings import ConnectionEndings
from .errors import ProtocolError
from .framing import check_codings, check_host, non_origin_target

#: Fields no request needs on the hot path but an interface may look for (TE for
#: trailers, proxy headers): seeing one sets Exchange.noted_fields so the
#: interface scans the headers only then.
NOTED_FIELDS = frozenset(
    {b"te", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"forwarded"}
)
#: What a read may end with when it ends inside a method (see _note_line).
_METHOD_PREFIX = re.compile(rb"[A-Z-]+ ?\Z")


class RequestChecks(ConnectionEndings):
    __slots__ = ()

    # -- the request line across reads ------------------------------------------------
    def _note_line(self, data: bytes) -> None:
        """The read ended inside a line, outside any body (cold): if that is a request
        line, keep what came of it so the next read checks it whole."""
        if self._headers:
            return  # in the header section
        tail = data[data.rfind(b"\n") + 1 :]
        if self._url:  # past the start of the target: in the request line or a header line
            if not tail.startswith(self._parser.get_method() + b" "):
                return  # (a header line cannot start so: llhttp rejects SP in a name)
        elif _METHOD_PREFIX.match(tail) is None:
            return  # the end of a body, not the start of a method
        self._line = tail

    def _feed_checked(self, data: bytes) -> None:
        """Feed ``data``, rejecting a request line with more than one SP between its
        parts (cold: the read holds two SP in a row or continues a request line).

        Lines without a SP pair go to the parser in bulk; the parser's state at the
        start of each other line tells a request line (no target yet, no body)
        from a header, body or trailer line. A Content-Length body may end inside a
        line: its last bytes are fed first, so the next request starts a piece.
        """
        n = len(data)
        pos = 0
        try:
            while pos < n:
                line = self._line
                if line is None:
                    pair = data.find(b"  ", pos)
                    start = data.rfind(b"\n", pos, pair if pair >= 0 else n) + 1
                    if start > pos:  # up to the next line holding a pair, or the last one
                        self._feed(data[pos:start])
                        pos = start
                        continue
                    reading = self._reading
                    if reading is not None and self._content_length > 0:
                        left = self._content_length - reading.body_received
                        if 0 < left < n - pos:
                            self._feed(data[pos : pos + left])
                            pos += left
                            continue
                    if reading is not None or self._url:  # a body, trailer or header line
                        end = data.find(b"\n", pos) + 1 or n
                        self._feed(data[pos:end])
                        pos = end
                        continue
                    line = b""
                end = data.find(b"\n", pos) + 1 or n
                text = line + data[pos:end]
                if b"  " in text:
                    raise ProtocolError(400, "More than one SP in the request line")
                self._line = None if text[-1] == 10 else text
                self._feed(data[pos:end])
                pos = end
        except httptools.HttpParserUpgrade as exc:  # its offset is into the piece fed
            raise httptools.HttpParserUpgrade(pos + int(exc.args[0])) from None

    # -- the head -----------------------------------------------------------------------
    def _check_head(self, keep_alive: bool, raw_method: bytes) -> str:
        """The version and Host rules, for heads off the common path (cold)."""
        if keep_alive and not self._connection_header:
            version = "1.1"  # as in on_headers_complete
        else:
            version = self._version(raw_method)
            self._connection_header = False
        if version == "1.1":
            if self._host_count != 1:
                raise ProtocolError(400, "Missing or repeated Host header")
        elif version == "1.0":
            if self._host_count > 1:
                raise ProtocolError(400, "Repeated Host header")
        else:
            raise ProtocolError(505, "HTTP Version Not Supported")
        transfer_encoding = self._transfer_encoding
        if transfer_encoding is not None:
            self._transfer_encoding = None
            if version == "1.0":
                # RFC 9112 §6.1: faulty framing; the connection closes after the 400.
                raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 request")
            check_codings(transfer_encoding)
        return version

    def _version(self, raw_method: bytes) -> str:
        """The request's HTTP version, at its head's end.

        get_http_version() formats a str in httptools (about 2.8k instructions, on
        every request with a Connection field: Connection: close behind nginx,
        keep-alive from browsers). When the read began with this request's line
        (``_fresh``), the version is right after the method and target the parser
        reported, each with its SP: there, a compare reads it. The read must start
        with the method too: a read that ends a body may end in the first letters
        of the next method (_note_line does not mark those), and the line then
        starts in the read before. Anything else (a head across reads, pipelined
        heads after the first, blank lines before the request line, a bare LF)
        asks the parser.
        """
        fresh = self._fresh
        if fresh is not None and fresh.startswith(raw_method):
            at = len(raw_method) + len(self._url) + 1
            if fresh.startswith(b" HTTP/1.1\r\n", at):
                return "1.1"
            if fresh.startswith(b" HTTP/1.0\r\n", at):
                return "1.0"
        version: str = self._parser.get_http_version()  # typed: httptools has no stubs
        return version

    def _check_target(self, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
        """Size limits and non-origin forms of the request target (cold)."""
        if len(target) > self._max_target:
            raise ProtocolError(414, "URI Too Long")
        if len(headers) > self._max_headers:
            raise ProtocolError(431, "Too many header fields")
        if target[0] != 47:  # not "/": absolute-form, "*" or authority-form
            method = self._parser.get_method().decode("ascii", "replace")
            target, authority = non_origin_target(method, target)
            if authority is not None:
                check_host(authority)
                # RFC 9112 §3.2.2: the target's authority wins over any Host field.
                headers[:] = [(k, authority if k == b"host" else v) for k, v in headers]
        return target

    # -- headers that steer framing -----------------------------------------------------
    def _special_header(self, name: bytes, value: bytes) -> None:
        if self._head_budget < 0:
            raise ProtocolError(431, "Request Header Fields Too Large")
        if name == b"host":
            check_host(value)
            self._host_count += 1
        elif name == b"content-length":
            # llhttp has already rejected non-digits, signs and conflicting repeats.
            self._content_length = int(value)
            if self._content_length > self._max_body:
                raise ProtocolError(413, "Content Too Large")
        elif name == b"transfer-encoding":
            # Judged in _check_head, as one list with any other TE field lines.
            previous = self._transfer_encoding
            self._transfer_encoding = value if previous is None else previous + b"," + value
            self._unusual = True
        elif name == b"connection":
            self._connection_header = self._unusual = True
        elif name in NOTED_FIELDS:
            self._noted_fields = self._unusual = True
        elif name == b"expect":
            if value.strip().lower() == b"100-continue":
                self._expect_continue = self._unusual = True
            else:
                raise ProtocolError(417, "Expectation Failed")
