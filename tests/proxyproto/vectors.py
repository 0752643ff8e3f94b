"""Test vectors for the PROXY protocol codec, written from the spec's byte layout.

The v2 byte strings are assembled here by hand (signature, ``ver_cmd``, ``fam``,
``len``, body) and their CRC32C computed with the ``crc32c`` package directly, so
that the expected bytes never come from the codec under test.

``VALID`` drives parsing *and* building: each case is decoded (whole, one byte at
a time, with trailing data) and, unless ``build`` is false, the expected header is
encoded back and must give the same bytes. ``INVALID`` pairs bytes with the error
class and fragments its message must contain (the field and the bad value).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c as _crc32c_package

from realip.errors import ChecksumError, ProxyProtocolError
from realip.proxyproto import (
    TLV,
    Command,
    Family,
    Protocol,
    ProxyHeader,
)

SIG = b"\r\n\r\n\x00\r\nQUIT\n"

INET, INET6, UNIX, UNSPEC = Family.INET, Family.INET6, Family.UNIX, Family.UNSPEC
STREAM, DGRAM = Protocol.STREAM, Protocol.DGRAM
PROXY, LOCAL = Command.PROXY, Command.LOCAL


def v2(body: bytes, *, ver_cmd: int = 0x21, fam: int = 0x11, length: int = -1) -> bytes:
    """A v2 header: signature, ``ver_cmd``, ``fam``, ``len`` (default: the body's)."""
    size = len(body) if length < 0 else length
    return SIG + struct.pack("!BBH", ver_cmd, fam, size) + body


def tlv(tlv_type: int, value: bytes) -> bytes:
    return struct.pack("!BH", tlv_type, len(value)) + value


def ipv4_block(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (
        bytes(int(o) for o in src.split("."))
        + bytes(int(o) for o in dst.split("."))
        + struct.pack("!HH", sport, dport)
    )


def ipv6_block(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    return src + dst + struct.pack("!HH", sport, dport)


def unix_block(src: bytes, dst: bytes) -> bytes:
    return src.ljust(108, b"\x00") + dst.ljust(108, b"\x00")


def with_crc(header: bytes) -> bytes:
    """Fill in the CRC32C TLV of ``header`` (its value must be four zero bytes)."""
    at = _find_tlv(header, 0x03)
    crc = _crc32c_package.crc32c(header)
    return header[:at] + crc.to_bytes(4, "big") + header[at + 4 :]


def _find_tlv(header: bytes, wanted: int) -> int:
    family = header[13] >> 4
    pos = 16 + {0: 0, 1: 12, 2: 36, 3: 216}[family]
    while pos < len(header):
        kind, size = struct.unpack_from("!BH", header, pos)
        if kind == wanted:
            return pos + 3
        pos += 3 + size
    raise LookupError(wanted)


# Addresses used throughout (documentation ranges, RFC 5737 / RFC 3849).
A4 = ipv4_block("192.0.2.7", "198.51.100.1", 51000, 443)
IP6_SRC = bytes.fromhex("20010db8000000000000000000000007")
IP6_DST = bytes.fromhex("20010db8000000000000000000000001")
A6 = ipv6_block(IP6_SRC, IP6_DST, 51000, 443)
SRC4, DST4 = ("192.0.2.7", 51000), ("198.51.100.1", 443)
SRC6, DST6 = ("2001:db8::7", 51000), ("2001:db8::1", 443)

SSL_SUBS = (
    tlv(0x21, b"TLSv1.3")
    + tlv(0x22, b"client.example")
    + tlv(0x23, b"TLS_AES_128_GCM_SHA256")
    + tlv(0x24, b"SHA256")
    + tlv(0x25, b"RSA2048")
    + tlv(0x26, b"X25519")
    + tlv(0x27, b"ecdsa_secp256r1_sha256")
    + tlv(0x28, b"\x30\x03\x02\x01\x00")
)
SSL_VALUE = b"\x07" + b"\x00\x00\x00\x00" + SSL_SUBS


def header(
    version: int,
    command: Command,
    family: Family,
    protocol: Protocol,
    source: object,
    destination: object,
    tlvs: tuple[TLV, ...] = (),
    length: int = 0,
) -> ProxyHeader:
    return ProxyHeader(
        version, command, family, protocol, source, destination, tlvs, length
    )  # type: ignore[arg-type]


@dataclass(frozen=True)
class Valid:
    name: str
    wire: bytes
    expected: ProxyHeader
    #: Whether encoding ``expected`` must give ``wire`` back (false for inputs
    #: realip accepts but would never write, such as a non-canonical IPv6).
    build: bool = True
    crc32c: bool = False
    pad_to: int = 0


def _v1(name: str, line: bytes, *args: object, build: bool = True) -> Valid:
    family, protocol, src, dst = args
    return Valid(
        name,
        line,
        header(1, PROXY, family, protocol, src, dst, (), len(line)),  # type: ignore[arg-type]
        build=build,
    )


def _v2(
    name: str,
    wire: bytes,
    command: Command,
    family: Family,
    protocol: Protocol,
    src: object,
    dst: object,
    tlvs: tuple[TLV, ...] = (),
    **kw: object,
) -> Valid:
    expected = header(2, command, family, protocol, src, dst, tlvs, len(wire))
    return Valid(name, wire, expected, **kw)  # type: ignore[arg-type]


_CRC_LAST = with_crc(v2(A4 + tlv(0x01, b"h2") + tlv(0x03, bytes(4))))
_CRC_FIRST = with_crc(
    v2(A4 + tlv(0x03, bytes(4)) + tlv(0x01, b"h2") + tlv(0x05, b"id"))
)
_CRC_MIDDLE_V6 = with_crc(
    v2(
        A6 + tlv(0x02, b"a.example") + tlv(0x03, bytes(4)) + tlv(0x04, bytes(5)),
        fam=0x21,
    )
)
_CRC_PADDED = with_crc(v2(A4 + tlv(0x03, bytes(4)) + tlv(0x04, bytes(42))))


def _crc_tlv(wire: bytes) -> TLV:
    at = _find_tlv(wire, 0x03)
    return TLV(3, wire[at : at + 4])


VALID: list[Valid] = [
    # -- v1 (section 2.1) ------------------------------------------------------
    _v1(
        "v1 tcp4",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n",
        INET,
        STREAM,
        SRC4,
        DST4,
    ),
    _v1(
        "v1 tcp4 extremes",
        b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
        INET,
        STREAM,
        ("0.0.0.0", 0),
        ("255.255.255.255", 65535),
    ),
    _v1(
        "v1 tcp4 longest (56 bytes)",
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        INET,
        STREAM,
        ("255.255.255.255", 65535),
        ("255.255.255.255", 65535),
    ),
    _v1(
        "v1 tcp6",
        b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n",
        INET6,
        STREAM,
        SRC6,
        DST6,
    ),
    _v1(
        "v1 tcp6 loopback",
        b"PROXY TCP6 ::1 ::1 1 2\r\n",
        INET6,
        STREAM,
        ("::1", 1),
        ("::1", 2),
    ),
    _v1(
        "v1 tcp6 v4-mapped",
        b"PROXY TCP6 ::ffff:192.0.2.7 ::1 80 81\r\n",
        INET6,
        STREAM,
        ("::ffff:192.0.2.7", 80),
        ("::1", 81),
    ),
    _v1(
        "v1 tcp6 longest (104 bytes), upper case hex made canonical",
        b"PROXY TCP6 FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF "
        b"FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF 65535 65535\r\n",
        INET6,
        STREAM,
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
        build=False,
    ),
    _v1(
        "v1 tcp6 uncompressed input",
        b"PROXY TCP6 2001:0db8:0000:0000:0000:0000:0000:0007 ::1 1 2\r\n",
        INET6,
        STREAM,
        (SRC6[0], 1),
        ("::1", 2),
        build=False,
    ),
    _v1(
        "v1 unknown short form",
        b"PROXY UNKNOWN\r\n",
        UNSPEC,
        Protocol.UNSPEC,
        None,
        None,
    ),
    _v1(
        "v1 unknown with addresses ignored",
        b"PROXY UNKNOWN 192.0.2.7 198.51.100.1 51000 443\r\n",
        UNSPEC,
        Protocol.UNSPEC,
        None,
        None,
        build=False,
    ),
    _v1(
        "v1 unknown with anything before the CRLF",
        b"PROXY UNKNOWN \xff\x00 junk  double  spaces tcp4\r\n",
        UNSPEC,
        Protocol.UNSPEC,
        None,
        None,
        build=False,
    ),
    _v1(
        "v1 unknown, CRLF ends exactly at byte 107",
        b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n",
        UNSPEC,
        Protocol.UNSPEC,
        None,
        None,
        build=False,
    ),
    # -- v2 addresses (section 2.2) ---------------------------------------------
    _v2("v2 tcp4", v2(A4), PROXY, INET, STREAM, SRC4, DST4),
    _v2("v2 udp4", v2(A4, fam=0x12), PROXY, INET, DGRAM, SRC4, DST4),
    _v2("v2 tcp6", v2(A6, fam=0x21), PROXY, INET6, STREAM, SRC6, DST6),
    _v2("v2 udp6", v2(A6, fam=0x22), PROXY, INET6, DGRAM, SRC6, DST6),
    _v2(
        "v2 tcp6 v4-mapped",
        v2(
            ipv6_block(
                bytes(10) + b"\xff\xff\xc0\x00\x02\x07", bytes(15) + b"\x01", 1, 2
            ),
            fam=0x21,
        ),
        PROXY,
        INET6,
        STREAM,
        ("::ffff:192.0.2.7", 1),
        ("::1", 2),
    ),
    _v2(
        "v2 unix stream",
        v2(unix_block(b"/run/client.sock", b"/run/app.sock"), fam=0x31),
        PROXY,
        UNIX,
        STREAM,
        "/run/client.sock",
        "/run/app.sock",
    ),
    _v2(
        "v2 unix dgram, abstract socket, 108-byte path",
        v2(unix_block(b"\x00realip-abstract", b"/" + b"p" * 107), fam=0x32),
        PROXY,
        UNIX,
        DGRAM,
        "\x00realip-abstract",
        "/" + "p" * 107,
    ),
    _v2(
        "v2 proxy unspec", v2(b"", fam=0x00), PROXY, UNSPEC, Protocol.UNSPEC, None, None
    ),
    _v2(
        "v2 proxy unspec with TLVs",
        v2(tlv(0x01, b"h2"), fam=0x00),
        PROXY,
        UNSPEC,
        Protocol.UNSPEC,
        None,
        None,
        (TLV(1, b"h2"),),
    ),
    _v2(
        "v2 local health check",
        v2(b"", ver_cmd=0x20, fam=0x00),
        LOCAL,
        UNSPEC,
        Protocol.UNSPEC,
        None,
        None,
    ),
    _v2(
        "v2 local skips a full block and whatever follows",
        v2(A4 + b"\x01\xff\xff garbage that is not TLVs", ver_cmd=0x20, fam=0x11),
        LOCAL,
        INET,
        STREAM,
        None,
        None,
        build=False,
    ),
    _v2(
        "v2 local with a block too short for its family",
        v2(b"\x00" * 3, ver_cmd=0x20, fam=0x21),
        LOCAL,
        INET6,
        STREAM,
        None,
        None,
        build=False,
    ),
    # -- v2 TLVs (section 2.2.1 onwards) ---------------------------------------
    _v2(
        "v2 registered TLVs in received order",
        v2(
            A4
            + tlv(0x05, b"unique-id-1")
            + tlv(0x01, b"h2")
            + tlv(0x02, b"www.example.com")
            + tlv(0x04, b"")
            + tlv(0x30, b"blue")
        ),
        PROXY,
        INET,
        STREAM,
        SRC4,
        DST4,
        (
            TLV(5, b"unique-id-1"),
            TLV(1, b"h2"),
            TLV(2, b"www.example.com"),
            TLV(4, b""),
            TLV(0x30, b"blue"),
        ),
    ),
    _v2(
        "v2 AUTHORITY of 255 bytes, UNIQUE_ID of 128, UTF-8 authority",
        v2(
            A6
            + tlv(0x02, b"a" * 255)
            + tlv(0x05, b"\xff" * 128)
            + tlv(0x02, "bücher.example".encode()),
            fam=0x21,
        ),
        PROXY,
        INET6,
        STREAM,
        SRC6,
        DST6,
        (TLV(2, b"a" * 255), TLV(5, b"\xff" * 128), TLV(2, "bücher.example".encode())),
    ),
    _v2(
        "v2 SSL with sub-TLVs 0x21-0x28",
        v2(A4 + tlv(0x20, SSL_VALUE)),
        PROXY,
        INET,
        STREAM,
        SRC4,
        DST4,
        (TLV(0x20, SSL_VALUE),),
    ),
    _v2(
        "v2 SSL without sub-TLVs, not verified",
        v2(A4 + tlv(0x20, b"\x01\x00\x00\x00\x01")),
        PROXY,
        INET,
        STREAM,
        SRC4,
        DST4,
        (TLV(0x20, b"\x01\x00\x00\x00\x01"),),
    ),
    _v2(
        "v2 vendor TLVs: AWS, Azure, GCP",
        v2(
            A4
            + tlv(0xEA, b"\x01vpce-08d2bf15fac5001c9")
            + tlv(0xEE, b"\x01\x21\x43\x65\x87")
            + tlv(0xE0, (0x1122334455667788).to_bytes(8, "big"))
        ),
        PROXY,
        INET,
        STREAM,
        SRC4,
        DST4,
        (
            TLV(0xEA, b"\x01vpce-08d2bf15fac5001c9"),
            TLV(0xEE, b"\x01\x21\x43\x65\x87"),
            TLV(0xE0, (0x1122334455667788).to_bytes(8, "big")),
        ),
    ),
    _v2(
        "v2 unknown types kept raw, duplicates kept in order",
        v2(
            A4
            + tlv(0xF0, b"\x00\x01")
            + tlv(0x01, b"h2")
            + tlv(0xFF, b"")
            + tlv(0x01, b"http/1.1")
        ),
        PROXY,
        INET,
        STREAM,
        SRC4,
        DST4,
        (TLV(0xF0, b"\x00\x01"), TLV(1, b"h2"), TLV(0xFF, b""), TLV(1, b"http/1.1")),
    ),
    _v2(
        "v2 unix with TLVs",
        v2(unix_block(b"/a", b"/b") + tlv(0x30, b"ns1"), fam=0x31),
        PROXY,
        UNIX,
        STREAM,
        "/a",
        "/b",
        (TLV(0x30, b"ns1"),),
    ),
    # -- CRC32C (section 2.2.3): verified whatever the TLV order ------------------
    _v2(
        "v2 CRC32C last",
        _CRC_LAST,
        PROXY,
        INET,
        STREAM,
        SRC4,
        DST4,
        (TLV(1, b"h2"), _crc_tlv(_CRC_LAST)),
        crc32c=True,
    ),
    _v2(
        "v2 CRC32C before ALPN (HAProxy's order)",
        _CRC_FIRST,
        PROXY,
        INET,
        STREAM,
        SRC4,
        DST4,
        (_crc_tlv(_CRC_FIRST), TLV(1, b"h2"), TLV(5, b"id")),
        crc32c=True,
    ),
    _v2(
        "v2 CRC32C between TLVs, IPv6",
        _CRC_MIDDLE_V6,
        PROXY,
        INET6,
        STREAM,
        SRC6,
        DST6,
        (TLV(2, b"a.example"), _crc_tlv(_CRC_MIDDLE_V6), TLV(4, bytes(5))),
        crc32c=True,
    ),
    _v2(
        "v2 CRC32C then NOOP padding to 80 bytes",
        _CRC_PADDED,
        PROXY,
        INET,
        STREAM,
        SRC4,
        DST4,
        (_crc_tlv(_CRC_PADDED), TLV(4, bytes(42))),
        crc32c=True,
        pad_to=80,
    ),
]


@dataclass(frozen=True)
class Invalid:
    name: str
    wire: bytes
    fragments: tuple[str, ...]
    error: type[ProxyProtocolError] = ProxyProtocolError


def _bad(
    name: str,
    wire: bytes,
    *fragments: str,
    error: type[ProxyProtocolError] = ProxyProtocolError,
) -> Invalid:
    return Invalid(name, wire, fragments, error)


def _flip(wire: bytes, at: int) -> bytes:
    return wire[:at] + bytes([wire[at] ^ 0x01]) + wire[at + 1 :]


_L = b"PROXY TCP4 192.0.2.7 198.51.100.1 "

INVALID: list[Invalid] = [
    # -- v1 ---------------------------------------------------------------------
    _bad(
        "v1 leading zero, source port", _L + b"051000 443\r\n", "source port", "051000"
    ),
    _bad(
        "v1 leading zero, destination port",
        _L + b"51000 0443\r\n",
        "destination port",
        "0443",
    ),
    _bad("v1 port 00", _L + b"00 443\r\n", "source port", "00"),
    _bad(
        "v1 leading zero, octet",
        b"PROXY TCP4 192.0.2.07 198.51.100.1 1 2\r\n",
        "source address",
        "192.0.2.07",
    ),
    _bad(
        "v1 leading zero, first octet",
        b"PROXY TCP4 1.2.3.4 010.0.0.1 1 2\r\n",
        "destination address",
        "010.0.0.1",
    ),
    _bad("v1 plus sign", _L + b"+80 443\r\n", "source port", "+80"),
    _bad("v1 minus sign", _L + b"80 -1\r\n", "destination port", "-1"),
    _bad("v1 underscore in port", _L + b"8_0 443\r\n", "source port", "8_0"),
    _bad("v1 hex port", _L + b"0x50 443\r\n", "source port", "0x50"),
    _bad("v1 port 65536", _L + b"65536 443\r\n", "source port", "65536"),
    _bad("v1 port 99999", _L + b"80 99999\r\n", "destination port", "99999"),
    _bad("v1 six-digit port", _L + b"100000 443\r\n", "source port", "100000"),
    _bad("v1 non-ASCII digit", _L + "80 ٤٤٣\r\n".encode(), "destination port"),
    _bad(
        "v1 octet 256",
        b"PROXY TCP4 192.0.2.256 198.51.100.1 1 2\r\n",
        "source address",
        "192.0.2.256",
    ),
    _bad(
        "v1 three octets",
        b"PROXY TCP4 192.0.2 198.51.100.1 1 2\r\n",
        "source address",
        "192.0.2",
    ),
    _bad(
        "v1 non-ASCII address",
        b"PROXY TCP4 192.0.2.\xb7 198.51.100.1 1 2\r\n",
        "source address",
        "\\xb7",
    ),
    _bad(
        "v1 double space after PROXY",
        b"PROXY  TCP4 192.0.2.7 198.51.100.1 1 2\r\n",
        "protocol",
        "''",
    ),
    _bad(
        "v1 double space between fields",
        b"PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",
        "6 fields",
        "got 7",
    ),
    _bad("v1 trailing space", _L + b"1 2 \r\n", "6 fields", "got 7"),
    _bad("v1 missing port", _L + b"1\r\n", "6 fields", "got 5"),
    _bad(
        "v1 tab separator",
        b"PROXY TCP4 192.0.2.7\t198.51.100.1 1 2\r\n",
        "6 fields",
        "got 5",
    ),
    _bad(
        "v1 lone CR inside the line",
        b"PROXY TCP4 192.0.2.7\r198.51.100.1 1 2\r\n",
        "lone CR or LF",
    ),
    _bad(
        "v1 lone LF inside the line",
        b"PROXY TCP4 192.0.2.7\n198.51.100.1 1 2\r\n",
        "lone CR or LF",
    ),
    _bad("v1 LF without CR", _L + b"1 2\n", "lone CR or LF", "offset 37"),
    _bad("v1 CR then not LF", _L + b"1 2\rX", "lone CR or LF", "offset 37"),
    _bad("v1 LF CR", _L + b"1 2\n\r", "lone CR or LF"),
    _bad("v1 lone CR in UNKNOWN", b"PROXY UNKNOWN a\rb\r\n", "lone CR or LF"),
    _bad(
        "v1 lower case protocol",
        b"PROXY tcp4 192.0.2.7 198.51.100.1 1 2\r\n",
        "protocol",
        "tcp4",
    ),
    _bad("v1 lower case unknown", b"PROXY unknown\r\n", "protocol", "unknown"),
    _bad(
        "v1 lower case PROXY",
        b"proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n",
        "not a PROXY protocol header",
        "'p",
    ),
    _bad("v1 TCP5", b"PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n", "protocol", "TCP5"),
    _bad("v1 UNKNOWN glued to more", b"PROXY UNKNOWNX\r\n", "protocol", "UNKNOWNX"),
    _bad("v1 empty protocol", b"PROXY \r\n", "protocol", "''"),
    _bad(
        "v1 IPv4 in TCP6",
        b"PROXY TCP6 192.0.2.7 ::1 1 2\r\n",
        "source address",
        "IPv6",
        "192.0.2.7",
    ),
    _bad(
        "v1 IPv6 in TCP4",
        b"PROXY TCP4 192.0.2.7 ::1 1 2\r\n",
        "destination address",
        "IPv4",
        "::1",
    ),
    _bad(
        "v1 zone id",
        b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
        "source address",
        "fe80::1%eth0",
    ),
    _bad(
        "v1 bracketed IPv6", b"PROXY TCP6 [::1] ::1 1 2\r\n", "source address", "[::1]"
    ),
    _bad("v1 two ::", b"PROXY TCP6 1::2::3 ::1 1 2\r\n", "source address", "1::2::3"),
    _bad(
        "v1 no CRLF within 107 bytes",
        b"PROXY UNKNOWN " + b"x" * 93,
        "no CRLF within the first 107 bytes",
    ),
    _bad(
        "v1 CRLF straddling byte 107",
        b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n",
        "no CRLF within the first 107 bytes",
    ),
    _bad(
        "v1 200-byte UNKNOWN line",
        b"PROXY UNKNOWN " + b"x" * 186 + b"\r\n",
        "no CRLF within the first 107 bytes",
    ),
    _bad(
        "not a header: HTTP",
        b"GET / HTTP/1.1\r\n\r\n",
        "not a PROXY protocol header",
        "'G",
    ),
    _bad(
        "not a header: TLS",
        b"\x16\x03\x01\x02\x00\x01\x00",
        "not a PROXY protocol header",
        "\\x16",
    ),
    _bad(
        "not a header: PROXY without space",
        b"PROXY\r\n\r\n",
        "not a PROXY protocol header",
    ),
    # -- v2 fixed part ------------------------------------------------------------
    _bad(
        "v2 signature",
        b"\r\n\r\n\x00\r\nQUIX\n" + b"\x21\x11\x00\x0c" + A4,
        "not a PROXY protocol header",
        "QUIX",
    ),
    _bad("v2 version 1", v2(A4, ver_cmd=0x11), "version", "got 1", "0x11"),
    _bad("v2 version 3", v2(A4, ver_cmd=0x31), "version", "got 3"),
    _bad("v2 version 0", v2(A4, ver_cmd=0x01), "version", "got 0"),
    _bad("v2 version 15", v2(A4, ver_cmd=0xF1), "version", "got 15"),
    _bad("v2 command 2", v2(A4, ver_cmd=0x22), "command", "got 2"),
    _bad("v2 command 15", v2(A4, ver_cmd=0x2F), "command", "got 15"),
    *(
        _bad(
            f"v2 fam 0x{fam:02X}",
            v2(A6 + bytes(200), fam=fam),
            "family",
            f"0x{fam:02X}",
        )
        for fam in (
            0x01,
            0x02,
            0x03,
            0x10,
            0x13,
            0x20,
            0x23,
            0x30,
            0x33,
            0x41,
            0x42,
            0xFF,
        )
    ),
    _bad(
        "v2 tcp4 block of 4 bytes",
        v2(A4[:4]),
        "INET address block needs 12 bytes",
        "has 4",
    ),
    _bad(
        "v2 tcp4 block of 11 bytes",
        v2(A4[:11]),
        "INET address block needs 12 bytes",
        "has 11",
    ),
    _bad(
        "v2 udp6 block of 12 bytes",
        v2(A4, fam=0x22),
        "INET6 address block needs 36 bytes",
        "has 12",
    ),
    _bad("v2 tcp6 block of 35 bytes", v2(A6[:35], fam=0x21), "INET6", "has 35"),
    _bad(
        "v2 unix block of 215 bytes",
        v2(bytes(215), fam=0x31),
        "UNIX address block needs 216 bytes",
        "has 215",
    ),
    # -- v2 TLVs ------------------------------------------------------------------
    _bad(
        "v2 TLV overruns the header",
        v2(A4 + b"\x01\x00\x05h2"),
        "TLV 0x01",
        "declares 5 bytes",
        "3 more",
    ),
    _bad(
        "v2 TLV length 0xFFFF",
        v2(A4 + b"\xf0\xff\xff"),
        "TLV 0xF0",
        "declares 65535 bytes",
    ),
    _bad(
        "v2 one stray byte",
        v2(A4 + tlv(1, b"h2") + b"\x01"),
        "1 stray byte",
        "offset 33",
    ),
    _bad("v2 two stray bytes", v2(A4 + b"\x01\x00"), "2 stray byte", "offset 28"),
    _bad(
        "v2 CRC32C of 3 bytes",
        v2(A4 + tlv(3, b"\x00\x00\x00")),
        "CRC32C",
        "exactly 4 bytes",
        "got 3",
    ),
    _bad(
        "v2 CRC32C of 5 bytes",
        v2(A4 + tlv(3, bytes(5))),
        "CRC32C",
        "exactly 4 bytes",
        "got 5",
    ),
    _bad("v2 CRC32C of 0 bytes", v2(A4 + tlv(3, b"")), "CRC32C", "got 0"),
    _bad(
        "v2 CRC32C wrong",
        v2(A4 + tlv(3, b"\x12\x34\x56\x78")),
        "CRC32C mismatch",
        "0x12345678",
        error=ChecksumError,
    ),
    _bad(
        "v2 CRC32C, flipped address byte",
        _flip(_CRC_FIRST, 17),
        "CRC32C mismatch",
        error=ChecksumError,
    ),
    _bad(
        "v2 CRC32C, flipped port byte",
        _flip(_CRC_LAST, 27),
        "CRC32C mismatch",
        error=ChecksumError,
    ),
    _bad(
        "v2 CRC32C, flipped CRC byte",
        _flip(_CRC_FIRST, 31),
        "CRC32C mismatch",
        error=ChecksumError,
    ),
    _bad(
        "v2 CRC32C, flipped byte after the CRC",
        _flip(_CRC_FIRST, len(_CRC_FIRST) - 1),
        "CRC32C mismatch",
        error=ChecksumError,
    ),
    _bad(
        "v2 CRC32C, flipped fam bit kept valid",
        _CRC_LAST[:13] + b"\x12" + _CRC_LAST[14:],
        "CRC32C mismatch",
        error=ChecksumError,
    ),
    _bad(
        "v2 two CRC32C TLVs",
        v2(A4 + tlv(3, bytes(4)) + tlv(3, bytes(4))),
        "more than one CRC32C",
    ),
    _bad(
        "v2 AUTHORITY of 256 bytes",
        v2(A4 + tlv(2, b"a" * 256)),
        "AUTHORITY",
        "at most 255 bytes",
        "got 256",
    ),
    _bad(
        "v2 AUTHORITY not UTF-8",
        v2(A4 + tlv(2, b"\xffbad")),
        "AUTHORITY",
        "UTF-8",
        "\\xffbad",
    ),
    _bad(
        "v2 UNIQUE_ID of 129 bytes",
        v2(A4 + tlv(5, b"u" * 129)),
        "UNIQUE_ID",
        "at most 128 bytes",
        "got 129",
    ),
    _bad(
        "v2 SSL of 4 bytes",
        v2(A4 + tlv(0x20, b"\x01\x00\x00\x00")),
        "SSL",
        "at least 5 bytes",
        "got 4",
    ),
    _bad(
        "v2 SSL sub-TLV overruns",
        v2(A4 + tlv(0x20, b"\x01" + bytes(4) + b"\x21\x00\x09TLS")),
        "SSL",
        "TLV 0x21",
        "declares 9 bytes",
    ),
    _bad(
        "v2 SSL stray byte",
        v2(A4 + tlv(0x20, b"\x01" + bytes(4) + b"\x21")),
        "SSL",
        "1 stray byte",
    ),
    _bad(
        "v2 NETNS not ASCII", v2(A4 + tlv(0x30, b"n\xe9t")), "NETNS", "ASCII", "\\xe9"
    ),
]

#: Every valid ``fam`` byte (section 2.2): the only ones a receiver accepts.
VALID_FAM_BYTES = frozenset({0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32})
