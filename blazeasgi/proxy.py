"""Proxy headers: what a trusted reverse proxy says about the client.

One implementation for both interfaces: the ASGI adapter applies it while building
an ``http`` or ``websocket`` scope, the native ``Request`` when a handler first
reads ``client``, ``scheme``, ``host`` or ``url``. The engine notes Forwarded and
X-Forwarded-* fields while parsing (``Exchange.noted_fields``), so a request that
has none never reaches this module.

The rules (uvicorn's where uvicorn has one, so an app moved over sees the same):

* Only a trusted peer's fields count; an untrusted peer's are ignored entirely.
  Trusted (``--forwarded-allow-ips``, default ``$FORWARDED_ALLOW_IPS`` or
  ``127.0.0.1,::1``): addresses, networks (``10.0.0.0/8``, ``fd00::/8``), names a
  proxy uses for itself (``_edge1``), ``*`` for every peer, and ``unix:`` for
  peers on a Unix socket (they have no address; uvicorn trusts them only with
  ``*``, but the socket's file permissions already decide who may connect).
* RFC 7239 ``Forwarded`` wins: when a trusted peer sent one, X-Forwarded-* are
  ignored, even if Forwarded turns out malformed (falling back would believe a
  field the proxy may not have written).
* The client is the nearest untrusted hop, walking from the right (each proxy
  appends the address it received from); when every hop is trusted, the leftmost;
  with ``*``, the leftmost (uvicorn >= 0.30). ``Forwarded``'s ``proto`` and
  ``host`` come from the element naming that client: they describe its hop.
* The host the app sees (``X-Forwarded-Host``, ``X-Forwarded-Port``, ``host=``)
  changes only with ``forwarded_host`` (``--forwarded-host``): nginx passes a
  client's own X-Forwarded-Host through unless told not to, and believing it by
  default would let any client choose the host an app writes into absolute links
  (password-reset mails). Werkzeug's ProxyFix is off for the host by default too;
  uvicorn ignores the field.
* A malformed value is ignored (that field, or the whole Forwarded field), the
  connection's own facts stay: it never fails a request a proxy already accepted.
  Only the hops the walk reaches are parsed, so a client cannot void a chain by
  prefixing garbage to X-Forwarded-For.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1,::1"
#: In the trusted list: every peer on a Unix socket.
UNIX_PEERS = "unix:"

#: What resolve() reads (Host: for an X-Forwarded-Port that comes without a host).
_FIELDS = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"host",
    }
)
#: Accepted protocols, as the scheme of an HTTP request (WebSocket scopes map back).
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: A name in the trusted list: a proxy's obfuscated identifier or a host name.
_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")
#: A node that is no address (RFC 7239 §6): "unknown" or an obfuscated identifier.
_OBFUSCATED = re.compile(r"(?:(?i:unknown)|_[A-Za-z0-9._-]+)\Z")
#: What a Host may be here: a reg-name or IPv4, or a bracketed IPv6, then a port.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]{1,5})?\Z")
#: One forwarded-pair (RFC 7239 §4) and the separator after it. Whitespace around
#: separators is tolerated; an unquoted value may hold ':' and '[' (IPv6), as
#: proxies send it although the grammar asks for quotes.
_PAIR = re.compile(r'[ \t]*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\]|\\.)*"|[^;,"\s]+)[ \t]*(;|,|\Z)')
_ESCAPE = re.compile(r"\\(.)")


class Forwarded(NamedTuple):
    """The request as the client made it, per a trusted proxy."""

    client: tuple[str, int] | None
    #: "http" or "https" (a WebSocket scope shows "ws" or "wss").
    scheme: str
    #: The Host to show the app, None to keep the request's own.
    host: str | None


class TrustedHosts:
    """The peers whose proxy headers are believed."""

    def __init__(self, trusted: str | Iterable[str] | None = None) -> None:
        """Raises ValueError naming an entry that is neither an address, a network,
        a name, ``*`` nor ``unix:``."""
        if trusted is None:
            trusted = os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_FORWARDED_ALLOW_IPS)
        items = trusted.split(",") if isinstance(trusted, str) else list(trusted)
        self.always = False
        self.unix = False
        self.literals: set[str] = set()
        self.hosts: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            if item == "*":
                self.always = True
            elif item == UNIX_PEERS:
                self.unix = True
            elif "/" in item:
                try:  # host bits set (10.0.0.1/8) is taken to mean the network
                    self.networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ValueError(f"{item!r} is not an IP network") from None
            else:
                try:
                    self.hosts.add(ipaddress.ip_address(item[1:-1] if item.startswith("[") else item))
                except ValueError:
                    if _NAME.match(item) is None:
                        message = f"{item!r} is not an IP address, network, name, '*' or 'unix:'"
                        raise ValueError(message) from None
                    self.literals.add(item)
        # Peers repeat: remember the verdict for the last few thousand.
        self._cached = functools.lru_cache(maxsize=4096)(self._compute)

    def __contains__(self, host: str | None) -> bool:
        if self.always:
            return True
        if not host:
            return False
        if len(host) > 64:  # no address is this long: do not let it fill the cache
            return self._compute(host)
        return self._cached(host)

    def _compute(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host in self.literals
        return ip in self.hosts or any(ip in net for net in self.networks)

    def trusts_peer(self, client: tuple[str, int] | None) -> bool:
        """Whether the connection's peer is a trusted proxy (None: a Unix socket peer)."""
        if client is None:
            return self.unix or self.always
        return client[0] in self

    def client_from(self, forwarded_for: str) -> tuple[str, int] | None:
        """The client in an X-Forwarded-For list; None if the hop it lands on is malformed."""
        hops = forwarded_for.split(",")
        if not self.always:
            for hop in reversed(hops):
                node = _node(hop.strip())
                if node is None or node[0] not in self:
                    return node
        return _node(hops[0].strip())


