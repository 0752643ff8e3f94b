"""CRC32C (Castagnoli), used by the v2 CRC32C TLV (section 2.2.3, RFC 4960 App. B).

The ``crc32c`` package (a C extension) is used when installed; otherwise a
table-driven pure-Python version gives the same results, only slower. Both take an
initial value so a checksum can be computed over several pieces without copying.
"""

from __future__ import annotations

from collections.abc import Callable

_POLY = 0x82F63B78  # reflected Castagnoli polynomial


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c_pure(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC32C of ``data``, continuing from ``value`` (0 to start)."""
    crc = value ^ 0xFFFFFFFF
    table = _TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _load_fast() -> Callable[[bytes | bytearray | memoryview, int], int] | None:
    try:
        import crc32c as _fast
    except ImportError:  # pragma: no cover - the package is a dependency
        return None
    fn: Callable[[bytes | bytearray | memoryview, int], int] = _fast.crc32c
    return fn


crc32c: Callable[[bytes | bytearray | memoryview, int], int] = (
    _load_fast() or crc32c_pure
)
