"""What the interfaces take from the server's settings: one object, built once.

The native ``App`` (``App.configure``) and the ``ASGIAdapter`` read the same
``InterfaceSettings``, which the CLI builds from its ``Config``
(``InterfaceSettings.from_config``). The proxy-header rules are one
``ProxyHeaders`` shared by both interfaces (and its cache of verdicts with them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import Config
from .proxy import ProxyHeaders


@dataclass(frozen=True, slots=True, eq=False)
class InterfaceSettings:
    #: ASGI root_path, prepended to scope["root_path"] (Config.root_path).
    root_path: str = ""
    #: ASGI lifespan mode: "auto", "on" or "off" (Config.lifespan).
    lifespan: str = "auto"
    #: The trusted proxies and what they may change (blazeasgi/proxy.py); None when
    #: proxy headers are ignored. By default: trusted as Config's defaults say.
    proxy: ProxyHeaders | None = field(default_factory=ProxyHeaders)

    @classmethod
    def from_config(cls, config: Config) -> InterfaceSettings:
        """Raises ValueError naming a bad entry of ``forwarded_allow_ips`` (or of
        $FORWARDED_ALLOW_IPS when that is None)."""
        proxy = (
            ProxyHeaders(config.forwarded_allow_ips, config.forwarded_host) if config.proxy_headers else None
        )
        return cls(config.root_path, config.lifespan, proxy)
