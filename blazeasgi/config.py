"""One frozen object carries every limit and timeout from the CLI to the engine.

The defaults follow what the peers ship (uvicorn, h11, nginx) so that moving an app
over changes nothing but speed; each is justified next to its field.
"""

from __future__ import annotations

from dataclasses import dataclass

from .logs import DEFAULT_ACCESS_LOG_FORMAT


@dataclass(frozen=True, slots=True)
class Config:
    # -- timeouts (seconds; enforced by a once-a-second sweep, so +-1 s) ----------
    #: An idle keep-alive connection is closed after this long. uvicorn's default.
    keep_alive_timeout: float = 5.0
    #: A request head must arrive completely within this long of its first byte;
    #: this is what stops slowloris (uvicorn has no such timeout).
    head_timeout: float = 10.0
    #: On SIGINT/SIGTERM, in-flight requests get this long before being cut.
    graceful_shutdown_timeout: float = 30.0

    # -- limits --------------------------------------------------------------------
    #: Whole request head (request line + headers). 64 KiB, like Node's 16 KiB x4:
    #: big enough for large cookies and JWTs, small enough to bound memory.
    max_head_size: int = 65536
    #: Request-target length in bytes (414 past it). Apache and nginx use 8 KiB.
    max_target_size: int = 8192
    #: Number of header fields (431 past it). Apache's default is 100.
    max_header_count: int = 100
    #: Request body size (413 past it). 0 means unlimited; 1 GiB by default so a
    #: client cannot fill the disk or memory of an app that buffers bodies.
    max_body_size: int = 1 << 30
    #: Max simultaneous connections; past it new ones get 503. 0 means unlimited.
    max_connections: int = 0
    #: Requests this server serves before it retires (0 = never): it then drains
    #: and stops, or under a master asks to be replaced (--limit-max-requests).
    max_requests: int = 0
    #: listen() backlog: uvicorn's default; raise with net.core.somaxconn.
    backlog: int = 2048
    #: Buffered-but-unconsumed request body bytes before reading pauses.
    read_high_water: int = 65536
    #: Transport write buffer size at which a streaming writer waits for drain.
    write_high_water: int = 65536

    # -- HTTP/2 (blazeasgi/engine/http2.py) -----------------------------------------
    #: Serve HTTP/2 (prior-knowledge h2c on the cleartext port, ALPN h2 over TLS);
    #: HTTP/1.1 is served alongside either way. None: when its codec, zttp, is
    #: installed; True: asked for, so the server does not start without zttp
    #: (engine.http2.serves_http2); False: HTTP/1.1 only.
    http2: bool | None = None

    # -- WebSockets (blazeasgi.websocket) -------------------------------------------
    #: Frame library: "auto" (websockets, else wsproto), "websockets", "wsproto",
    #: or "none" (upgrade requests are then served as plain HTTP). uvicorn's --ws.
    ws: str = "auto"
    #: Largest incoming message in bytes (after decompression); past it the
    #: connection closes with 1009. uvicorn's default, 16 MiB.
    ws_max_size: int = 16 * 1024 * 1024
    #: Received messages the app has not read yet before reading pauses (the
    #: client then waits): what bounds memory when an app reads slowly. uvicorn's 32.
    ws_max_queue: int = 32
    #: Seconds between keepalive pings (0 disables); a pong must come back within
    #: ws_ping_timeout seconds (0 waits forever) or the connection closes with 1011.
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    #: Offer permessage-deflate (RFC 7692) to clients that ask for it.
    ws_per_message_deflate: bool = True

    # -- TLS (blazeasgi.tls; uvicorn's --ssl-* flags) -------------------------------
    #: PEM certificate chain, the server's own certificate first. Setting it turns
    #: TLS on; the private key is ssl_keyfile, or in this file when that is None.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_keyfile_password: str | None = None
    #: CAs (a PEM bundle or a hashed directory) that sign client certificates.
    ssl_ca_certs: str | None = None
    #: Client certificates: 0 not asked for, 1 optional, 2 required (ssl.CERT_*).
    ssl_cert_reqs: int = 0
    #: OpenSSL cipher list for TLS 1.2 and older; "" keeps Python's list (AEAD,
    #: no SHA-1). Not uvicorn's default "TLSv1": with OpenSSL 3, "TLSv1" selects the suites defined since
    #: SSLv3/TLS 1.0 (CBC with SHA-1 MACs), not TLS 1.2's AEAD ones (GCM,
    #: ChaCha20): a TLS 1.2 client gets e.g. ECDHE-RSA-AES256-SHA, and one with
    #: Python >= 3.10's policy (no SHA-1) none at all. The NULL and anonymous
    #: suites it also names stay refused by security level 2. TLS 1.3 suites are
    #: configured apart and stay OpenSSL's. Pass "TLSv1" to match uvicorn exactly.
    ssl_ciphers: str = ""
    #: uvicorn's --ssl-version (an ssl.PROTOCOL_* number); None negotiates.
    ssl_version: int | None = None

    # -- response defaults ---------------------------------------------------------
    server_header: bool = True
    date_header: bool = True
    access_log: bool = True
    #: %-format of the access line, with the named fields of blazeasgi.logs.ACCESS_FIELDS.
    access_log_format: str = DEFAULT_ACCESS_LOG_FORMAT

    # -- the interfaces (blazeasgi.settings.InterfaceSettings, built from these once) --
    #: ASGI root_path, prepended to scope["root_path"].
    root_path: str = ""
    #: ASGI lifespan: "auto" runs it and carries on if the app does not support it
    #: (uvicorn's default); "on" fails startup then; "off" never sends it.
    lifespan: str = "auto"
    #: Trust proxy headers (Forwarded, X-Forwarded-For/-Proto) from the peers in
    #: forwarded_allow_ips, on both interfaces: on, as in uvicorn.
    proxy_headers: bool = True
    #: The trusted proxies; None reads $FORWARDED_ALLOW_IPS, else 127.0.0.1,::1,
    #: uvicorn's default (a local reverse proxy).
    forwarded_allow_ips: str | None = None
    #: Also take the Host from a trusted proxy: off, since it is only safe when the
    #: proxy sets or strips X-Forwarded-Host (uvicorn never does it).
    forwarded_host: bool = False
