"""Entry points: one-shot :func:`decode` and the incremental
:class:`HeaderReader`, plus the per-datagram UDP functions. (Detection,
:func:`~realip.proxyproto.sniff`, is in ``_sniff``.)
"""

from __future__ import annotations

from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.proxyproto._constants import (
    V2_MAX_SIZE,
    Command,
    Family,
    Protocol,
)
from realip.proxyproto._sniff import Buffer, not_a_header
from realip.proxyproto._types import ProxyHeader
from realip.proxyproto._v1 import build_v1, parse_v1
from realip.proxyproto._v2 import build_v2, parse_v2


def decode(data: Buffer, *, max_size: int = V2_MAX_SIZE) -> ProxyHeader:
    """Decode the PROXY header at the start of ``data``.

    Returns the header; ``header.length`` is the number of bytes it took, and
    ``data[header.length:]`` is the client's own data. Raises
    :class:`~realip.errors.IncompleteHeader` when ``data`` is a valid but
    unfinished start of a header, and :class:`~realip.errors.ProxyProtocolError`
    (never anything else) when it is not a valid header. ``max_size`` bounds a
    v2 header (v1 is always bounded by 107 bytes).
    """
    if type(data) is not bytes:
        data = bytes(data)
    # Each parser checks its own signature; the first byte picks the parser.
    try:
        first = data[0]
    except IndexError:
        not_a_header(data)
    if first == 0x0D:  # CR
        return parse_v2(data, max_size)
    if first == 0x50:  # "P"
        return parse_v1(data)
    not_a_header(data)


class HeaderReader:
    """Incremental decoder: feed it chunks of any size, one byte at a time included.

    :meth:`feed` returns the header once it is complete (``None`` until then), and
    raises :class:`~realip.errors.ProxyProtocolError` as soon as the bytes cannot
    be a valid header. :attr:`remaining` then holds, untouched, every byte that
    followed the header.

    A header that arrives in one chunk is decoded straight from that chunk. A
    split one is buffered, and decoding is retried only once enough bytes are
    known to have arrived (a v2 header announces its length), so feeding a large
    header byte by byte stays linear.
    """

    __slots__ = ("_buffer", "_max_size", "_wait", "header")

    def __init__(self, *, max_size: int = V2_MAX_SIZE) -> None:
        self._buffer = bytearray()
        self._max_size = max_size
        self._wait = 0
        self.header: ProxyHeader | None = None

    def feed(self, data: Buffer) -> ProxyHeader | None:
        """Add ``data``; return the header once complete, else ``None``."""
        buffer = self._buffer
        if self.header is not None:
            buffer += data
            return self.header
        if buffer:
            buffer += data
            if len(buffer) < self._wait:
                return None
            chunk = bytes(buffer)
        else:
            chunk = data if type(data) is bytes else bytes(data)
        try:
            header = decode(chunk, max_size=self._max_size)
        except IncompleteHeader as exc:
            if not buffer:
                buffer += chunk
            self._wait = len(buffer) + (exc.needed or 1)
            return None
        self.header = header
        # From now on the buffer holds only what followed the header.
        self._buffer = bytearray(memoryview(chunk)[header.length :])
        return header

    @property
    def buffered(self) -> int:
        """How many bytes have been fed so far."""
        if self.header is None:
            return len(self._buffer)
        return self.header.length + len(self._buffer)

    @property
    def remaining(self) -> bytes:
        """The bytes after the header (empty until the header is complete)."""
        if self.header is None:
            return b""
        return bytes(self._buffer)


def encode(header: ProxyHeader, *, crc32c: bool = False, pad_to: int = 0) -> bytes:
    """Build the wire form of ``header`` (v1 or v2, as ``header.version`` says).

    ``decode(encode(h))`` equals ``h`` apart from ``length``, which ``decode``
    sets, and apart from what a LOCAL header's receiver must discard (addresses
    and TLVs). ``crc32c`` and ``pad_to`` apply to v2 only. Raises
    :class:`~realip.errors.ProxyProtocolError` for a header the wire format
    cannot carry faithfully.
    """
    if header.version == 1:
        _check_v1(header, crc32c, pad_to)
        return build_v1(header.source, header.destination, header.family)
    if header.version != 2:
        raise ProxyProtocolError(
            f"version must be 1 or 2, got {header.version!r}", field="version"
        )
    if header.family is Family.UNSPEC and header.source is not None:
        raise ProxyProtocolError(
            f"an UNSPEC header carries no addresses, got source {header.source!r}",
            field="source",
        )
    return build_v2(
        header.command,
        header.source,
        header.destination,
        family=header.family,
        protocol=header.protocol,
        tlvs=header.tlvs,
        crc32c=crc32c,
        pad_to=pad_to,
    )


def _check_v1(header: ProxyHeader, crc32c: bool, pad_to: int) -> None:
    # Section 2.1: a v1 line is always PROXY, TCP over IPv4 or IPv6, or UNKNOWN.
    if header.tlvs or crc32c or pad_to:
        raise ProxyProtocolError(
            "v1 headers carry no TLVs, CRC32C or padding", field="version"
        )
    if header.command is not Command.PROXY:
        raise ProxyProtocolError(
            f"v1 headers are always PROXY, got command {header.command.name}",
            field="command",
        )
    wanted = Protocol.UNSPEC if header.family is Family.UNSPEC else Protocol.STREAM
    if header.protocol is not wanted:
        raise ProxyProtocolError(
            f"v1 carries {header.family.name} only with protocol {wanted.name}, got "
            f"{header.protocol.name}",
            field="protocol",
        )
    if header.family is Family.UNSPEC and header.source is not None:
        raise ProxyProtocolError(
            f"v1 UNKNOWN carries no addresses, got source {header.source!r}",
            field="source",
        )


def decode_datagram(
    datagram: Buffer, *, max_size: int = V2_MAX_SIZE
) -> tuple[ProxyHeader, memoryview]:
    """Decode the header at the start of one UDP datagram; return it and the payload.

    The 2026 spec's UDP rules: the header and its payload travel in the same
    datagram and each datagram is parsed on its own, so a datagram that ends inside
    a header is invalid, never "incomplete".
    """
    try:
        header = decode(datagram, max_size=max_size)
    except IncompleteHeader as exc:
        raise ProxyProtocolError(
            f"datagram of {len(datagram)} bytes ends inside its PROXY header ({exc})",
            field="length",
        ) from None
    return header, memoryview(datagram)[header.length :]


def encode_datagram(
    header: ProxyHeader, payload: Buffer, *, crc32c: bool = False
) -> bytes:
    """One UDP datagram: the header, then ``payload``."""
    return encode(header, crc32c=crc32c) + bytes(payload)
