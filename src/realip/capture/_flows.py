"""The connection table: TCP reassembly of each client's first bytes, UDP flows,
and the bookkeeping that keeps memory bounded by the connections still open.

Theory of operation. Each packet is dissected, filtered by port, and looked up in
one dict keyed by its 4-tuple (each flow is stored under both directions, so one
lookup serves either). A TCP flow is created by a SYN, a SYN-ACK or a segment with
data; a bare ACK, FIN or RST of an unknown connection is counted as stray, never
made into a connection. The client is the SYN sender (RFC 9293 section 3.5); when
the handshake was not captured it is guessed and the guess is named.

Only the client-to-server stream is reassembled, and only until its opening is
known: segments are placed by sequence number (RFC 9293 section 3.4), bytes
already seen (retransmissions, overlaps) are dropped, early segments wait in a
small dict until the gap before them fills. Once the opening is classified the
buffer is freed and later packets only update counters. A flow is reported and
forgotten after FIN from both sides, a RST, or ``idle`` seconds of capture time
without a packet; a short-lived tombstone keeps a late retransmission of a closed
connection from opening a bogus one.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from realip.capture._model import (
    BY_FIRST_SENDER,
    BY_PORT,
    BY_SYN,
    BY_SYN_ACK,
    EMPTY,
    HEADER,
    INVALID,
    NO_HEADER,
    Connection,
    Opening,
    Payload,
    ScanOptions,
)
from realip.capture._opening import classify_datagram, classify_stream
from realip.capture._packet import TCP, dissect
from realip.errors import ProxyProtocolError
from realip.proxyproto import Sniff, decode_datagram, sniff

_FIN = 0x01
_SYN = 0x02
_RST = 0x04
_ACK = 0x10
_SEQ_MOD = 1 << 32
_SEQ_HALF = 1 << 31

#: The most of one stream ever buffered: enough for a v2 header with TLVs and a
#: ClientHello in one TLS record; past it the opening is classified as it stands.
STREAM_CAP = 20 * 1024
#: How far ahead of the expected sequence number an early segment is kept.
REORDER_WINDOW = 64 * 1024
#: How long a closed connection's 4-tuple is remembered (capture seconds): a few
#: retransmission timeouts (RFC 6298 section 2), so the tombstones stay few.
TOMBSTONE_SECONDS = 10.0

Emit = Callable[[Connection], None]


class Stats:
    """Packet counts of one scan; ``skipped`` maps a reason to (count, first
    packet number)."""

    __slots__ = ("filtered", "packets", "skipped", "stray", "tcp", "udp")

    def __init__(self) -> None:
        self.packets = 0
        self.tcp = 0
        self.udp = 0
        self.filtered = 0
        self.stray = 0
        self.skipped: dict[str, list[int]] = {}

    def skip(self, reason: str, number: int) -> None:
        entry = self.skipped.get(reason)
        if entry is None:
            self.skipped[reason] = [1, number]
        else:
            entry[0] += 1

    def to_json(self) -> dict[str, object]:
        return {
            "read": self.packets,
            "tcp": self.tcp,
            "udp": self.udp,
            "filtered_out": self.filtered,
            "stray": self.stray,
            "skipped": {
                reason: {"count": count, "first_packet": first}
                for reason, (count, first) in self.skipped.items()
            },
        }


class _Flow:
    """State shared by TCP and UDP flows: who is who, when, and counters."""

    __slots__ = (
        "caddr",
        "client",
        "client_by",
        "client_bytes",
        "cport",
        "first_packet",
        "keys",
        "last_seen",
        "notes",
        "number",
        "opening",
        "packets",
        "server",
        "server_bytes",
        "start",
        "start_seen",
    )

    def __init__(
        self,
        number: int,
        packet: int,
        ts: float,
        client: tuple[bytes, int],
        server: tuple[bytes, int],
        client_by: str,
    ) -> None:
        self.number = number
        self.first_packet = packet
        self.start = ts
        self.last_seen = ts
        self.caddr, self.cport = client
        self.client = (_ntop(client[0]), client[1])
        self.server = (_ntop(server[0]), server[1])
        self.keys = (
            (client[0], client[1], server[0], server[1]),
            (server[0], server[1], client[0], client[1]),
        )
        self.client_by = client_by
        self.start_seen = client_by in (BY_SYN, BY_SYN_ACK)
        self.opening: Opening | None = None
        self.packets = 0
        self.client_bytes = 0
        self.server_bytes = 0
        self.notes: list[str] | None = None

    def note(self, text: str) -> None:
        if self.notes is None:
            self.notes = [text]
        elif text not in self.notes:
            self.notes.append(text)


class _TcpFlow(_Flow):
    """A TCP connection; reassembles the client's stream until it is classified."""

    __slots__ = (
        "buffer",
        "client_fin",
        "ends",
        "isn",
        "need",
        "next_seq",
        "pending",
        "server_fin",
    )

    def __init__(
        self,
        number: int,
        packet: int,
        ts: float,
        client: tuple[bytes, int],
        server: tuple[bytes, int],
        client_by: str,
    ) -> None:
        super().__init__(number, packet, ts, client, server, client_by)
        self.isn: int | None = None
        self.next_seq: int | None = None
        self.buffer: bytearray | None = bytearray()
        self.ends: list[int] = []  # buffer length after each in-order segment
        self.pending: dict[int, bytes] = {}
        self.need = 1
        self.client_fin = False
        self.server_fin = False

    def add(self, seq: int, payload: bytes, cut: bool) -> None:
        """Place one client segment in the stream by its sequence number."""
        buffer = self.buffer
        if buffer is None:
            return
        if self.next_seq is None:
            self.next_seq = seq
        delta = (seq - self.next_seq) % _SEQ_MOD
        if delta >= _SEQ_HALF:
            delta -= _SEQ_MOD
        if delta < 0:
            if -delta >= len(payload):
                self.note("retransmitted segments ignored")
                return
            self.note("overlapping segments trimmed")
            payload = payload[-delta:]
        elif delta > 0:
            if delta <= REORDER_WINDOW and len(self.pending) < 64:
                self.note("out-of-order segments reassembled")
                held = self.pending.get(seq)
                if held is None or len(held) < len(payload):
                    self.pending[seq] = payload
            return
        buffer += payload
        self.next_seq = (self.next_seq + len(payload)) % _SEQ_MOD
        self.ends.append(len(buffer))
        if self.pending:
            self._drain()
        if cut:
            # Bytes after a segment the snap length cut are not contiguous.
            self.note("payload cut by the capture's snap length")
            self.classify(final=True)
        elif len(buffer) >= self.need:
            self.classify(final=len(buffer) >= STREAM_CAP)

    def _drain(self) -> None:
        buffer = self.buffer
        pending = self.pending
        next_seq = self.next_seq
        if buffer is None or next_seq is None:
            return
        progress = True
        while progress and pending:
            progress = False
            for seq in list(pending):
                delta = (seq - next_seq) % _SEQ_MOD
                if delta >= _SEQ_HALF:
                    delta -= _SEQ_MOD
                if delta > 0:
                    continue
                payload = pending.pop(seq)
                if -delta < len(payload):
                    buffer += payload[-delta:]
                    next_seq = (next_seq + len(payload) + delta) % _SEQ_MOD
                    self.ends.append(len(buffer))
                progress = True
        self.next_seq = next_seq

    def classify(self, *, final: bool) -> None:
        buffer = self.buffer
        if buffer is None:
            return
        if final and self.pending:
            self.note(
                "bytes missing from the client stream: classified those before the gap"
            )
        result = classify_stream(buffer, final=final)
        if isinstance(result, int):
            self.need = result
            return
        self.opening = result
        header = result.header
        if header is not None:
            pieces = sum(1 for end in self.ends if end < header.length) + 1
            if pieces > 1:
                self.note(f"header split over {pieces} segments")
        self.buffer = None
        self.ends = []
        self.pending = {}


