"""TLS: the server's SSLContext from uvicorn's ``--ssl-*`` values, and the facts
the ASGI ``tls`` extension reports for each connection.

Each serving process builds its context from ``Config`` strings (a worker builds
its own; nothing but values crosses a fork). The event loop does the handshake
before the engine sees the connection, so the engine's only TLS work is one
``connection_info`` per connection, never per request.
"""

from __future__ import annotations

import os
import re
import ssl
import warnings
from typing import Any

from .config import Config
from .errors import BlazeasgiError


class TLSConfigError(BlazeasgiError):
    """An ``--ssl-*`` value is unusable; the message is one line naming the flag."""


#: Seconds a closing TLS connection gets to flush its last bytes and trade
#: close_notify alerts before the loop aborts it. The loops' default, 30 s, held
#: every idle keep-alive client that does not read its socket (http.client,
#: pooled connections) for 30 s: graceful shutdown took 30 s (measured, both
#: loops) and closed connections kept their --limit-concurrency slot as long.
#: At close the engine has at most ~128 KiB unflushed (its write high-water
#: mark plus the transport's): 5 s is enough for a ~30 KB/s client.
SHUTDOWN_TIMEOUT = 5.0
#: uvicorn's --ssl-cert-reqs: 0/1/2 as in the ssl module.
_CERT_REQS = {0: ssl.CERT_NONE, 1: ssl.CERT_OPTIONAL, 2: ssl.CERT_REQUIRED}
#: uvicorn's --ssl-version takes ssl.PROTOCOL_* numbers. PROTOCOL_TLS (2) and
#: PROTOCOL_TLS_SERVER (17, uvicorn's default) negotiate the best version both
#: sides allow; the deprecated fixed-version constants pin exactly that version
#: (Debian's OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level).
_NEGOTIATE = (2, 17)
_PINNED = {3: ssl.TLSVersion.TLSv1, 4: ssl.TLSVersion.TLSv1_1, 5: ssl.TLSVersion.TLSv1_2}
#: ASGI wants the version as the wire number (0x0303 is TLS 1.2).
_VERSION_NUMBERS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
#: RFC 4514 short names for the attribute types Python's getpeercert() spells out.
_SHORT_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_OPENSSL_LOCATION = re.compile(r"\s*\(_ssl\.c:\d+\)$")


class ServerTLS:
    """The server's SSLContext and what every connection's ``tls`` extension shares."""

    __slots__ = ("_suite_ids", "context", "server_cert")

    def __init__(self, context: ssl.SSLContext, server_cert: str | None) -> None:
        self.context = context
        #: The server's own certificate (the first in --ssl-certfile), PEM.
        self.server_cert = server_cert
        # OpenSSL reports the negotiated suite by name; ASGI wants its IANA
        # number, which is the low 16 bits of OpenSSL's cipher id.
        self._suite_ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}

    def connection_info(self, ssl_object: ssl.SSLObject | None) -> dict[str, Any]:
        """``scope["extensions"]["tls"]`` for one connection (ASGI TLS extension)."""
        info: dict[str, Any] = {
            "server_cert": self.server_cert,
            "client_cert_chain": [],
            "client_cert_name": None,
            # A client certificate that fails verification fails the handshake
            # (with --ssl-cert-reqs 1 as with 2): a connection that got this far
            # has no error to report.
            "client_cert_error": None,
            "tls_version": None,
            "cipher_suite": None,
        }
        if ssl_object is None:  # pragma: no cover - every TLS transport has one
            return info
        chain = info["client_cert_chain"] = _peer_chain(ssl_object)
        if chain:
            info["client_cert_name"] = _subject_name(ssl_object.getpeercert())
        version = ssl_object.version()
        if version is not None:
            info["tls_version"] = _VERSION_NUMBERS.get(version)
        cipher = ssl_object.cipher()
        if cipher is not None:
            info["cipher_suite"] = self._suite_ids.get(cipher[0])
        return info


def load_tls(config: Config, http2: bool = False) -> ServerTLS | None:
    """The server's TLS setup from ``config``, or None when it serves plain HTTP.

    ``http2``: offer ``h2`` before ``http/1.1`` in ALPN (the engine serves it).

    Raises TLSConfigError, one line naming the flag, for anything unusable, so
    a typo fails at startup rather than at the first handshake.
    """
    certfile, keyfile = config.ssl_certfile, config.ssl_keyfile
    if certfile is None:
        for flag, value in (("--ssl-keyfile", keyfile), ("--ssl-ca-certs", config.ssl_ca_certs)):
            if value is not None:
                raise TLSConfigError(f"{flag} needs --ssl-certfile")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _set_version(context, config.ssl_version)
    cert_text = _read(certfile, "--ssl-certfile")
    first_cert = _PEM_CERT.search(cert_text)
    if first_cert is None:
        raise TLSConfigError(f"--ssl-certfile {certfile}: no PEM certificate in it")
    key_text = _read(keyfile, "--ssl-keyfile") if keyfile is not None else cert_text
    _load_chain(context, certfile, keyfile, key_text, config.ssl_keyfile_password)
    _set_client_verification(context, config.ssl_cert_reqs, config.ssl_ca_certs)
    if config.ssl_ciphers:
        try:
            # Applies to TLS 1.2 and older only; OpenSSL keeps TLS 1.3 suites apart.
            context.set_ciphers(config.ssl_ciphers)
        except ssl.SSLError:
            raise TLSConfigError(f"--ssl-ciphers {config.ssl_ciphers!r}: no cipher matches") from None
    # Without HTTP/2 only http/1.1 is offered: a client offered h2 would send frames.
    context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    # Each TLS 1.2 renegotiation costs the server a full handshake: refusing
    # client-initiated ones closes a cheap CPU exhaustion attack.
    context.options |= ssl.OP_NO_RENEGOTIATION
    return ServerTLS(context, first_cert.group(0) + "\n")


