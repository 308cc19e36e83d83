"""The ASGI 3 interface: an adapter over the engine, and the lifespan protocol."""

from .adapter import ASGIAdapter
from .lifespan import Lifespan

__all__ = ["ASGIAdapter", "Lifespan"]