class _UdpFlow(_Flow):
    """A UDP flow: every client datagram is checked on its own."""

    __slots__ = ("datagrams", "invalid", "with_header")

    def __init__(
        self,
        number: int,
        packet: int,
        ts: float,
        client: tuple[bytes, int],
        server: tuple[bytes, int],
        client_by: str,
    ) -> None:
        super().__init__(number, packet, ts, client, server, client_by)
        self.start_seen = True  # datagrams stand alone: there is no start to miss
        self.datagrams = 0
        self.with_header = 0
        self.invalid = 0

    def add(self, payload: bytes, cut: bool) -> None:
        self.datagrams += 1
        if cut:
            self.note("payload cut by the capture's snap length")
        if self.opening is None:
            self.opening = opening = classify_datagram(payload)
            status = opening.status
        elif not payload or sniff(payload) is not Sniff.NOT_PROXY:
            status = self._status(payload)
        else:
            return
        if status == HEADER:
            self.with_header += 1
        elif status == INVALID:
            self.invalid += 1

    @staticmethod
    def _status(payload: bytes) -> str:
        if sniff(payload) in (Sniff.NOT_PROXY, Sniff.NEED_MORE):
            return NO_HEADER
        try:
            decode_datagram(payload)
        except ProxyProtocolError:
            return INVALID
        return HEADER