def _set_version(context: ssl.SSLContext, version: int | None) -> None:
    if version is None or version in _NEGOTIATE:
        return
    pinned = _PINNED.get(version)
    if pinned is None:
        raise TLSConfigError(
            f"--ssl-version {version}: expected 17 or 2 (negotiate), or 3, 4, 5 (TLS 1.0, 1.1, 1.2 only)"
        )
    with warnings.catch_warnings():  # the old versions are deprecated; the user asked for one
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = pinned


def _read(path: str, flag: str) -> str:
    try:
        with open(path, encoding="latin-1") as file:
            return file.read()
    except OSError as exc:
        raise TLSConfigError(f"{flag} {path}: {exc.strerror or exc}") from None


def _load_chain(
    context: ssl.SSLContext, certfile: str, keyfile: str | None, key_text: str, password: str | None
) -> None:
    key_flag = "--ssl-keyfile" if keyfile is not None else "--ssl-certfile"
    key_path = keyfile or certfile
    if "PRIVATE KEY-----" not in key_text:
        if keyfile is None:
            raise TLSConfigError(f"--ssl-certfile {certfile} holds no private key: pass --ssl-keyfile")
        raise TLSConfigError(f"--ssl-keyfile {keyfile}: no PEM private key in it")
    encrypted = "ENCRYPTED" in key_text
    if encrypted and password is None:
        raise TLSConfigError(f"{key_flag} {key_path} is encrypted: pass --ssl-keyfile-password")
    try:
        # Always a callback: without one OpenSSL would prompt on the terminal.
        context.load_cert_chain(certfile, keyfile, password=lambda: password or "")
    except ssl.SSLError as exc:
        if encrypted:
            raise TLSConfigError(f"--ssl-keyfile-password does not decrypt {key_path}") from None
        raise TLSConfigError(
            f"could not use certificate {certfile} with key {key_path}: {_reason(exc)}"
        ) from None


def _set_client_verification(context: ssl.SSLContext, cert_reqs: int, ca_certs: str | None) -> None:
    mode = _CERT_REQS.get(cert_reqs)
    if mode is None:
        raise TLSConfigError(f"--ssl-cert-reqs {cert_reqs}: expected 0 (none), 1 (optional) or 2 (required)")
    if ca_certs is not None:
        try:
            if os.path.isdir(ca_certs):
                context.load_verify_locations(capath=ca_certs)
            else:
                context.load_verify_locations(cafile=ca_certs)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else _reason(exc)
            raise TLSConfigError(f"--ssl-ca-certs {ca_certs}: {detail}") from None
    elif mode != ssl.CERT_NONE:
        # Without CAs every client certificate fails verification.
        raise TLSConfigError(
            f"--ssl-cert-reqs {cert_reqs} needs --ssl-ca-certs (the CAs of client certificates)"
        )
    context.verify_mode = mode


def _reason(exc: Exception) -> str:
    return _OPENSSL_LOCATION.sub("", str(exc)) or type(exc).__name__


def _peer_chain(ssl_object: ssl.SSLObject) -> list[str]:
    """The client's certificates as PEM, its own first ([] when it sent none)."""
    own = ssl_object.getpeercert(binary_form=True)
    if not own:
        # No client certificate (optional with --ssl-cert-reqs 1). Asked anyway,
        # 3.13.0's get_unverified_chain() raises AttributeError on its None entry.
        return []
    ders: list[Any] = [own]
    # Python 3.13 gives the whole chain the client sent; before, only its own.
    get_chain = getattr(ssl_object, "get_unverified_chain", None)
    if get_chain is not None:
        try:
            chain = list(get_chain() or [])
        except AttributeError:  # pragma: no cover - a None entry, as above
            chain = []
        if chain and all(isinstance(der, bytes) for der in chain):
            ders = chain
    return [ssl.DER_cert_to_PEM_cert(der) for der in ders]


def _subject_name(cert: Any) -> str | None:
    """The certificate subject as an RFC 4514 string (most specific part first)."""
    subject = cert.get("subject") if isinstance(cert, dict) else None
    if not subject:
        return None
    return ",".join(
        "+".join(f"{_SHORT_NAMES.get(kind, kind)}={_escape(value)}" for kind, value in rdn)
        for rdn in reversed(subject)
    )


def _escape(value: str) -> str:
    """RFC 4514 §2.4 escaping of one attribute value."""
    out = "".join("\\" + ch if ch in '"+,;<>\\' else ("\\00" if ch == "\0" else ch) for ch in value)
    if out.startswith((" ", "#")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out
