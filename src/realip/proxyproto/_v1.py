"""PROXY protocol v1, the text line (spec section 2.1).

Grammar, each separator exactly one space::

    "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF
    "PROXY" SP "UNKNOWN" [SP anything] CRLF

The parser is strict where the spec says "any sequence which does not exactly match
the protocol must be discarded": no leading zeros in octets or ports, no signs, no
zone ids, no address of the other family, no lone CR or LF, and a CRLF within the
first 107 bytes. Addresses are checked with the C ``inet_pton`` (glibc rejects
leading zeros in IPv4 octets), and IPv6 is returned in its canonical form so that a
v1 and a v2 header for the same client compare equal.
"""

from __future__ import annotations

import socket
from typing import NoReturn

from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.proxyproto._constants import (
    V1_MAX_SIZE,
    V1_PREFIX,
    Command,
    Family,
    Protocol,
)
from realip.proxyproto._types import Address, ProxyHeader
from realip.proxyproto._util import show

_AF = {b"TCP4": socket.AF_INET, b"TCP6": socket.AF_INET6}
_FAMILY = {b"TCP4": Family.INET, b"TCP6": Family.INET6}
_PROTO_NAME = {Family.INET: "TCP4", Family.INET6: "TCP6"}


def parse_v1(data: bytes | bytearray) -> ProxyHeader:
    """Parse a v1 line at the start of ``data`` (which starts with ``PROXY ``)."""
    end = data.find(b"\r\n", 0, V1_MAX_SIZE)
    if end < 0:
        _incomplete_or_invalid(data)
    line = bytes(data[:end])
    if b"\r" in line or b"\n" in line:
        raise ProxyProtocolError(
            f"v1 line {show(line)} contains a lone CR or LF", field="line"
        )
    parts = line.split(b" ")
    proto = parts[1] if len(parts) > 1 else b""
    if proto == b"UNKNOWN":
        # "the receiver must ignore anything presented before the CRLF is found"
        return ProxyHeader(
            1, Command.PROXY, Family.UNSPEC, Protocol.UNSPEC, None, None, (), end + 2
        )
    af = _AF.get(proto)
    if af is None:
        raise ProxyProtocolError(
            f"v1 protocol must be TCP4, TCP6 or UNKNOWN, got {show(proto)}",
            field="protocol",
        )
    if len(parts) != 6:
        raise ProxyProtocolError(
            f"v1 {proto.decode()} line must have 6 fields separated by single "
            f"spaces, got {len(parts)} in {show(line)}",
            field="line",
        )
    src = _address(parts[2], af, "source address")
    dst = _address(parts[3], af, "destination address")
    sport = _port(parts[4], "source port")
    dport = _port(parts[5], "destination port")
    family = _FAMILY[proto]
    return ProxyHeader(
        1,
        Command.PROXY,
        family,
        Protocol.STREAM,
        (src, sport),
        (dst, dport),
        (),
        end + 2,
    )


def _incomplete_or_invalid(data: bytes | bytearray) -> NoReturn:
    head = bytes(data[:V1_MAX_SIZE])
    lone = head.find(b"\n")
    if lone < 0:
        cr = head.find(b"\r")
        # A CR that is not the last byte received is not followed by LF.
        if 0 <= cr < len(head) - 1:
            lone = cr
    if lone >= 0:
        raise ProxyProtocolError(
            f"v1 line has a lone CR or LF at offset {lone}: {show(head[: lone + 1])}",
            field="line",
        )
    if len(data) >= V1_MAX_SIZE:
        raise ProxyProtocolError(
            f"v1 line has no CRLF within the first {V1_MAX_SIZE} bytes: {show(head)}",
            field="line",
        )
    raise IncompleteHeader(
        f"v1 line incomplete after {len(data)} bytes: {show(head)}", needed=None
    )


def _address(raw: bytes, af: int, what: str) -> str:
    try:
        text = raw.decode("ascii")
        packed = socket.inet_pton(af, text)
    except (UnicodeDecodeError, OSError, ValueError):
        family = "IPv4" if af == socket.AF_INET else "IPv6"
        raise ProxyProtocolError(
            f"v1 {what} must be a plain {family} address, got {show(raw)}",
            field=what,
        ) from None
    if af == socket.AF_INET:
        return text  # inet_pton accepted it, so it is already canonical
    return socket.inet_ntop(af, packed)


def _port(raw: bytes, what: str) -> int:
    # bytes.isdigit() is ASCII-only: no signs, no "_", no spaces, no Unicode digits.
    if not raw.isdigit() or len(raw) > 5 or (raw[0] == 0x30 and len(raw) > 1):
        raise ProxyProtocolError(
            f"v1 {what} must be 0-65535 without leading zeros, got {show(raw)}",
            field=what,
        )
    port = int(raw)
    if port > 0xFFFF:
        raise ProxyProtocolError(f"v1 {what} must be 0-65535, got {port}", field=what)
    return port


def build_v1(
    source: Address | None, destination: Address | None, family: Family | None = None
) -> bytes:
    """Build a v1 line. ``source=None`` (or family UNSPEC) gives ``PROXY UNKNOWN``."""
    if source is None or destination is None or family is Family.UNSPEC:
        return V1_PREFIX + b"UNKNOWN\r\n"
    if isinstance(source, str) or isinstance(destination, str):
        raise ProxyProtocolError(
            f"v1 cannot carry UNIX addresses, got {source!r}", field="family"
        )
    if family is None:
        family = Family.INET6 if ":" in source[0] else Family.INET
    name = _PROTO_NAME.get(family)
    if name is None:
        raise ProxyProtocolError(
            f"v1 carries only INET and INET6 addresses, got family {family.name}",
            field="family",
        )
    af = socket.AF_INET if family is Family.INET else socket.AF_INET6
    src = _canonical(source[0], af, "source address")
    dst = _canonical(destination[0], af, "destination address")
    _check_port(source[1], "source port")
    _check_port(destination[1], "destination port")
    return f"PROXY {name} {src} {dst} {source[1]} {destination[1]}\r\n".encode("ascii")


def _canonical(host: str, af: int, what: str) -> str:
    try:
        return socket.inet_ntop(af, socket.inet_pton(af, host))
    except (OSError, ValueError):
        family = "IPv4" if af == socket.AF_INET else "IPv6"
        raise ProxyProtocolError(
            f"{what} must be an {family} address, got {host!r}", field=what
        ) from None


def _check_port(port: int, what: str) -> None:
    if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise ProxyProtocolError(f"{what} must be 0-65535, got {port!r}", field=what)