class FlowTable:
    """Feed it packets in capture order; it calls ``emit`` with each connection as
    the connection ends (or at :meth:`finish`), and keeps nothing of it after."""

    def __init__(self, options: ScanOptions, emit: Emit) -> None:
        self._options = options
        self._emit = emit
        self._ports = options.ports
        # TCP and UDP may share a 4-tuple (QUIC and TLS from one client port).
        self._tcp_flows: dict[tuple[bytes, int, bytes, int], _TcpFlow] = {}
        self._udp_flows: dict[tuple[bytes, int, bytes, int], _UdpFlow] = {}
        self._live: dict[int, _TcpFlow | _UdpFlow] = {}
        self._closed: dict[tuple[bytes, int, bytes, int], float] = {}
        self._server_ports: set[int] = set()
        self._numbers = 0
        self._now = float("-inf")
        self._next_sweep = float("-inf")
        self._sweep_every = max(1.0, min(options.idle / 4, 30.0))
        self.stats = Stats()
        self.peak_open = 0

    @property
    def open_connections(self) -> int:
        return len(self._live)

    def packet(self, number: int, ts: float, linktype: int, frame: bytes) -> None:
        """Account for one captured packet (the hot path)."""
        stats = self.stats
        stats.packets += 1
        segment = dissect(linktype, frame)
        if isinstance(segment, str):
            stats.skip(segment, number)
            return
        proto, src, sport, dst, dport, flags, seq, ack, payload, cut = segment
        ports = self._ports
        if ports and sport not in ports and dport not in ports:
            stats.filtered += 1
            return
        if ts > self._now:
            self._now = ts
            if ts >= self._next_sweep:
                self._sweep(ts)
        key = (src, sport, dst, dport)
        if proto == TCP:
            stats.tcp += 1
            self._tcp(number, ts, key, flags, seq, ack, payload, cut)
        else:
            stats.udp += 1
            self._udp(number, ts, key, payload, cut)

    def finish(self) -> None:
        """Report every connection still open, in the order they started."""
        for flow in sorted(self._live.values(), key=lambda f: f.number):
            self._close(flow, "capture-end")

    # -- TCP -----------------------------------------------------------------------

    def _tcp(
        self,
        number: int,
        ts: float,
        key: tuple[bytes, int, bytes, int],
        flags: int,
        seq: int,
        ack: int,
        payload: bytes,
        cut: bool,
    ) -> None:
        flow = self._tcp_flows.get(key)
        if (
            flow is not None
            and flags & (_SYN | _ACK) == _SYN
            and flow.isn not in (None, seq)
        ):
            self._close(flow, "reused")  # a new connection on the same ports
            flow = None
        if flow is None:
            flow = self._open_tcp(number, ts, key, flags, seq, ack, payload)
            if flow is None:
                return
        flow.packets += 1
        flow.last_seen = ts
        if key[0] == flow.caddr and key[1] == flow.cport:
            if flags & _SYN:
                seq = (seq + 1) % _SEQ_MOD  # data in a SYN (TCP Fast Open) follows it
            if payload:
                flow.client_bytes += len(payload)
                if flow.opening is None:
                    flow.add(seq, payload, cut)
            if flags & _FIN:
                flow.client_fin = True
        else:
            if flags & _SYN and flow.next_seq is None:
                flow.next_seq = ack
            if payload:
                if not flow.client_bytes and not flow.server_bytes:
                    flow.note("the server sent data first")
                flow.server_bytes += len(payload)
            if flags & _FIN:
                flow.server_fin = True
        if flags & _RST:
            self._close(flow, "rst")
        elif flow.client_fin and flow.server_fin:
            self._close(flow, "fin")

    def _open_tcp(
        self,
        number: int,
        ts: float,
        key: tuple[bytes, int, bytes, int],
        flags: int,
        seq: int,
        ack: int,
        payload: bytes,
    ) -> _TcpFlow | None:
        src, sport, dst, dport = key
        source, destination = (src, sport), (dst, dport)
        if flags & _SYN:
            if flags & _ACK:
                client, server, by = destination, source, BY_SYN_ACK
            else:
                client, server, by = source, destination, BY_SYN
            self._server_ports.add(server[1])
        elif key in self._closed or (dst, dport, src, sport) in self._closed:
            return None  # the last ACK, or a late retransmission, of a closed one
        elif payload:
            client, server, by = self._guess(source, destination)
        else:
            self.stats.stray += 1
            return None
        self._numbers += 1
        flow = _TcpFlow(self._numbers, number, ts, client, server, by)
        if by == BY_SYN:
            flow.isn = seq
            flow.next_seq = (seq + 1) % _SEQ_MOD
        elif by == BY_SYN_ACK:
            flow.next_seq = ack
        else:
            flow.note(
                "SYN not captured: the capture joined mid-stream or lost it, so the "
                "first bytes seen may not be the start of the stream"
            )
        self._register(flow)
        return flow

    def _guess(
        self, source: tuple[bytes, int], destination: tuple[bytes, int]
    ) -> tuple[tuple[bytes, int], tuple[bytes, int], str]:
        """Without a handshake: a side whose port is a service port (below 1024,
        or seen as a server in this capture) is the server; otherwise the sender
        of the first data is the client."""
        source_serves = self._serves(source[1])
        if source_serves and not self._serves(destination[1]):
            return destination, source, BY_PORT
        return source, destination, BY_FIRST_SENDER

    def _serves(self, port: int) -> bool:
        return port < 1024 or port in self._server_ports

    # -- UDP -----------------------------------------------------------------------

    def _udp(
        self,
        number: int,
        ts: float,
        key: tuple[bytes, int, bytes, int],
        payload: bytes,
        cut: bool,
    ) -> None:
        flow = self._udp_flows.get(key)
        if flow is None:
            src, sport, dst, dport = key
            client, server, by = self._guess((src, sport), (dst, dport))
            self._numbers += 1
            flow = _UdpFlow(self._numbers, number, ts, client, server, by)
            self._register(flow)
        flow.packets += 1
        flow.last_seen = ts
        if key[0] == flow.caddr and key[1] == flow.cport:
            flow.client_bytes += len(payload)
            flow.add(payload, cut)
        else:
            flow.server_bytes += len(payload)

    # -- bookkeeping ---------------------------------------------------------------

    def _register(self, flow: _TcpFlow | _UdpFlow) -> None:
        forward, backward = flow.keys
        if isinstance(flow, _TcpFlow):
            self._tcp_flows[forward] = self._tcp_flows[backward] = flow
        else:
            self._udp_flows[forward] = self._udp_flows[backward] = flow
        self._live[flow.number] = flow
        if len(self._live) > self.peak_open:
            self.peak_open = len(self._live)

    def _close(self, flow: _TcpFlow | _UdpFlow, end: str) -> None:
        forward, backward = flow.keys
        table: (
            dict[tuple[bytes, int, bytes, int], _TcpFlow]
            | dict[tuple[bytes, int, bytes, int], _UdpFlow]
        ) = self._tcp_flows if isinstance(flow, _TcpFlow) else self._udp_flows
        table.pop(forward, None)
        table.pop(backward, None)
        del self._live[flow.number]
        if end in ("fin", "rst"):
            self._closed[forward] = self._now
        connection = _report(flow, end)
        if self._options.keeps(connection):
            self._emit(connection)

    def _sweep(self, now: float) -> None:
        """Report connections idle for ``options.idle`` capture seconds and forget
        old tombstones; runs every few capture seconds, not per packet."""
        self._next_sweep = now + self._sweep_every
        cutoff = now - self._options.idle
        for flow in [f for f in self._live.values() if f.last_seen < cutoff]:
            self._close(flow, "idle")
        forget = now - TOMBSTONE_SECONDS
        if self._closed:
            self._closed = {k: t for k, t in self._closed.items() if t >= forget}


