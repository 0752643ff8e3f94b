"""Read the server name (SNI) and ALPN out of a TLS ClientHello, from raw bytes.

Layout (RFC 8446 sections 4.1.2 and 5.1; RFC 6066 section 3 for SNI, RFC 7301 for
ALPN): TLS records of type 22 (handshake), whose fragments concatenate into one
handshake message of type 1; the ClientHello body is a legacy version, 32 random
bytes, a session id, cipher suites, compression methods and then extensions.

Theory of operation: the bytes come from a capture and may be cut, forged or
something else that starts with 0x16, so every length is checked against what is
there before it is used, and the parser answers one of three ways: a
:class:`ClientHello`, the number of bytes it needs before it can answer, or a
one-line reason the bytes are not a ClientHello. It never raises.
"""

from __future__ import annotations

from typing import NamedTuple

_CONTENT_HANDSHAKE = 22
_HANDSHAKE_CLIENT_HELLO = 1
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16
_EXT_SUPPORTED_VERSIONS = 43
#: A record's length may not exceed 2^14 (plus expansion for protected records,
#: which a ClientHello never is): RFC 8446 section 5.1.
_MAX_RECORD = 16384 + 2048
#: Larger ClientHellos exist in theory only; one that claims more is not kept.
MAX_HELLO = 65536

_VERSIONS = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}


class ClientHello(NamedTuple):
    """What a ClientHello says about where the client wants to go."""

    sni: str | None
    alpn: tuple[str, ...]
    version: str


class _Short(Exception):
    """A length points past the bytes there are."""


def looks_like_tls(data: bytes | bytearray) -> bool:
    """The bytes start like a TLS handshake record (type 22, version 3.x)."""
    return (
        len(data) >= 1
        and data[0] == _CONTENT_HANDSHAKE
        and (len(data) < 2 or data[1] == 3)
    )


def parse_client_hello(data: bytes | bytearray) -> ClientHello | int | str:
    """Parse the ClientHello at the start of ``data``.

    Returns the hello, or the total number of bytes needed before an answer is
    possible (when ``data`` ends inside it), or a reason it is not a ClientHello.
    """
    message = bytearray()
    pos = 0
    needed: int | None = None  # the handshake message's full size, once known
    while needed is None or len(message) < needed:
        if len(data) < pos + 5:
            return pos + 5
        if data[pos] != _CONTENT_HANDSHAKE:
            return f"record of content type {data[pos]} inside a TLS handshake"
        if data[pos + 1] != 3:
            return f"record version {data[pos + 1]}.{data[pos + 2]} is not TLS"
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if length == 0 or length > _MAX_RECORD:
            return f"TLS record length {length} is out of range"
        if len(data) < pos + 5 + length:
            return pos + 5 + length
        message += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if needed is None and len(message) >= 4:
            if message[0] != _HANDSHAKE_CLIENT_HELLO:
                return f"TLS handshake of type {message[0]}, not a ClientHello"
            needed = 4 + int.from_bytes(message[1:4], "big")
            if needed > MAX_HELLO:
                return f"ClientHello claims {needed} bytes"
    try:
        return _hello_body(memoryview(message)[4:needed])
    except _Short:
        return "ClientHello fields run past its end"


def _hello_body(body: memoryview) -> ClientHello:
    reader = _Reader(body)
    legacy_version = reader.u16()
    reader.skip(32)  # random
    reader.skip(reader.u8())  # legacy session id
    reader.skip(reader.u16())  # cipher suites
    reader.skip(reader.u8())  # compression methods
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    version = _VERSIONS.get(legacy_version, f"0x{legacy_version:04x}")
    if reader.left() == 0:  # no extensions at all (SSL 3.0 style)
        return ClientHello(None, (), version)
    extensions = _Reader(reader.take(reader.u16()))
    while extensions.left():
        ext_type = extensions.u16()
        ext = _Reader(extensions.take(extensions.u16()))
        if ext_type == _EXT_SERVER_NAME:
            sni = _server_name(ext)
        elif ext_type == _EXT_ALPN:
            alpn = _alpn(ext)
        elif ext_type == _EXT_SUPPORTED_VERSIONS:
            version = _highest_version(ext) or version
    return ClientHello(sni, alpn, version)


def _server_name(ext: _Reader) -> str | None:
    names = _Reader(ext.take(ext.u16()))
    while names.left():
        name_type = names.u8()
        name = names.take(names.u16())
        if name_type == 0:  # host_name, the only type defined
            return _printable(bytes(name))
    return None


def _alpn(ext: _Reader) -> tuple[str, ...]:
    protocols = _Reader(ext.take(ext.u16()))
    out = []
    while protocols.left():
        out.append(_printable(bytes(protocols.take(protocols.u8()))))
    return tuple(out)


def _highest_version(ext: _Reader) -> str | None:
    versions = _Reader(ext.take(ext.u8()))
    best = 0
    while versions.left() >= 2:
        value = versions.u16()
        if value in _VERSIONS:  # GREASE values (RFC 8701) are skipped
            best = max(best, value)
    return _VERSIONS.get(best)


def _printable(raw: bytes) -> str:
    """Host names and protocol ids are ASCII; anything else is shown escaped."""
    if raw.isascii() and raw.decode("ascii").isprintable():
        return raw.decode("ascii")
    return repr(raw)[2:-1]


class _Reader:
    """Bounds-checked reads from a memoryview; every overrun raises :class:`_Short`."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._pos = 0

    def left(self) -> int:
        return len(self._data) - self._pos

    def take(self, size: int) -> memoryview:
        end = self._pos + size
        if end > len(self._data):
            raise _Short
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def skip(self, size: int) -> None:
        self.take(size)

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        chunk = self.take(2)
        return (chunk[0] << 8) | chunk[1]
