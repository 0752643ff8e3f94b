"""From a captured frame to a TCP segment or UDP datagram, with plain ``struct``.

This runs once per packet, so it reads only the fields a connection table needs
and allocates nothing but the addresses and the payload slice; a full dissector
(dpkt's layered objects) costs several times more per packet.

Link types (tcpdump.org/linktypes.html): Ethernet with 802.1Q/802.1ad tags, Linux
cooked v1 (SLL, ``tcpdump -i any`` before libpcap 1.10) and v2 (SLL2), raw IP, and
BSD loopback (NULL, LOOP). IPv4 (RFC 791) and IPv6 (RFC 8200) with its extension
headers; IP fragments are skipped and counted, since a connection's opening bytes
are not fragmented in practice. The IP length bounds the payload, so Ethernet
padding never leaks into a stream.
"""

from __future__ import annotations

import struct

TCP = 6
UDP = 17

# Link types as written in capture files.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
#: Some old files use the platform's DLT_RAW (12, or 14 on OpenBSD).
_RAW_TYPES = frozenset({LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6})
SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_LINUX_SLL2,
        *_RAW_TYPES,
    }
)

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = frozenset({0x8100, 0x88A8, 0x9100})
#: IPv6 extension headers walked over: hop-by-hop, routing, destination options.
_IPV6_SKIPPABLE = frozenset({0, 43, 60})
_IPV6_FRAGMENT = 44

# Reasons a packet is skipped, as counted in the scan's statistics.
NOT_IP = "not IP"
NOT_TCP_UDP = "not TCP or UDP"
FRAGMENT = "IP fragment"
MALFORMED = "malformed"
UNSUPPORTED_LINK = "unsupported link type"

_U16 = struct.Struct("!H").unpack_from
# ver/ihl, total length, flags/fragment offset, protocol, source, destination
_IPV4 = struct.Struct("!BxHxxHxBxx4s4s").unpack_from
_TCP = struct.Struct("!HHIIBB").unpack_from  # ports, seq, ack, offset, flags
_UDP = struct.Struct("!HHH").unpack_from

#: ``(protocol, src, sport, dst, dport, flags, seq, ack, payload, cut)``: addresses
#: are the packed 4 or 16 bytes; ``cut`` is true when the capture's snap length
#: kept fewer payload bytes than the packet carried.
Segment = tuple[int, bytes, int, bytes, int, int, int, int, bytes, bool]


def dissect(linktype: int, frame: bytes) -> Segment | str:
    """The TCP or UDP segment in ``frame``, or the reason it has none."""
    size = len(frame)
    if linktype == LINKTYPE_ETHERNET:
        if size < 14:
            return MALFORMED
        ethertype = _U16(frame, 12)[0]
        offset = 14
        while ethertype in _ETH_VLAN:
            if size < offset + 4:
                return MALFORMED
            ethertype = _U16(frame, offset + 2)[0]
            offset += 4
    elif linktype == LINKTYPE_LINUX_SLL2:
        if size < 20:
            return MALFORMED
        ethertype = _U16(frame, 0)[0]
        offset = 20
    elif linktype == LINKTYPE_LINUX_SLL:
        if size < 16:
            return MALFORMED
        ethertype = _U16(frame, 14)[0]
        offset = 16
    elif linktype in _RAW_TYPES or linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        # NULL and LOOP carry a 4-byte address family whose byte order and values
        # differ between systems; the IP version nibble says the same, reliably.
        offset = 0 if linktype in _RAW_TYPES else 4
        if size <= offset:
            return MALFORMED
        version = frame[offset] >> 4
        ethertype = _ETH_IPV4 if version == 4 else _ETH_IPV6 if version == 6 else 0
    else:
        return f"{UNSUPPORTED_LINK} {linktype}"
    if ethertype == _ETH_IPV4:
        return _ipv4(frame, offset)
    if ethertype == _ETH_IPV6:
        return _ipv6(frame, offset)
    return NOT_IP


def _ipv4(frame: bytes, offset: int) -> Segment | str:
    if len(frame) < offset + 20:
        return MALFORMED
    ver_ihl, total, frag, proto, src, dst = _IPV4(frame, offset)
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or ihl < 20 or len(frame) < offset + ihl:
        return MALFORMED
    if frag & 0x3FFF:  # more-fragments flag or a fragment offset
        return FRAGMENT
    # A total length of 0 is what TCP segmentation offload leaves in the header of
    # an oversized segment captured before the NIC splits it.
    if total == 0:
        end = len(frame)
    elif total < ihl:
        return MALFORMED
    else:
        end = offset + total
    return _transport(proto, src, dst, frame, offset + ihl, end)


def _ipv6(frame: bytes, offset: int) -> Segment | str:
    size = len(frame)
    if size < offset + 40 or frame[offset] >> 4 != 6:
        return MALFORMED
    length = _U16(frame, offset + 4)[0]
    proto = frame[offset + 6]
    src = frame[offset + 8 : offset + 24]
    dst = frame[offset + 24 : offset + 40]
    end = offset + 40 + length if length else size  # 0: a jumbogram (RFC 2675)
    pos = offset + 40
    while proto in _IPV6_SKIPPABLE:
        if size < pos + 2:
            return MALFORMED
        proto = frame[pos]
        pos += (frame[pos + 1] + 1) * 8
    if proto == _IPV6_FRAGMENT:
        return FRAGMENT
    if pos > end:
        return MALFORMED
    return _transport(proto, src, dst, frame, pos, end)


def _transport(
    proto: int, src: bytes, dst: bytes, frame: bytes, start: int, end: int
) -> Segment | str:
    captured = min(end, len(frame))
    if proto == TCP:
        if captured < start + 20:
            return MALFORMED
        sport, dport, seq, ack, data_offset, flags = _TCP(frame, start)
        payload_start = start + (data_offset >> 4) * 4
        if data_offset >> 4 < 5 or payload_start > end:
            return MALFORMED
        payload = frame[payload_start:captured]
        return (TCP, src, sport, dst, dport, flags, seq, ack, payload, captured < end)
    if proto == UDP:
        if captured < start + 8:
            return MALFORMED
        sport, dport, length = _UDP(frame, start)
        if length < 8 or start + length > end:
            # Length 0 is legal for a UDP jumbogram only; treat it as the IP's.
            if length != 0:
                return MALFORMED
            length = end - start
        stop = start + length
        payload = frame[start + 8 : min(stop, captured)]
        return (UDP, src, sport, dst, dport, 0, 0, 0, payload, captured < stop)
    return NOT_TCP_UDP
