"""What the compat apps share: the data directory, the served file, payloads."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

#: 1 MiB and a bit of bytes that are easy to check at any offset.
FILE_SIZE = (1 << 20) + 123
BIG_TEXT = "blazeasgi compat " * 2000  # 34 KB of text: compressible


def file_bytes() -> bytes:
    return (bytes(range(256)) * (FILE_SIZE // 256 + 1))[:FILE_SIZE]


def data_dir() -> Path:
    """``$COMPAT_DATA_DIR``, with ``data.bin`` in it (created if missing)."""
    path = os.environ.get("COMPAT_DATA_DIR")
    directory = Path(path) if path else Path(tempfile.mkdtemp(prefix="compat-"))
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data.bin"
    if not data.exists():
        data.write_bytes(file_bytes())
        os.utime(data, (1_700_000_000, 1_700_000_000))  # a fixed mtime: stable ETag
    if path is None:
        os.environ["COMPAT_DATA_DIR"] = str(directory)
    return directory


def digest(body: bytes) -> dict[str, object]:
    return {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def pattern(size: int) -> bytes:
    """``size`` bytes of a repeating pattern (multi-MiB downloads)."""
    block = bytes(range(256)) * 256
    return (block * (size // len(block) + 1))[:size]


#: Lines of the server-sent event stream, sent with a pause between them.
SSE_EVENTS = [f"event: tick\ndata: {i}\nid: {i}\n\n" for i in range(5)]
