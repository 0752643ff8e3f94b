"""PROXY protocol v1 and v2, sans-IO: bytes in, headers out, and back.

Follows HAProxy's ``doc/proxy-protocol.txt`` (revision 2026/04/27) strictly. Uses
only the standard library; the ``crc32c`` package speeds up CRC32C when installed.

>>> from realip.proxyproto import decode, build_v1
>>> decode(build_v1(("192.0.2.7", 51000), ("198.51.100.1", 443))).source
('192.0.2.7', 51000)
"""

from realip.errors import ChecksumError, IncompleteHeader, ProxyProtocolError
from realip.proxyproto._constants import (
    V1_MAX_SIZE,
    V2_MAX_SIZE,
    V2_SIGNATURE,
    Command,
    Family,
    Protocol,
    TLVType,
)
from realip.proxyproto._crc32c import crc32c, crc32c_pure
from realip.proxyproto._decode import (
    HeaderReader,
    decode,
    decode_datagram,
    encode,
    encode_datagram,
)
from realip.proxyproto._json import header_to_json, tlv_to_json
from realip.proxyproto._sniff import Sniff, sniff
from realip.proxyproto._types import TLV, Address, ProxyHeader, SSLInfo
from realip.proxyproto._v1 import build_v1
from realip.proxyproto._v2 import build_v2

__all__ = [
    "TLV",
    "V1_MAX_SIZE",
    "V2_MAX_SIZE",
    "V2_SIGNATURE",
    "Address",
    "ChecksumError",
    "Command",
    "Family",
    "HeaderReader",
    "IncompleteHeader",
    "Protocol",
    "ProxyHeader",
    "ProxyProtocolError",
    "SSLInfo",
    "Sniff",
    "TLVType",
    "build_v1",
    "build_v2",
    "crc32c",
    "crc32c_pure",
    "decode",
    "decode_datagram",
    "encode",
    "encode_datagram",
    "header_to_json",
    "sniff",
    "tlv_to_json",
]
