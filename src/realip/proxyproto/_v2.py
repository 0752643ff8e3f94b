"""PROXY protocol v2, the binary block (spec section 2.2).

Layout: the 12-byte signature, ``ver_cmd`` (version nibble 2, command LOCAL or
PROXY), ``fam`` (family and transport, one of seven valid bytes), a big-endian u16
``len``, then ``len`` bytes: the address block of the family, then TLVs.

Theory of operation: the fixed 16 bytes are checked first, so an invalid header is
refused as soon as it can be known and an over-long one before its body arrives.
Then the body is walked once: addresses through ``inet_ntop``, TLVs split and
checked in place, and the CRC32C TLV (if any) verified over the bytes as received
with its own four bytes counted as zero, whatever its position among the TLVs
(section 2.2.3). A LOCAL header is accepted whatever its block holds: "the
receiver ... must use the real connection endpoints and discard the protocol block
including the family".
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable

from realip.errors import ChecksumError, IncompleteHeader, ProxyProtocolError
from realip.proxyproto._constants import (
    ADDRESS_BLOCK_SIZE,
    TLV_MAX_LENGTH,
    V2_FIXED_SIZE,
    V2_MAX_SIZE,
    V2_SIGNATURE,
    VALID_FAMILY_BYTES,
    Command,
    Family,
    Protocol,
    TLVType,
)
from realip.proxyproto._crc32c import crc32c as _crc32c
from realip.proxyproto._types import TLV, Address, ProxyHeader, split_tlvs
from realip.proxyproto._util import show

_FIXED = struct.Struct("!BBH")
_TLV_HEAD = struct.Struct("!BH")
_PORTS = struct.Struct("!HH")
_UNIX_PATH_SIZE = 108
_ZERO_CRC = b"\x00\x00\x00\x00"

# Enum members looked up by value once, not on every header.
_COMMANDS = (Command.LOCAL, Command.PROXY)
_FAMILIES = tuple(Family)
_PROTOCOLS = tuple(Protocol)


def parse_v2(data: bytes | bytearray, max_size: int = V2_MAX_SIZE) -> ProxyHeader:
    """Parse a v2 header at the start of ``data`` (whose first 12 bytes are the
    signature)."""
    size = len(data)
    if size < V2_FIXED_SIZE:
        raise IncompleteHeader(
            f"v2 header incomplete: {size} of {V2_FIXED_SIZE} fixed bytes",
            needed=V2_FIXED_SIZE - size,
        )
    ver_cmd, fam, length = _FIXED.unpack_from(data, 12)
    if ver_cmd >> 4 != 2:
        raise ProxyProtocolError(
            f"v2 version must be 2, got {ver_cmd >> 4} (ver_cmd byte 0x{ver_cmd:02X})",
            field="version",
        )
    command = ver_cmd & 0x0F
    if command > 1:
        raise ProxyProtocolError(
            f"v2 command must be LOCAL (0) or PROXY (1), got {command}",
            field="command",
        )
    if fam not in VALID_FAMILY_BYTES:
        raise ProxyProtocolError(
            f"v2 family/protocol byte 0x{fam:02X} is not one of the seven valid "
            "values (0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32)",
            field="family",
        )
    total = V2_FIXED_SIZE + length
    if total > max_size:
        raise ProxyProtocolError(
            f"v2 header of {total} bytes is larger than the {max_size}-byte limit",
            field="length",
        )
    if size < total:
        raise IncompleteHeader(
            f"v2 header incomplete: {size} of {total} bytes", needed=total - size
        )
    family = _FAMILIES[fam >> 4]
    protocol = _PROTOCOLS[fam & 0x0F]
    if command == 0:
        return ProxyHeader(2, Command.LOCAL, family, protocol, None, None, (), total)

    block = ADDRESS_BLOCK_SIZE[family]
    if length < block:
        raise ProxyProtocolError(
            f"v2 {family.name} address block needs {block} bytes, the header has "
            f"{length}",
            field="length",
        )
    source, destination = _addresses(data, family)
    tlvs = _tlvs(data, V2_FIXED_SIZE + block, total) if length > block else ()
    return ProxyHeader(
        2, Command.PROXY, family, protocol, source, destination, tlvs, total
    )


def _addresses(
    data: bytes | bytearray, family: Family
) -> tuple[Address | None, Address | None]:
    if family is Family.INET:
        sport, dport = _PORTS.unpack_from(data, 24)
        return (
            (socket.inet_ntop(socket.AF_INET, data[16:20]), sport),
            (socket.inet_ntop(socket.AF_INET, data[20:24]), dport),
        )
    if family is Family.INET6:
        sport, dport = _PORTS.unpack_from(data, 48)
        return (
            (socket.inet_ntop(socket.AF_INET6, data[16:32]), sport),
            (socket.inet_ntop(socket.AF_INET6, data[32:48]), dport),
        )
    if family is Family.UNIX:
        return _unix_path(data[16:124]), _unix_path(data[124:232])
    return None, None


def _unix_path(raw: bytes | bytearray) -> str:
    """A NUL-padded ``sun_path``. A leading NUL marks a Linux abstract socket,
    kept as a leading ``"\\x00"`` so that it survives a round trip."""
    if raw[:1] == b"\x00":
        return "\x00" + bytes(raw[1:]).rstrip(b"\x00").decode(
            "utf-8", "surrogateescape"
        )
    return bytes(raw).split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _tlvs(data: bytes | bytearray, start: int, end: int) -> tuple[TLV, ...]:
    tlvs = []
    crc_at = -1
    unpack = _TLV_HEAD.unpack_from
    pos = start
    while pos < end:
        if end - pos < 3:
            raise ProxyProtocolError(
                f"v2 header ends with {end - pos} stray byte(s) at offset {pos}, too "
                "short for a TLV",
                field="tlv",
            )
        tlv_type, length = unpack(data, pos)
        value_end = pos + 3 + length
        if value_end > end:
            raise ProxyProtocolError(
                f"TLV 0x{tlv_type:02X} at offset {pos} declares {length} bytes, "
                f"{value_end - end} more than the header holds",
                field=f"tlv 0x{tlv_type:02X}",
            )
        value = bytes(data[pos + 3 : value_end])
        if tlv_type in _CHECKED:
            check_tlv(tlv_type, value)
            if tlv_type == TLVType.CRC32C:
                if crc_at >= 0:
                    raise ProxyProtocolError(
                        "v2 header carries more than one CRC32C TLV", field="tlv 0x03"
                    )
                crc_at = pos + 3
        tlvs.append(TLV(tlv_type, value))
        pos = value_end
    if crc_at >= 0:
        _verify_crc(data, end, crc_at)
    return tuple(tlvs)


def _verify_crc(data: bytes | bytearray, end: int, at: int) -> None:
    # The checksum covers the whole header with the CRC value counted as zeros;
    # computed in three pieces so the header is never copied.
    view = memoryview(data)
    crc = _crc32c(view[:at], 0)
    crc = _crc32c(_ZERO_CRC, crc)
    crc = _crc32c(view[at + 4 : end], crc)
    view.release()
    received = int.from_bytes(data[at : at + 4], "big")
    if crc != received:
        raise ChecksumError(
            f"CRC32C mismatch: header says 0x{received:08X}, bytes give 0x{crc:08X}",
            field="tlv 0x03",
        )


def check_tlv(tlv_type: int, value: bytes) -> None:
    """Raise if a registered TLV's value breaks the spec's rules for its type."""
    size = len(value)
    limit = TLV_MAX_LENGTH.get(tlv_type)  # type: ignore[call-overload]
    if limit is not None and size > limit:
        raise ProxyProtocolError(
            f"{_name(tlv_type)} TLV may hold at most {limit} bytes, got {size}",
            field=f"tlv 0x{tlv_type:02X}",
        )
    if tlv_type == TLVType.CRC32C and size != 4:
        raise ProxyProtocolError(
            f"CRC32C TLV must hold exactly 4 bytes, got {size}", field="tlv 0x03"
        )
    if tlv_type == TLVType.AUTHORITY:
        _text(value, "utf-8", tlv_type)
    elif tlv_type == TLVType.NETNS:
        _text(value, "ascii", tlv_type)
    elif tlv_type == TLVType.SSL:
        if size < 5:
            raise ProxyProtocolError(
                f"SSL TLV needs at least 5 bytes (client, verify), got {size}",
                field="tlv 0x20",
            )
        subs = split_tlvs(value, 5, size)
        if isinstance(subs, str):
            raise ProxyProtocolError(f"SSL TLV: {subs}", field="tlv 0x20")


def _text(value: bytes, encoding: str, tlv_type: int) -> None:
    try:
        value.decode(encoding)
    except UnicodeDecodeError:
        raise ProxyProtocolError(
            f"{_name(tlv_type)} TLV must be {encoding.upper()} text, got {show(value)}",
            field=f"tlv 0x{tlv_type:02X}",
        ) from None


def _name(tlv_type: int) -> str:
    try:
        return TLVType(tlv_type).name
    except ValueError:
        return f"0x{tlv_type:02X}"


_CHECKED = frozenset(
    {TLVType.AUTHORITY, TLVType.CRC32C, TLVType.UNIQUE_ID, TLVType.SSL, TLVType.NETNS}
)


# -- building -----------------------------------------------------------------------


def build_v2(
    command: Command = Command.PROXY,
    source: Address | None = None,
    destination: Address | None = None,
    *,
    family: Family | None = None,
    protocol: Protocol | None = None,
    tlvs: Iterable[TLV | tuple[int, bytes]] = (),
    crc32c: bool = False,
    pad_to: int = 0,
) -> bytes:
    """Build a v2 header.

    ``family`` is inferred from ``source`` when not given (``None`` gives UNSPEC),
    and ``protocol`` defaults to STREAM (UNSPEC for the UNSPEC family).
    With ``crc32c`` the checksum is computed last, over everything including the
    padding: an existing CRC32C TLV in ``tlvs`` gets its value filled in where it
    stands, otherwise one is appended. ``pad_to`` adds a NOOP TLV so that the
    header is at least that many bytes long.
    """
    if family is None:
        family = _infer_family(source)
    if protocol is None:
        protocol = Protocol.UNSPEC if family is Family.UNSPEC else Protocol.STREAM
    if (
        command is Command.PROXY
        and family is not Family.UNSPEC
        and (source is None or destination is None)
    ):
        raise ProxyProtocolError(
            f"a PROXY header of family {family.name} needs a source and destination",
            field="source",
        )
    fam = (family << 4) | protocol
    if fam not in VALID_FAMILY_BYTES:
        raise ProxyProtocolError(
            f"family {family.name} with protocol {protocol.name} is not a valid "
            "combination",
            field="family",
        )
    body = bytearray(_pack_addresses(family, source, destination))
    crc_at = -1
    for tlv_type, value in tlvs:
        value = bytes(value)
        if not 0 <= tlv_type <= 0xFF or len(value) > 0xFFFF:
            raise ProxyProtocolError(
                f"TLV type must be 0-255 and value at most 65535 bytes, got type "
                f"{tlv_type} with {len(value)} bytes",
                field="tlv",
            )
        if tlv_type == TLVType.CRC32C and crc32c:
            if crc_at >= 0:
                raise ProxyProtocolError("more than one CRC32C TLV", field="tlv 0x03")
            value = _ZERO_CRC
            crc_at = V2_FIXED_SIZE + len(body) + 3
        elif tlv_type in _CHECKED:
            check_tlv(tlv_type, value)
        body += _TLV_HEAD.pack(tlv_type, len(value)) + value
    if crc32c and crc_at < 0:
        crc_at = V2_FIXED_SIZE + len(body) + 3
        body += _TLV_HEAD.pack(TLVType.CRC32C, 4) + _ZERO_CRC
    missing = pad_to - V2_FIXED_SIZE - len(body)
    if missing > 0:
        # A NOOP TLV takes at least 3 bytes; pad a little more rather than less.
        body += _TLV_HEAD.pack(TLVType.NOOP, max(missing - 3, 0)) + bytes(
            max(missing - 3, 0)
        )
    if len(body) > 0xFFFF:
        raise ProxyProtocolError(
            f"v2 header body of {len(body)} bytes exceeds 65535", field="length"
        )
    header = bytearray(V2_SIGNATURE)
    header += _FIXED.pack(0x20 | command, fam, len(body))
    header += body
    if crc_at >= 0:
        header[crc_at : crc_at + 4] = _crc32c(header, 0).to_bytes(4, "big")
    return bytes(header)


def _infer_family(source: Address | None) -> Family:
    if source is None:
        return Family.UNSPEC
    if isinstance(source, str):
        return Family.UNIX
    return Family.INET6 if ":" in source[0] else Family.INET


def _pack_addresses(
    family: Family, source: Address | None, destination: Address | None
) -> bytes:
    if family is Family.UNSPEC:
        return b""
    if source is None or destination is None:
        # Only LOCAL gets here; its block is discarded by receivers, so send zeros.
        return bytes(ADDRESS_BLOCK_SIZE[family])
    if family is Family.UNIX:
        if not (isinstance(source, str) and isinstance(destination, str)):
            raise ProxyProtocolError(
                f"UNIX addresses must be paths, got {source!r}", field="source"
            )
        return _pack_path(source, "source") + _pack_path(destination, "destination")
    if isinstance(source, str) or isinstance(destination, str):
        raise ProxyProtocolError(
            f"{family.name} addresses must be (host, port), got {source!r}",
            field="source",
        )
    af = socket.AF_INET if family is Family.INET else socket.AF_INET6
    src = _pack_ip(af, source[0], "source address")
    dst = _pack_ip(af, destination[0], "destination address")
    for port, what in (
        (source[1], "source port"),
        (destination[1], "destination port"),
    ):
        if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
            raise ProxyProtocolError(
                f"{what} must be 0-65535, got {port!r}", field=what
            )
    return src + dst + _PORTS.pack(source[1], destination[1])


def _pack_ip(af: int, host: str, what: str) -> bytes:
    try:
        return socket.inet_pton(af, host)
    except (OSError, ValueError):
        family = "IPv4" if af == socket.AF_INET else "IPv6"
        raise ProxyProtocolError(
            f"{what} must be an {family} address, got {host!r}", field=what
        ) from None


def _pack_path(path: str, what: str) -> bytes:
    raw = path.encode("utf-8", "surrogateescape")
    if len(raw) > _UNIX_PATH_SIZE:
        raise ProxyProtocolError(
            f"UNIX {what} path may be at most {_UNIX_PATH_SIZE} bytes, got {len(raw)}",
            field=what,
        )
    return raw.ljust(_UNIX_PATH_SIZE, b"\x00")
