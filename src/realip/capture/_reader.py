"""Stream the packets of a pcap or pcapng file, one at a time, in constant memory.

The format is told by the file's magic number. pcap files are read by
``dpkt.pcap.Reader``; pcapng files block by block with dpkt's block classes for the
section and interface headers, because ``dpkt.pcapng.Reader`` keeps only the first
interface, and a capture taken on several interfaces (``tcpdump -i any`` in a
pcapng, tshark ``-i eth0 -i lo``) has one link type and time resolution each
(pcapng spec, draft-ietf-opsawg-pcapng, sections 4.2 and 4.3).

Damage is reported two ways. A file that ends inside its last packet (the capture
was copied while tcpdump was still writing, or tcpdump was killed) loses only that
packet: :attr:`PacketSource.truncated` says so and reading stops cleanly. A
record that cannot be (a length larger than any capture allows, a pcapng block
whose trailing length differs from its leading one) raises :class:`CaptureError`
naming the packet number, after every packet before it has been handed out.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import dpkt

from realip.errors import RealipError

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
PCAP_MAGICS = frozenset(
    {
        b"\xa1\xb2\xc3\xd4",  # microseconds, big-endian
        b"\xd4\xc3\xb2\xa1",  # microseconds, little-endian
        b"\xa1\xb2\x3c\x4d",  # nanoseconds
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\xcd\x34",  # Kuznetzov's modified pcap
        b"\x34\xcd\xb2\xa1",
    }
)
#: No capture tool writes a packet record larger than this; a bigger length is
#: damage, and reading it would load the rest of the file at once.
MAX_RECORD = 16 * 1024 * 1024

_BT_IDB = 0x00000001
_BT_PB = 0x00000002
_BT_SPB = 0x00000003
_BT_EPB = 0x00000006
_BOM = 0x1A2B3C4D
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14


class CaptureError(RealipError, ValueError):
    """The capture file is not a pcap/pcapng file, or is damaged at ``packet``
    (1-based; 0 for the file header)."""

    def __init__(self, message: str, *, packet: int) -> None:
        super().__init__(message)
        self.packet = packet


class PacketSource:
    """The packets of one capture file as ``(timestamp, linktype, frame)``.

    ``count`` is the number of the last packet handed out (Wireshark's frame
    number). ``truncated`` is a warning when the file ended inside a packet.
    """

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        self.name = name
        self.count = 0
        self.truncated: str | None = None
        magic = stream.read(4)
        if magic == PCAPNG_MAGIC:
            self.format = "pcapng"
        elif magic in PCAP_MAGICS:
            self.format = "pcap"
        else:
            raise CaptureError(
                f"{name} is not a pcap or pcapng file: it starts with {magic!r}",
                packet=0,
            )
        self._magic = magic

    def __iter__(self) -> Iterator[tuple[float, int, bytes]]:
        if self.format == "pcap":
            return self._pcap()
        return self._pcapng()

    # -- pcap ----------------------------------------------------------------------

    def _pcap(self) -> Iterator[tuple[float, int, bytes]]:
        # dpkt reads and checks the file header (byte order, version, link type);
        # the records are then read here with one struct call each, since
        # dpkt.pcap.Reader builds an object per record header, which costs more
        # than the rest of reading, and reports a cut last record as a short one.
        try:
            reader = dpkt.pcap.Reader(_Replay(self._stream, self._magic))
        except (ValueError, dpkt.Error) as exc:
            raise CaptureError(
                f"{self.name}: damaged pcap file header ({exc})", packet=0
            ) from None
        linktype = reader.datalink() & 0xFFFF  # upper bits: FCS flags
        limit = min(max(reader.snaplen, 262144), MAX_RECORD)
        magic = self._magic
        endian = ">" if magic[0] == 0xA1 else "<"
        divisor = 1e9 if magic in (b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1") else 1e6
        # Kuznetzov's modified pcap adds ifindex, protocol and type to each record.
        head_size = 24 if magic in (b"\xa1\xb2\xcd\x34", b"\x34\xcd\xb2\xa1") else 16
        unpack = struct.Struct(endian + "IIII").unpack_from
        read = self._stream.read
        count = 0
        try:
            while True:
                head = read(head_size)
                if len(head) < head_size:
                    if head:
                        self.truncated = self._cut(
                            count + 1, "inside its record header"
                        )
                    return
                sec, frac, caplen, _length = unpack(head)
                if caplen > limit:
                    raise CaptureError(
                        f"{self.name}: packet {count + 1} claims {caplen} bytes, more "
                        f"than the capture's snap length allows: the file is damaged",
                        packet=count + 1,
                    )
                frame = read(caplen)
                count += 1
                if len(frame) < caplen:
                    self.truncated = self._cut(
                        count, f"after {len(frame)} of {caplen} bytes"
                    )
                    return
                yield sec + frac / divisor, linktype, frame
        finally:
            self.count = count

    # -- pcapng --------------------------------------------------------------------

    def _pcapng(self) -> Iterator[tuple[float, int, bytes]]:
        read = self._stream.read
        head = self._magic + read(8)
        endian = "<"
        interfaces: list[tuple[int, float, int]] = []  # linktype, divisor, offset
        while True:
            if len(head) < 12:
                if head:
                    self.truncated = self._cut(self.count + 1, "inside a block header")
                return
            if head[:4] == PCAPNG_MAGIC:
                endian = self._section_endian(head)
                interfaces = []
            btype, length = struct.unpack_from(endian + "II", head)
            if length < 12 or length % 4 or length > MAX_RECORD:
                raise CaptureError(
                    f"{self.name}: block after packet {self.count} has an impossible "
                    f"length {length}: the file is damaged",
                    packet=self.count + 1,
                )
            body = read(length - 12)
            is_packet = btype in (_BT_EPB, _BT_SPB, _BT_PB)
            if len(body) < length - 12:
                if is_packet:
                    self.truncated = self._cut(
                        self.count + 1, f"after {len(body) + 12} of {length} bytes"
                    )
                return
            block = head + body
            trailer = struct.unpack_from(endian + "I", block, length - 4)[0]
            if trailer != length:
                raise CaptureError(
                    f"{self.name}: block after packet {self.count} declares {length} "
                    f"bytes at its start and {trailer} at its end: the file is damaged",
                    packet=self.count + 1,
                )
            if is_packet:
                self.count += 1
                yield self._packet(btype, block, endian, interfaces)
            elif btype == _BT_IDB:
                interfaces.append(self._interface(block, endian))
            head = read(12)

    def _section_endian(self, head: bytes) -> str:
        (bom,) = struct.unpack_from("<I", head, 8)
        if bom == _BOM:
            return "<"
        if bom == struct.unpack("<I", struct.pack(">I", _BOM))[0]:
            return ">"
        raise CaptureError(
            f"{self.name}: section header after packet {self.count} has no valid "
            f"byte-order magic (0x{bom:08x}): the file is damaged",
            packet=self.count + 1,
        )

    def _interface(self, block: bytes, endian: str) -> tuple[int, float, int]:
        kind = (
            dpkt.pcapng.InterfaceDescriptionBlockLE
            if endian == "<"
            else dpkt.pcapng.InterfaceDescriptionBlock
        )
        try:
            idb = kind(block)
        except (dpkt.Error, struct.error) as exc:
            raise CaptureError(
                f"{self.name}: damaged interface description after packet "
                f"{self.count} ({exc})",
                packet=self.count + 1,
            ) from None
        divisor, offset = 1e6, 0
        for opt in idb.opts:
            if opt.code == _OPT_IF_TSRESOL and opt.data:
                value = opt.data[0]
                # MSB clear: a negative power of 10; set: a negative power of 2.
                base = 2 if value & 0x80 else 10
                divisor = float(base ** (value & 0x7F))
            elif opt.code == _OPT_IF_TSOFFSET and len(opt.data) == 8:
                offset = struct.unpack(endian + "q", opt.data)[0]
        return idb.linktype & 0xFFFF, divisor, offset

    def _packet(
        self,
        btype: int,
        block: bytes,
        endian: str,
        interfaces: list[tuple[int, float, int]],
    ) -> tuple[float, int, bytes]:
        end = len(block) - 4
        if btype == _BT_SPB:
            # A simple packet block has no timestamp and belongs to interface 0.
            iface, ts_high, ts_low = 0, 0, 0
            start = 12
            caplen = min(struct.unpack_from(endian + "I", block, 8)[0], end - start)
        elif btype == _BT_EPB:
            iface, ts_high, ts_low, caplen = struct.unpack_from(
                endian + "IIII", block, 8
            )
            start = 28
        else:  # obsolete packet block: 16-bit interface id and drop count
            iface, _drops, ts_high, ts_low, caplen = struct.unpack_from(
                endian + "HHIII", block, 8
            )
            start = 28
        if iface >= len(interfaces) or start + caplen > end:
            what = (
                f"refers to interface {iface} but {len(interfaces)} are described"
                if iface >= len(interfaces)
                else f"claims {caplen} bytes in a block of {len(block)}"
            )
            raise CaptureError(
                f"{self.name}: packet {self.count} {what}: the file is damaged",
                packet=self.count,
            )
        linktype, divisor, offset = interfaces[iface]
        ts = offset + ((ts_high << 32) | ts_low) / divisor
        return ts, linktype, block[start : start + caplen]

    def _cut(self, packet: int, where: str) -> str:
        return (
            f"{self.name}: the capture ends inside packet {packet} ({where}); "
            f"packets 1-{packet - 1} were read"
        )


class _Replay:
    """The stream with the magic already consumed put back in front, so that a
    pipe (which cannot seek) reads the same as a file."""

    __slots__ = ("_prefix", "_stream", "name")

    def __init__(self, stream: BinaryIO, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix
        self.name = getattr(stream, "name", "<capture>")

    def read(self, size: int) -> bytes:
        prefix, self._prefix = self._prefix, b""
        return prefix + self._stream.read(size - len(prefix))