def _report(flow: _TcpFlow | _UdpFlow, end: str) -> Connection:
    if isinstance(flow, _TcpFlow):
        if flow.opening is None:
            flow.classify(final=True)
        datagrams = None
        transport = "tcp"
    else:
        datagrams = (flow.datagrams, flow.with_header, flow.invalid)
        if 0 < flow.with_header < flow.datagrams:
            flow.note(
                f"{flow.with_header} of {flow.datagrams} datagrams carry a header"
            )
        transport = "udp"
    opening = flow.opening or Opening(NO_HEADER, payload=Payload(EMPTY))
    if flow.client_by == BY_PORT:
        flow.note("client guessed from the port numbers")
    elif flow.client_by == BY_FIRST_SENDER and transport == "tcp":
        flow.note("client taken to be the side that sent data first")
    return Connection(
        number=flow.number,
        transport=transport,
        client=flow.client,
        server=flow.server,
        start=flow.start,
        first_packet=flow.first_packet,
        client_by=flow.client_by,
        start_seen=flow.start_seen,
        opening=opening,
        packets=flow.packets,
        client_bytes=flow.client_bytes,
        server_bytes=flow.server_bytes,
        end=end,
        notes=tuple(flow.notes or ()),
        datagrams=datagrams,
    )


def _ntop(packed: bytes) -> str:
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed)
