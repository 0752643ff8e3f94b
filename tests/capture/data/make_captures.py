"""Build the small committed captures of corner cases, and frames for tests.

Run ``python3 tests/capture/data/make_captures.py`` to rewrite the files next to
this script. Frames are built with ``struct`` (checksums left at zero, which no
reader checks); files are written with dpkt's pcap and pcapng writers and block
classes.

- ``multi_interface.pcapng``: two sections, the first little-endian with three
  interfaces (Ethernet in microseconds, Linux SLL2 in nanoseconds, raw IPv4),
  the second big-endian with one Linux SLL interface; an interface statistics
  block in between to be skipped.
- ``ipv6.pcap``: IPv6 over Ethernet with an 802.1Q tag and a hop-by-hop header,
  a v2 header split over three segments sent out of order with a retransmission,
  a TLS ClientHello without a header, and a UDP datagram with a v2 header.
- ``truncated_last.pcap``: three connections, then a last packet cut short.
"""

from __future__ import annotations

import io
import socket
import struct
import sys
from collections.abc import Iterable
from pathlib import Path

import dpkt

from realip.proxyproto import Command, Protocol, build_v1, build_v2

HERE = Path(__file__).parent
T0 = 1_790_000_000.0

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10

# -- frames ------------------------------------------------------------------------


def _pack(address: str) -> bytes:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.inet_pton(family, address)


def tcp_segment(
    sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b""
) -> bytes:
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
        + payload
    )


def udp_datagram(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ip_packet(
    src: str, dst: str, proto: int, body: bytes, *, hop_by_hop: bool = False
) -> bytes:
    if ":" not in src:
        header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0x4000, 64, proto, 0,
            _pack(src), _pack(dst),
        )  # fmt: skip
        return header + body
    if hop_by_hop:  # 8 bytes: next header, length 0, a PadN option
        body = bytes([proto, 0, 1, 4, 0, 0, 0, 0]) + body
        proto = 0
    header = struct.pack(
        "!IHBB16s16s", 0x60000000, len(body), proto, 64, _pack(src), _pack(dst)
    )
    return header + body


def link(kind: str, packet: bytes) -> bytes:
    """Frame an IP packet for a link type: eth, vlan, sll, sll2, raw, null."""
    ethertype = 0x86DD if packet[0] >> 4 == 6 else 0x0800
    macs = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"
    if kind == "eth":
        return macs + struct.pack("!H", ethertype) + packet
    if kind == "vlan":
        return macs + struct.pack("!HHH", 0x8100, 42, ethertype) + packet
    if kind == "sll":
        return struct.pack("!HHH8sH", 0, 772, 6, b"\x00" * 8, ethertype) + packet
    if kind == "sll2":
        return (
            struct.pack("!HHIHBB8s", ethertype, 0, 1, 772, 0, 6, b"\x00" * 8) + packet
        )
    if kind == "null":
        family = 2 if ethertype == 0x0800 else 30
        return struct.pack("<I", family) + packet
    return packet  # raw


