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
from socket import inet_ntop, inet_pton
from typing import NoReturn

from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.proxyproto import _addr
from realip.proxyproto._addr import v1_inet as _v1_inet
from realip.proxyproto._addr import v1_inet6 as _v1_inet6
from realip.proxyproto._addr import v1_port as _v1_port
from realip.proxyproto._constants import (
    V1_MAX_SIZE,
    V1_PREFIX,
    Command,
    Family,
    Protocol,
)
from realip.proxyproto._sniff import not_a_header
from realip.proxyproto._types import Address, ProxyHeader
from realip.proxyproto._util import show

_new_header = object.__new__
# The caches are bound here by assignment, not by ``from ... import``: CPython
# 3.11 compiles a method call on a name bound by an import as an attribute load
# and a call (no LOAD_METHOD), which costs a bound-method object per lookup.
_V1_INET = _addr.V1_INET
_V1_INET6 = _addr.V1_INET6
_V1_PORT = _addr.V1_PORT
_AF = {b"TCP4": socket.AF_INET, b"TCP6": socket.AF_INET6}
_PROTO_NAME = {Family.INET: "TCP4", Family.INET6: "TCP6"}
_INET, _INET6, _UNSPEC = Family.INET, Family.INET6, Family.UNSPEC
_PROXY, _STREAM = Command.PROXY, Protocol.STREAM
_UNKNOWN_PROTOCOL = Protocol.UNSPEC


def parse_v1(data: bytes) -> ProxyHeader:
    """Parse a v1 line at the start of ``data`` (whose first byte is ``P``)."""
    # Fast path for a valid TCP4/TCP6 line: the line (its CRLF within the first
    # 107 bytes) is split at single spaces, then each field is looked up among
    # the values already known valid (see _addr) or checked and remembered:
    # addresses with inet_pton (strict: no leading zeros in octets, no zone ids,
    # no IPv4 in a TCP6 line or the reverse), ports as digits without a leading
    # zero or sign. A double space leaves an empty field and a lone CR or LF
    # stays inside one, so both fail a field's check. Any failure falls through
    # to _parse_slowly(), which handles UNKNOWN and names the culprit of an
    # invalid line. (partition() on the first 107 bytes costs less than find()
    # and a slice: CPython 3.11 calls it without an argument tuple.)
    # tests/proxyproto/test_v1_oracle.py holds this path to a regex reading.
    line, crlf, _ = data[:V1_MAX_SIZE].partition(b"\r\n")
    try:
        prefix, protocol, src, dst, sport, dport = line.split(b" ")
        if protocol == b"TCP4":
            family = _INET
            source = _V1_INET.get(src) or _v1_inet(src)
            destination = _V1_INET.get(dst) or _v1_inet(dst)
        elif protocol == b"TCP6":
            family = _INET6
            # Canonical form, so that v1 and v2 headers for a client compare equal.
            source = _V1_INET6.get(src) or _v1_inet6(src)
            destination = _V1_INET6.get(dst) or _v1_inet6(dst)
        else:
            raise ValueError(protocol)
        source_port = _V1_PORT.get(sport)
        if source_port is None:
            source_port = _v1_port(sport)
        destination_port = _V1_PORT.get(dport)
        if destination_port is None:
            destination_port = _v1_port(dport)
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        pass
    else:
        if crlf and prefix == b"PROXY":
            header = _new_header(ProxyHeader)
            header.source = (source, source_port)
            header.destination = (destination, destination_port)
            header.tlvs = ()
            header.version = 1
            header.command = _PROXY
            header.family = family
            header.protocol = _STREAM
            header.length = len(line) + 2
            return header
    if data[:6] != V1_PREFIX:
        not_a_header(data)
    end = data.find(b"\r\n", 6, V1_MAX_SIZE)
    if end < 0:
        _incomplete_or_invalid(data)
    return _parse_slowly(data, end)


def _parse_slowly(data: bytes, end: int) -> ProxyHeader:
    """An UNKNOWN line, or the error naming what is wrong with a TCP4/TCP6 one."""
    line = data[6:end]
    if b"\r" in line or b"\n" in line:
        _lone_cr_lf(data, end)
    parts = line.split(b" ")
    af = _AF.get(parts[0])
    if af is None:
        if parts[0] == b"UNKNOWN":
            # "the receiver must ignore anything presented before the CRLF"
            return ProxyHeader(
                1, _PROXY, _UNSPEC, _UNKNOWN_PROTOCOL, None, None, (), end + 2
            )
        raise ProxyProtocolError(
            f"v1 protocol must be TCP4, TCP6 or UNKNOWN, got {show(parts[0])}",
            field="protocol",
        )
    if len(parts) != 5:
        raise ProxyProtocolError(
            f"v1 {parts[0].decode()} line must have 6 fields separated by single "
            f"spaces, got {len(parts) + 1} in {show(data[:end])}",
            field="line",
        )
    _address(parts[1], af, "source address")
    _address(parts[2], af, "destination address")
    _port(parts[3], "source port")
    _port(parts[4], "destination port")
    # Not reached: every check of the fast path has its named twin above.
    raise ProxyProtocolError(f"v1 line refused: {show(data[:end])}", field="line")


def _lone_cr_lf(data: bytes, end: int) -> NoReturn:
    line = data[:end]
    lone = min(i for i in (line.find(b"\r"), line.find(b"\n")) if i >= 0)
    raise ProxyProtocolError(
        f"v1 line has a lone CR or LF at offset {lone}: {show(line[: lone + 1])}",
        field="line",
    )


def _incomplete_or_invalid(data: bytes) -> NoReturn:
    head = data[:V1_MAX_SIZE]
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
        packed = inet_pton(af, text)
    except (UnicodeDecodeError, OSError, ValueError):
        family = "IPv4" if af == socket.AF_INET else "IPv6"
        raise ProxyProtocolError(
            f"v1 {what} must be a plain {family} address, got {show(raw)}",
            field=what,
        ) from None
    if af == socket.AF_INET:
        return text
    return inet_ntop(af, packed)


def _port(raw: bytes, what: str) -> int:
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
