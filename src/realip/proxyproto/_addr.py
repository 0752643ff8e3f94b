"""Address text and v1 port values for the decoder, behind bounded caches.

Turning an IPv6 address into its canonical text (RFC 5952, glibc's ``inet_ntop``)
costs more than the rest of a v2 header's decoding, and checking a v1 address with
``inet_pton`` is a good part of a v1 line's. A server sees the same few
destination addresses on every connection and the same clients again and again,
so each conversion is remembered: only results of a successful conversion are
stored, so a cached answer is exactly what the conversion would give. Each address
cache holds at most :data:`CACHE_SIZE` entries and the port cache
:data:`PORT_CACHE_SIZE`; a full cache is emptied, which bounds memory whatever a
peer sends and costs a flood of distinct values no more than the uncached
conversion.
"""

from __future__ import annotations

from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import TypeVar

_V = TypeVar("_V", str, int)

CACHE_SIZE = 1024
_OCTET = tuple(str(octet) for octet in range(256))
_OCTET_DOT = tuple(f"{octet}." for octet in range(256))
#: Ports are a closed set: this many covers any one operating system's whole
#: ephemeral range (Linux's 32768-60999, the IANA 49152-65535), so a server's
#: clients find their port known almost always, for at most about 3.3 MiB.
PORT_CACHE_SIZE = 32768

#: packed 4 bytes -> dotted-quad text (v2 headers)
V2_INET: dict[bytes, str] = {}
#: packed 16 bytes -> canonical IPv6 text (v2 headers)
V2_INET6: dict[bytes, str] = {}
#: bytes seen in a v1 TCP4 line -> the same text, known valid
V1_INET: dict[bytes, str] = {}
#: bytes seen in a v1 TCP6 line -> its canonical form, known valid
V1_INET6: dict[bytes, str] = {}
#: bytes seen as a v1 port -> its value, known to be written without a leading
#: zero or sign and to be at most 65535
V1_PORT: dict[bytes, int] = {}


def v2_inet(packed: bytes) -> str:
    """Dotted-quad text of a packed IPv4 address (the cache-miss path)."""
    # From a table of the 256 octets: under half the instructions of inet_ntop.
    dot = _OCTET_DOT
    text = dot[packed[0]] + dot[packed[1]] + dot[packed[2]] + _OCTET[packed[3]]
    _remember(V2_INET, packed, text)
    return text


def v2_inet6(packed: bytes) -> str:
    """Canonical text of a packed IPv6 address (the cache-miss path)."""
    text = inet_ntop(AF_INET6, packed)
    _remember(V2_INET6, packed, text)
    return text


def v1_inet(raw: bytes) -> str:
    """``raw`` as text if it is a strict dotted-quad IPv4 address; raises
    ``OSError``, ``ValueError`` (a NUL) or ``UnicodeDecodeError`` otherwise.
    glibc's ``inet_pton`` refuses leading zeros, fewer than four parts and
    anything but digits and dots."""
    text = raw.decode("ascii")
    inet_pton(AF_INET, text)
    _remember(V1_INET, raw, text)
    return text


def v1_inet6(raw: bytes) -> str:
    """The canonical form of the IPv6 address ``raw``; raises ``OSError``,
    ``ValueError`` or ``UnicodeDecodeError`` if it is not one (zone ids,
    brackets and dotted quads alone included)."""
    canonical = inet_ntop(AF_INET6, inet_pton(AF_INET6, raw.decode("ascii")))
    _remember(V1_INET6, raw, canonical)
    return canonical


def v1_port(raw: bytes) -> int:
    """The value of the v1 port ``raw``: ASCII digits, no leading zero, at most
    65535; raises ``ValueError`` otherwise."""
    if raw.isdigit() and len(raw) <= 5 and (raw[0] != 0x30 or len(raw) == 1):
        port = int(raw)
        if port <= 0xFFFF:
            _remember(V1_PORT, raw, port, PORT_CACHE_SIZE)
            return port
    raise ValueError(raw)


def _remember(
    cache: dict[bytes, _V], key: bytes, value: _V, size: int | None = None
) -> None:
    """Store ``value``, emptying ``cache`` first if it holds ``size`` entries
    (:data:`CACHE_SIZE` by default)."""
    if len(cache) >= (CACHE_SIZE if size is None else size):
        cache.clear()
    cache[key] = value