class Connection:
    """Packets of one TCP connection, built step by step: handshake, client and
    server data, close. ``frames`` holds (timestamp, IP packet) pairs."""

    def __init__(
        self, client: tuple[str, int], server: tuple[str, int], start: float
    ) -> None:
        self.client, self.server = client, server
        self.time = start
        self.cseq, self.sseq = 1000, 9000
        self.packets: list[tuple[float, bytes]] = []

    def _add(
        self, from_client: bool, seq: int, ack: int, flags: int, data: bytes
    ) -> None:
        src, dst = (
            (self.client, self.server) if from_client else (self.server, self.client)
        )
        body = tcp_segment(src[1], dst[1], seq, ack, flags, data)
        self.packets.append((self.time, ip_packet(src[0], dst[0], 6, body)))
        self.time += 0.001

    def handshake(self, *, syn: bool = True) -> Connection:
        if syn:
            self._add(True, self.cseq, 0, SYN, b"")
        self.cseq += 1
        self._add(False, self.sseq, self.cseq, SYN | ACK, b"")
        self.sseq += 1
        self._add(True, self.cseq, self.sseq, ACK, b"")
        return self

    def send(self, data: bytes, *, at: int | None = None) -> Connection:
        """Client data; ``at`` sends it at that stream offset instead of the next
        one, without moving the next sequence number (reordering, retransmits)."""
        seq = self.cseq if at is None else self.first + at
        self._add(True, seq, self.sseq, PSH | ACK, data)
        if at is None:
            self.cseq += len(data)
        return self

    @property
    def first(self) -> int:
        return 1001

    def skip(self, size: int) -> Connection:
        """Move the client's sequence number on without sending (a later
        ``send(at=...)`` fills the gap)."""
        self.cseq += size
        return self

    def reply(self, data: bytes) -> Connection:
        self._add(False, self.sseq, self.cseq, PSH | ACK, data)
        self.sseq += len(data)
        return self

    def close(self) -> Connection:
        self._add(True, self.cseq, self.sseq, FIN | ACK, b"")
        self.cseq += 1
        self._add(False, self.sseq, self.cseq, FIN | ACK, b"")
        self.sseq += 1
        self._add(True, self.cseq, self.sseq, ACK, b"")
        return self

    def reset(self) -> Connection:
        self._add(True, self.cseq, self.sseq, RST | ACK, b"")
        return self


def client_hello(server_name: str) -> bytes:
    """A small TLS 1.2 ClientHello record with an SNI extension."""
    name = server_name.encode()
    entry = b"\x00" + len(name).to_bytes(2, "big") + name
    sni = (
        b"\x00\x00"
        + (len(entry) + 2).to_bytes(2, "big")
        + len(entry).to_bytes(2, "big")
    )
    exts = sni + entry
    body = b"\x03\x03" + b"\x22" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += len(exts).to_bytes(2, "big") + exts
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


def write_pcap(
    target: Path | io.BytesIO,
    frames: Iterable[tuple[float, bytes]],
    *,
    linktype: int = dpkt.pcap.DLT_EN10MB,
    nano: bool = False,
) -> None:
    """A pcap file of ``(timestamp, frame)`` written by dpkt."""
    stream = target if isinstance(target, io.BytesIO) else open(target, "wb")  # noqa: SIM115
    writer = dpkt.pcap.Writer(stream, linktype=linktype, nano=nano)
    for ts, frame in frames:
        writer.writepkt(frame, ts=ts)
    if not isinstance(target, io.BytesIO):
        stream.close()


# -- the committed files -----------------------------------------------------------


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: corner.example\r\n\r\n".encode()