#: What a proxy reports: client, scheme, host; None where it says nothing usable.
Verdict = tuple[tuple[str, int] | None, str | None, str | None]
_NOTHING: Verdict = (None, None, None)
#: Proxy fields longer than this in all are resolved without the cache.
_CACHED_SIZE = 1024


class ProxyHeaders:
    """Settings and resolution: who is trusted, and whether the host may change."""

    __slots__ = ("_cached", "forwarded_host", "trusted")

    def __init__(self, trusted: str | Iterable[str] | None = None, forwarded_host: bool = False) -> None:
        self.trusted = TrustedHosts(trusted)
        self.forwarded_host = forwarded_host
        # A proxy sends the same values with every request of a client: resolving
        # them once cuts resolve() for nginx's usual X-Forwarded-For/-Proto/-Host from
        # 6 us to 1.3 us, and for a Forwarded field from 21 us to 1.2 us (CPython 3.11).
        self._cached = functools.lru_cache(maxsize=4096)(self._verdict)

    def resolve(
        self, headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None, scheme: str
    ) -> Forwarded | None:
        """The request as seen through the proxy headers; None if the peer is not trusted."""
        if not self.trusted.trusts_peer(client):
            return None
        forwarded: list[bytes] = []
        forwarded_for: list[bytes] = []
        proto: bytes | None = None
        x_host: bytes | None = None
        x_port: bytes | None = None
        host: bytes | None = None
        size = 0
        for name, value in headers:
            if name in _FIELDS:
                size += len(value)
                if name == b"forwarded":
                    forwarded.append(value)
                elif name == b"x-forwarded-for":
                    forwarded_for.append(value)
                elif name == b"x-forwarded-proto":
                    proto = value
                elif name == b"host":
                    host = value
                elif name == b"x-forwarded-host":
                    x_host = value
                else:
                    x_port = value
        verdict = self._cached if size <= _CACHED_SIZE else self._verdict
        seen_client, seen_scheme, seen_host = verdict(
            tuple(forwarded), tuple(forwarded_for), proto, x_host, x_port, host, scheme
        )
        return Forwarded(seen_client or client, seen_scheme or scheme, seen_host)

    def _verdict(
        self,
        forwarded: tuple[bytes, ...],
        forwarded_for: tuple[bytes, ...],
        proto: bytes | None,
        x_host: bytes | None,
        x_port: bytes | None,
        host: bytes | None,
        scheme: str,
    ) -> Verdict:
        if forwarded:
            return self._from_forwarded(forwarded)
        client = None
        if forwarded_for:
            client = self.trusted.client_from(b",".join(forwarded_for).decode("latin-1"))
        if proto is not None:
            scheme = _SCHEMES.get(proto.decode("latin-1").strip().lower(), scheme)
        seen_host = None
        if self.forwarded_host and (x_host is not None or x_port is not None):
            seen_host = _x_forwarded_host(x_host, x_port, host, scheme)
        return client, scheme, seen_host

    def _from_forwarded(self, fields: tuple[bytes, ...]) -> Verdict:
        trusted = self.trusted
        element: dict[str, str] | None = None
        node: tuple[str, int] | None = None
        if trusted.always:  # uvicorn's rule for '*': the leftmost hop
            parsed = [parse_forwarded(field.decode("latin-1")) for field in fields]
            elements = [item for field in parsed if field is not None for item in field]
            if None in parsed or not elements:
                return _NOTHING
            element = elements[0]
            if "for" in element:
                node = _node(element["for"])
                if node is None:
                    return _NOTHING
        else:
            for candidate in _from_the_right(fields):
                if candidate is None:
                    return _NOTHING
                element = candidate
                if "for" not in candidate:
                    node = None  # no word on who sent it: the walk ends here
                    break
                node = _node(candidate["for"])
                if node is None:
                    return _NOTHING
                if node[0] not in trusted:
                    break
            if element is None:
                return _NOTHING
        scheme = None
        proto = element.get("proto")
        if proto is not None:
            scheme = _SCHEMES.get(proto.lower())
            if scheme is None:
                return _NOTHING
        host = element.get("host")
        if host is not None and _HOST.match(host) is None:
            return _NOTHING
        return node, scheme, host if self.forwarded_host else None


