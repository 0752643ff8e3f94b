"""Small helpers shared by the codec's modules."""

from __future__ import annotations

_SHOW_LIMIT = 40


def show(data: bytes | bytearray | memoryview, limit: int = _SHOW_LIMIT) -> str:
    """Bytes as a short, escaped, quoted string for error messages and logs."""
    raw = bytes(data[:limit])
    text = repr(raw)[1:]  # b'...' -> '...'
    return text + ("..." if len(data) > limit else "")
