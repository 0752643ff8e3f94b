"""Protocol constants of the PROXY protocol, as data.

Numbers and names follow HAProxy's ``doc/proxy-protocol.txt``, revision 2026/04/27:
section 2.1 for the v1 text line, section 2.2 for the v2 binary block and its TLV
registry (2.2.1–2.2.8).
"""

from __future__ import annotations

import enum

#: The 12-byte v2 signature (section 2.2).
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: Fixed part of a v2 header: signature, ver_cmd, fam, len.
V2_FIXED_SIZE = 16
#: What a v1 line must start with (section 2.1).
V1_PREFIX = b"PROXY "
#: "If the CRLF sequence is not found in the first 107 characters, the receiver
#: should declare the line invalid" (section 2.1).
V1_MAX_SIZE = 107
#: The largest header the wire format can carry: 16 + 65535.
V2_MAX_SIZE = V2_FIXED_SIZE + 0xFFFF


class Command(enum.IntEnum):
    """The low nibble of the v2 ``ver_cmd`` byte. v1 lines are always PROXY."""

    LOCAL = 0x0
    PROXY = 0x1


class Family(enum.IntEnum):
    """The high nibble of the v2 ``fam`` byte."""

    UNSPEC = 0x0
    INET = 0x1
    INET6 = 0x2
    UNIX = 0x3


class Protocol(enum.IntEnum):
    """The low nibble of the v2 ``fam`` byte."""

    UNSPEC = 0x0
    STREAM = 0x1
    DGRAM = 0x2


#: Size of the address block each family needs (section 2.2): two addresses and,
#: for INET/INET6, two ports.
ADDRESS_BLOCK_SIZE = {
    Family.UNSPEC: 0,
    Family.INET: 12,
    Family.INET6: 36,
    Family.UNIX: 216,
}

#: The only ``fam`` bytes a receiver may accept; "other values are unspecified and
#: must not be emitted ... and must be rejected as invalid by receivers".
VALID_FAMILY_BYTES = frozenset({0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32})


class TLVType(enum.IntEnum):
    """Registered TLV types (section 2.2.1) and the vendor types realip decodes."""

    ALPN = 0x01
    AUTHORITY = 0x02
    CRC32C = 0x03
    NOOP = 0x04
    UNIQUE_ID = 0x05
    SSL = 0x20
    SSL_VERSION = 0x21
    SSL_CN = 0x22
    SSL_CIPHER = 0x23
    SSL_SIG_ALG = 0x24
    SSL_KEY_ALG = 0x25
    SSL_GROUP = 0x26
    SSL_SIG_SCHEME = 0x27
    SSL_CLIENT_CERT = 0x28
    NETNS = 0x30
    #: Google Cloud Private Service Connect: the 8-byte connection id.
    GCP = 0xE0
    #: AWS: sub-type 0x01 carries the VPC endpoint id (ASCII).
    AWS = 0xEA
    #: Azure: sub-type 0x01 carries the private endpoint LINKID (u32, little endian).
    AZURE = 0xEE


#: Largest values the spec allows for some TLVs (sections 2.2.2 and 2.2.5).
TLV_MAX_LENGTH = {TLVType.AUTHORITY: 255, TLVType.UNIQUE_ID: 128}

#: Bits of the SSL TLV's ``client`` field (section 2.2.5).
SSL_CLIENT_SSL = 0x01
SSL_CLIENT_CERT_CONN = 0x02
SSL_CLIENT_CERT_SESS = 0x04