def _from_the_right(fields: tuple[bytes, ...]) -> Iterator[dict[str, str] | None]:
    """Forwarded elements, nearest proxy first, parsing a field (line) only when the
    walk reaches it; None for a malformed one, then nothing more."""
    for field in reversed(fields):
        elements = parse_forwarded(field.decode("latin-1"))
        if elements is None:
            yield None
            return
        yield from reversed(elements)


def parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """The elements of one Forwarded field, parameter names lower-cased; None if malformed.

    Empty list members (``a, , b``) are skipped, as RFC 9110 §5.6.1 allows.
    """
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    pos = _skip_separators(value, 0)
    end = len(value)
    while pos < end:
        match = _PAIR.match(value, pos)
        if match is None:
            return None
        name, raw, separator = match.groups()
        name = name.lower()
        if name in element:  # RFC 7239 §4: a parameter at most once per element
            return None
        element[name] = _ESCAPE.sub(r"\1", raw[1:-1]) if raw[0] == '"' else raw
        pos = match.end()
        if separator != ";":
            elements.append(element)
            element = {}
            pos = _skip_separators(value, pos)
        elif pos >= end:  # a trailing ';'
            return None
    return elements


def _skip_separators(value: str, pos: int) -> int:
    end = len(value)
    while pos < end and value[pos] in " \t,":
        pos += 1
    return pos


def _node(value: str) -> tuple[str, int] | None:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 as (host, port), port 0
    when absent or obfuscated; None unless the host is an IP address, "unknown" or
    an obfuscated identifier (a malformed address is not taken for a name)."""
    if value.startswith("["):
        end = value.find("]")
        host, rest = value[1:end], value[end + 1 :]
        if end == -1 or not _is_ip(host):
            return None
    elif value.count(":") > 1:  # a bare IPv6 address, as X-Forwarded-For carries it
        return (value, 0) if _is_ip(value) else None
    else:
        host, colon, port = value.partition(":")
        rest = colon + port
        if not (_is_ip(host) or _OBFUSCATED.match(host)):
            return None
    if not rest:
        return host, 0
    port = rest[1:]
    if rest[0] != ":" or not port:
        return None
    if port.isdigit() and port.isascii():
        number = int(port)
        return (host, number) if number <= 65535 else None
    return (host, 0) if port[0] == "_" and _OBFUSCATED.match(port) else None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _x_forwarded_host(
    x_host: bytes | None, x_port: bytes | None, host: bytes | None, scheme: str
) -> str | None:
    """The Host from X-Forwarded-Host and -Port; None to keep the request's own.

    X-Forwarded-Host's own port wins; else X-Forwarded-Port replaces the port of
    the host (the forwarded one, or the request's own if none or malformed), left
    out when it is the scheme's default.
    """
    port: str | None = None
    if x_port is not None:
        port = x_port.decode("latin-1").strip()
        if not (port.isdigit() and port.isascii() and 0 < int(port) <= 65535):
            port = None
    name: str | None = None
    if x_host is not None:
        name = x_host.decode("latin-1").strip()
        if _HOST.match(name) is None:
            name = None
        elif port is None or _has_port(name):
            return name
    if port is None:
        return None
    if name is None:
        name = host.decode("latin-1") if host is not None else ""
        if _HOST.match(name) is None:
            return None
    if _has_port(name):
        name = name[: name.rfind(":")]
    return name if int(port) == _DEFAULT_PORTS[scheme] else f"{name}:{port}"


def _has_port(host: str) -> bool:
    return ":" in host[host.rfind("]") + 1 :]


def with_host(headers: list[tuple[bytes, bytes]], host: str) -> list[tuple[bytes, bytes]]:
    """A copy of ``headers`` with the Host field set to ``host`` (the original list is
    the engine's and stays as received)."""
    value = host.encode("ascii")
    replaced = [(name, value if name == b"host" else field) for name, field in headers]
    if (b"host", value) not in replaced:
        replaced.append((b"host", value))
    return replaced
