"""Proxy headers, trusted the way uvicorn trusts them by default.

uvicorn wraps every app in its ProxyHeadersMiddleware with ``--proxy-headers`` on
and ``--forwarded-allow-ips`` taken from ``$FORWARDED_ALLOW_IPS`` or
``127.0.0.1,::1``: from a trusted peer, ``X-Forwarded-Proto`` sets
``scope["scheme"]`` and ``X-Forwarded-For`` sets ``scope["client"]`` (to the
nearest untrusted address in the list). An app moved from uvicorn sees the same
scope here; the adapter applies it while building the scope, without a middleware.
"""

from __future__ import annotations

import functools
import ipaddress
import os

DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1,::1"

_PROTOS = frozenset({"http", "https", "ws", "wss"})


def _parse_host_port(value: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port); port 0 when absent."""
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return value, 0
        host, rest = value[1:end], value[end + 1 :]
        if not rest:
            return host, 0
        if not rest.startswith(":"):
            return value, 0
        try:
            return host, int(rest[1:])
        except ValueError:
            return host, 0
    if value.count(":") == 1:
        host, port = value.rsplit(":", 1)
        try:
            return host, int(port)
        except ValueError:
            return value, 0
    return value, 0


class TrustedHosts:
    """The peers whose proxy headers are believed: addresses, networks or ``*``."""

    def __init__(self, trusted: str | list[str] | None = None) -> None:
        if trusted is None:
            trusted = os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_FORWARDED_ALLOW_IPS)
        items = [h.strip() for h in trusted.split(",")] if isinstance(trusted, str) else list(trusted)
        self.always = "*" in items
        self.literals: set[str] = set()
        self.hosts: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        self.networks: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
        for item in items:
            if not item or item == "*":
                continue
            try:
                if "/" in item:
                    self.networks.add(ipaddress.ip_network(item))
                else:
                    self.hosts.add(ipaddress.ip_address(item))
            except ValueError:
                self.literals.add(item)
        self._cached = functools.lru_cache(maxsize=4096)(self._compute)

    def __contains__(self, host: str | None) -> bool:
        if self.always:
            return True
        if not host:
            return False
        if len(host) > 253:
            return self._compute(host)
        return self._cached(host)

    def _compute(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host in self.literals
        return ip in self.hosts or any(ip in net for net in self.networks)

    def client_from(self, forwarded_for: str) -> tuple[str, int]:
        """The nearest untrusted address in an X-Forwarded-For list."""
        hops = [h.strip() for h in forwarded_for.split(",")]
        if self.always:
            return _parse_host_port(hops[0])
        for hop in reversed(hops):
            host, port = _parse_host_port(hop)
            if host not in self:
                return host, port
        return _parse_host_port(hops[0])


def apply_proxy_headers(
    trusted: TrustedHosts,
    proto: bytes | None,
    forwarded_for: list[bytes],
    scheme: str,
    client: tuple[str, int] | None,
) -> tuple[str, tuple[str, int] | None]:
    """(scheme, client) after X-Forwarded-Proto / X-Forwarded-For from a trusted peer."""
    if proto is not None:
        value = proto.decode("latin-1").strip()
        if value in _PROTOS:
            scheme = value
    if forwarded_for:
        host, port = trusted.client_from(b", ".join(forwarded_for).decode("latin-1"))
        if host:
            client = (host, port)
    return scheme, client