def multi_interface(path: Path) -> None:
    pc = dpkt.pcapng
    eth = Connection(("10.1.0.5", 40001), ("10.9.0.1", 8080), T0)
    eth.handshake().send(
        build_v2(Command.PROXY, ("198.51.100.1", 1111), ("10.9.0.1", 8080))
        + _request("/eth")
    ).reply(b"HTTP/1.1 204 No Content\r\n\r\n").close()
    sll2 = Connection(("10.2.0.6", 40002), ("10.9.0.1", 8443), T0 + 0.0005)
    sll2.handshake().send(client_hello("sll2.example")).close()
    raw = Connection(("10.3.0.7", 40003), ("10.9.0.1", 8080), T0 + 0.0007)
    raw.handshake().send(
        build_v1(("198.51.100.3", 3333), ("10.9.0.1", 8080)) + _request("/raw")
    ).close()
    sll = Connection(("10.4.0.8", 40004), ("10.9.0.1", 22), T0 + 1)
    sll.handshake().send(b"SSH-2.0-OpenSSH_9.2p1\r\n").close()

    out = bytearray()
    tsresol = pc.PcapngOptionLE(code=pc.PCAPNG_OPT_IF_TSRESOL, data=b"\x09")
    idbs = [
        pc.InterfaceDescriptionBlockLE(linktype=1, snaplen=65535),
        pc.InterfaceDescriptionBlockLE(
            linktype=276, snaplen=65535, opts=[tsresol, pc.PcapngOptionLE()]
        ),
        pc.InterfaceDescriptionBlockLE(linktype=101, snaplen=65535),
    ]
    out += bytes(pc.SectionHeaderBlockLE())
    for idb in idbs:
        out += bytes(idb)
    merged = sorted(
        [(t, 0, link("eth", p)) for t, p in eth.packets]
        + [(t, 1, link("sll2", p)) for t, p in sll2.packets]
        + [(t, 2, link("raw", p)) for t, p in raw.packets]
    )
    for ts, iface, frame in merged:
        ticks = round(ts * (1e9 if iface == 1 else 1e6))
        out += bytes(
            pc.EnhancedPacketBlockLE(
                iface_id=iface, ts_high=ticks >> 32, ts_low=ticks & 0xFFFFFFFF,
                caplen=len(frame), pkt_len=len(frame), pkt_data=frame,
            )
        )  # fmt: skip
    # An interface statistics block (type 5): readers skip what they do not use.
    out += struct.pack("<IIIII", 5, 24, 0, 0, 0) + struct.pack("<I", 24)
    # A second section, big-endian, whose interface 0 is Linux cooked v1.
    out += bytes(pc.SectionHeaderBlock())
    out += bytes(pc.InterfaceDescriptionBlock(linktype=113, snaplen=65535))
    for ts, packet in sll.packets:
        frame = link("sll", packet)
        ticks = round(ts * 1e6)
        out += bytes(
            pc.EnhancedPacketBlock(
                iface_id=0, ts_high=ticks >> 32, ts_low=ticks & 0xFFFFFFFF,
                caplen=len(frame), pkt_len=len(frame), pkt_data=frame,
            )
        )  # fmt: skip
    path.write_bytes(bytes(out))


def ipv6(path: Path) -> None:
    header = build_v2(Command.PROXY, ("2001:db8:ffff::9", 6000), ("2001:db8::1", 443))
    data = header + _request("/v6")
    split = Connection(("2001:db8:1::10", 50001), ("2001:db8::1", 8080), T0)
    split.handshake()
    # Three segments: the middle one first, then the first twice, then the last.
    split.skip(40).send(data[20:40], at=20).send(data[:20], at=0).send(data[:20], at=0)
    split.send(data[40:]).close()
    hello = Connection(("2001:db8:2::20", 50002), ("2001:db8::1", 8443), T0 + 0.1)
    hello.handshake().send(client_hello("v6.example")).close()
    frames = [(t, link("vlan", p)) for t, p in split.packets]
    frames += [(t, link("eth", p)) for t, p in hello.packets]
    # Hop-by-hop options in front of the UDP header.
    dgram = build_v2(
        Command.PROXY, ("2001:db8:ffff::5", 53), ("2001:db8::53", 53),
        protocol=Protocol.DGRAM,
    ) + b"query"  # fmt: skip
    udp = udp_datagram(50003, 5353, dgram)
    packet = ip_packet("2001:db8:3::30", "2001:db8::53", 17, udp, hop_by_hop=True)
    frames.append((T0 + 0.2, link("eth", packet)))
    write_pcap(path, sorted(frames))


def truncated_last(path: Path) -> None:
    frames: list[tuple[float, bytes]] = []
    for index in range(3):
        conn = Connection(
            (f"10.0.{index}.2", 41000 + index), ("10.0.9.1", 80), T0 + index
        )
        payload = _request(f"/t{index}")
        if index == 1:
            payload = (
                build_v1((f"198.51.100.{index}", 5000), ("10.0.9.1", 80)) + payload
            )
        conn.handshake().send(payload).close()
        frames += [(t, link("eth", p)) for t, p in conn.packets]
    buffer = io.BytesIO()
    write_pcap(buffer, frames)
    data = buffer.getvalue()
    # Cut the last record (the final ACK) in the middle of its frame.
    path.write_bytes(data[: len(data) - 30])


def main() -> None:
    multi_interface(HERE / "multi_interface.pcapng")
    ipv6(HERE / "ipv6.pcap")
    truncated_last(HERE / "truncated_last.pcap")
    print(f"wrote 3 captures to {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
