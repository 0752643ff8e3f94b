"""PROXY protocol v2, the binary block (spec section 2.2).

Layout: the 12-byte signature, ``ver_cmd`` (version nibble 2, command LOCAL or
PROXY), ``fam`` (family and transport, one of seven valid bytes), a big-endian u16
``len``, then ``len`` bytes: the address block of the family, then TLVs.

Theory of operation: the fixed 16 bytes are checked first (``ver_cmd`` and ``fam``
with one lookup among the fourteen valid pairs), so an invalid header is
refused as soon as it can be known and an over-long one before its body arrives.
Then the body is walked once: addresses turned into text (behind the caches of
``_addr``), TLVs checked in place without building anything
(the header splits them into :class:`TLV` objects when ``tlvs`` is first read),
and the CRC32C TLV (if any) verified over the bytes as received with its own
four bytes counted as zero, whatever its position among the TLVs (section
2.2.3). A LOCAL header is accepted whatever its block holds: "the receiver ...
must use the real connection endpoints and discard the protocol block including
the family".
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from typing import NoReturn, TypeVar

from realip.errors import ChecksumError, IncompleteHeader, ProxyProtocolError
from realip.proxyproto import _addr
from realip.proxyproto._addr import v2_inet as _v2_inet
from realip.proxyproto._addr import v2_inet6 as _v2_inet6
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
from realip.proxyproto._sniff import not_a_header
from realip.proxyproto._types import TLV, Address, ProxyHeader, check_tlv_run
from realip.proxyproto._util import show

_FIXED = struct.Struct("!BBH")
#: The fixed 16 bytes: signature, ver_cmd and fam as one u16, len.
_FIXED_HEADER = struct.Struct("!12sHH")
_TLV_HEAD = struct.Struct("!BH")
_PORTS = struct.Struct("!HH")
#: An address block in one unpack: the two packed addresses, the two ports.
_INET_BLOCK = struct.Struct("!4s4sHH")
_INET6_BLOCK = struct.Struct("!16s16sHH")
#: The fixed 16 bytes and the address block together.
_INET_HEADER = struct.Struct("!12sHH4s4sHH")
_INET6_HEADER = struct.Struct("!12sHH16s16sHH")
_UNIX_PATH_SIZE = 108
_ZERO_CRC = b"\x00\x00\x00\x00"

_new_header = object.__new__
# Bound by assignment for the reason given in _v1.
_V2_INET = _addr.V2_INET
_V2_INET6 = _addr.V2_INET6


#: What the ``ver_cmd`` and ``fam`` bytes of a valid header mean: command,
#: family, protocol and the size of the address block. A plain tuple, not a
#: NamedTuple: CPython 3.11 unpacks only exact tuples on its fast path.
_Kind = tuple[Command, Family, Protocol, int]


def _kinds() -> dict[int, _Kind]:
    # Every valid (ver_cmd, fam) pair, so that the hot path checks both bytes
    # with one dict lookup (section 2.2: version 2 only, LOCAL or PROXY, one of
    # the seven fam bytes). Anything else goes to _refuse_fixed for a message.
    kinds = {}
    for command in Command:
        for fam in VALID_FAMILY_BYTES:
            family = Family(fam >> 4)
            kinds[((0x20 | command) << 8) | fam] = (
                command,
                family,
                Protocol(fam & 0x0F),
                ADDRESS_BLOCK_SIZE[family],
            )
    return kinds


_KINDS = _kinds()
_LOCAL = Command.LOCAL
_PROXY = Command.PROXY
_INET = Family.INET
_INET6 = Family.INET6
_UNIX = Family.UNIX


def parse_v2(data: bytes, max_size: int = V2_MAX_SIZE) -> ProxyHeader:
    """Parse a v2 header at the start of ``data`` (whose first byte is CR)."""
    # An INET or INET6 header (the fam byte says which) is read with its address
    # block in one unpack; any other, or one too short for that, has its fixed
    # 16 bytes read first and its block later.
    src = None
    try:
        fam = data[13]
        if fam == 0x11 or fam == 0x12:
            signature, ver_cmd_fam, length, src, dst, sport, dport = (
                _INET_HEADER.unpack_from(data)
            )
        elif fam == 0x21 or fam == 0x22:
            signature, ver_cmd_fam, length, src, dst, sport, dport = (
                _INET6_HEADER.unpack_from(data)
            )
        else:
            signature, ver_cmd_fam, length = _FIXED_HEADER.unpack_from(data)
    except (IndexError, struct.error):
        signature, ver_cmd_fam, length = _fixed_or_incomplete(data)
    if signature != V2_SIGNATURE:
        not_a_header(data)
    kind = _KINDS.get(ver_cmd_fam)
    if kind is None:
        _refuse_fixed(ver_cmd_fam >> 8, ver_cmd_fam & 0xFF)
    total = V2_FIXED_SIZE + length
    if total > max_size:
        raise ProxyProtocolError(
            f"v2 header of {total} bytes is larger than the {max_size}-byte limit",
            field="length",
        )
    size = len(data)
    if size < total:
        raise IncompleteHeader(
            f"v2 header incomplete: {size} of {total} bytes", needed=total - size
        )
    command, family, protocol, block = kind
    if command is _LOCAL:
        # "discard the protocol block including the family": the block and any
        # TLVs are skipped unread, whatever they hold (section 2.2).
        return ProxyHeader(2, _LOCAL, family, protocol, None, None, (), total)

    if length < block:
        raise ProxyProtocolError(
            f"v2 {family.name} address block needs {block} bytes, the header has "
            f"{length}",
            field="length",
        )
    # Filled slot by slot: cheaper than a call to the dataclass __init__.
    header = _new_header(ProxyHeader)
    if family is _INET:
        if src is None:
            src, dst, sport, dport = _INET_BLOCK.unpack_from(data, 16)
        header.source = (_V2_INET.get(src) or _v2_inet(src), sport)
        header.destination = (_V2_INET.get(dst) or _v2_inet(dst), dport)
    elif family is _INET6:
        if src is None:
            src, dst, sport, dport = _INET6_BLOCK.unpack_from(data, 16)
        header.source = (_V2_INET6.get(src) or _v2_inet6(src), sport)
        header.destination = (_V2_INET6.get(dst) or _v2_inet6(dst), dport)
    elif family is _UNIX:
        header.source = _unix_path(data[16:124])
        header.destination = _unix_path(data[124:232])
    else:
        header.source = header.destination = None
    if length > block:
        start = V2_FIXED_SIZE + block
        _check_tlvs(data, start, total)
        # Split into TLV objects on first read of header.tlvs (see ProxyHeader).
        # mypy checks assignments against the dataclass fields only and misses
        # the slot inherited from _PendingTLVs.
        header._tlv_bytes = data[start:total]  # type: ignore[misc]
    else:
        header.tlvs = ()
    header.version = 2
    header.command = _PROXY
    header.family = family
    header.protocol = protocol
    header.length = total
    return header


def _fixed_or_incomplete(data: bytes) -> tuple[bytes, int, int]:
    """The fixed 16 bytes of a header too short for the one-unpack read of its
    address block; raises if even they are not all there."""
    try:
        return _FIXED_HEADER.unpack_from(data)
    except struct.error:
        if data[:12] != V2_SIGNATURE:
            not_a_header(data)
        size = len(data)
        raise IncompleteHeader(
            f"v2 header incomplete: {size} of {V2_FIXED_SIZE} fixed bytes",
            needed=V2_FIXED_SIZE - size,
        ) from None


def _refuse_fixed(ver_cmd: int, fam: int) -> NoReturn:
    if ver_cmd >> 4 != 2:
        raise ProxyProtocolError(
            f"v2 version must be 2, got {ver_cmd >> 4} (ver_cmd byte 0x{ver_cmd:02X})",
            field="version",
        )
    if ver_cmd & 0x0F > 1:
        raise ProxyProtocolError(
            f"v2 command must be LOCAL (0) or PROXY (1), got {ver_cmd & 0x0F}",
            field="command",
        )
    raise ProxyProtocolError(
        f"v2 family/protocol byte 0x{fam:02X} is not one of the seven valid "
        "values (0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32)",
        field="family",
    )


def _unix_path(raw: bytes) -> str:
    """A NUL-padded ``sun_path``. A leading NUL marks a Linux abstract socket,
    kept as a leading ``"\\x00"`` so that it survives a round trip; an all-zero
    field (an unnamed socket) is the empty string."""
    if raw[:1] == b"\x00":
        name = raw[1:].rstrip(b"\x00")
        if not name:
            return ""
        return "\x00" + name.decode("utf-8", "surrogateescape")
    return raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _check_tlvs(data: bytes, start: int, end: int) -> None:
    """Check that ``data[start:end]`` is a run of whole TLVs that obey the
    registered types' rules (section 2.2.1), and verify a CRC32C TLV if any.

    One walk that builds nothing; the first fault sends the run to
    :func:`_refuse_tlvs`, which walks it again to name the fault. (Products of
    ints are cheaper than shifts here: CPython 3.11 specialises ``*`` and ``+``.)
    """
    head = _TLV_HEAD.unpack_from
    crc_at = -1
    last = end - 3  # a TLV starting after this has no room for its 3-byte head
    pos = start
    while pos <= last:
        tlv_type, length = head(data, pos)
        pos += 3 + length
        if pos > end:
            break
        if tlv_type <= _UNIQUE_ID:  # registered types 0x00-0x05
            if tlv_type == _UNIQUE_ID:
                if length > _UNIQUE_ID_MAX:
                    break
            elif tlv_type == _AUTHORITY:
                value = data[pos - length : pos]
                if length > _AUTHORITY_MAX or not value.isascii():
                    check_tlv(tlv_type, value)  # UTF-8 beyond ASCII is fine
            elif tlv_type == _CRC32C:
                if length != 4 or crc_at >= 0:
                    break
                crc_at = pos - 4
        elif tlv_type == _SSL:
            # client (1 byte) and verify (4), then whole sub-TLVs (2.2.5).
            sub = pos - length + 5
            sub_last = pos - 3
            while sub <= sub_last:
                sub += 3 + data[sub + 1] * 256 + data[sub + 2]
            if sub != pos:
                break
        elif tlv_type == _NETNS and not data[pos - length : pos].isascii():
            break
    else:
        if pos == end:
            if crc_at >= 0:
                _verify_crc(data, end, crc_at)
            return
    _refuse_tlvs(data, start, end)


def _refuse_tlvs(data: bytes, pos: int, end: int) -> NoReturn:
    """Raise for the first fault of a TLV run that :func:`_check_tlvs` refused."""
    unpack = _TLV_HEAD.unpack_from
    crc_seen = False
    while pos < end:
        value_at = pos + 3
        if value_at > end:
            raise ProxyProtocolError(
                f"v2 header ends with {end - pos} stray byte(s) at offset {pos}, too "
                "short for a TLV",
                field="tlv",
            )
        tlv_type, length = unpack(data, pos)
        pos = value_at + length
        if pos > end:
            raise ProxyProtocolError(
                f"TLV 0x{tlv_type:02X} at offset {value_at - 3} declares {length} "
                f"bytes, {pos - end} more than the header holds",
                field=f"tlv 0x{tlv_type:02X}",
            )
        if tlv_type == _CRC32C:
            if crc_seen:
                raise ProxyProtocolError(
                    "v2 header carries more than one CRC32C TLV", field="tlv 0x03"
                )
            crc_seen = True
        if tlv_type in _CHECKED:
            check_tlv(tlv_type, data[value_at:pos])
    # Not reached: every fault _check_tlvs breaks on has its message above.
    raise ProxyProtocolError(
        f"v2 TLVs refused: {show(data[pos:end])}", field="tlv"
    )  # pragma: no cover


def _verify_crc(data: bytes, end: int, at: int) -> None:
    # Section 2.2.3: the checksum covers the whole header as received, with the
    # CRC value counted as zeros, wherever the TLV stands. Headers are small, so
    # one copy with the field zeroed beats three calls over pieces.
    crc = _crc32c(data[:at] + _ZERO_CRC + data[at + 4 : end], 0)
    received = int.from_bytes(data[at : at + 4], "big")
    if crc != received:
        raise ChecksumError(
            f"CRC32C mismatch: header says 0x{received:08X}, bytes give 0x{crc:08X}",
            field="tlv 0x03",
        )


# Plain ints: comparing with an int is cheaper than looking up an enum member.
_AUTHORITY = int(TLVType.AUTHORITY)
_CRC32C = int(TLVType.CRC32C)
_UNIQUE_ID = int(TLVType.UNIQUE_ID)
_SSL = int(TLVType.SSL)
_NETNS = int(TLVType.NETNS)
_AUTHORITY_MAX = TLV_MAX_LENGTH[TLVType.AUTHORITY]
_UNIQUE_ID_MAX = TLV_MAX_LENGTH[TLVType.UNIQUE_ID]
#: The types whose values the decoder checks; the others are opaque bytes.
_CHECKED = frozenset({_AUTHORITY, _CRC32C, _UNIQUE_ID, _SSL, _NETNS})


def check_tlv(tlv_type: int, value: bytes) -> None:
    """Raise if a registered TLV's value breaks the spec's rules for its type."""
    size = len(value)
    if tlv_type == _AUTHORITY:  # UTF-8 host name, at most 255 bytes (2.2.2)
        if size > _AUTHORITY_MAX:
            _too_long(tlv_type, _AUTHORITY_MAX, size)
        _text(value, "utf-8", tlv_type)
    elif tlv_type == _UNIQUE_ID:  # opaque, at most 128 bytes (2.2.4)
        if size > _UNIQUE_ID_MAX:
            _too_long(tlv_type, _UNIQUE_ID_MAX, size)
    elif tlv_type == _CRC32C:  # exactly 32 bits (2.2.3)
        if size != 4:
            raise ProxyProtocolError(
                f"CRC32C TLV must hold exactly 4 bytes, got {size}", field="tlv 0x03"
            )
    elif tlv_type == _SSL:  # client u8, verify u32, then sub-TLVs (2.2.5)
        if size < 5:
            raise ProxyProtocolError(
                f"SSL TLV needs at least 5 bytes (client, verify), got {size}",
                field="tlv 0x20",
            )
        problem = check_tlv_run(value, 5, size)
        if problem is not None:
            raise ProxyProtocolError(f"SSL TLV: {problem}", field="tlv 0x20")
    elif tlv_type == _NETNS:  # US-ASCII namespace name (2.2.6)
        _text(value, "ascii", tlv_type)


def _too_long(tlv_type: int, limit: int, size: int) -> NoReturn:
    raise ProxyProtocolError(
        f"{_name(tlv_type)} TLV may hold at most {limit} bytes, got {size}",
        field=f"tlv 0x{tlv_type:02X}",
    )


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
    command = _member(Command, command, "command")
    family = _infer_family(source) if family is None else family
    family = _member(Family, family, "family")
    if protocol is None:
        protocol = Protocol.UNSPEC if family is Family.UNSPEC else Protocol.STREAM
    protocol = _member(Protocol, protocol, "protocol")
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


_E = TypeVar("_E", Command, Family, Protocol)


def _member(kind: type[_E], value: int, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise ProxyProtocolError(
            f"{what} must be one of {', '.join(m.name for m in kind)}, got {value!r}",
            field=what,
        ) from None


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
