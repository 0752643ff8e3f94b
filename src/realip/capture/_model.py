"""What a capture scan produces: one :class:`Connection` per TCP connection or UDP
flow, each with the :class:`Opening` its client sent, plus the scan's options."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from realip.proxyproto import ProxyHeader, header_to_json

# -- what a stream opens with ------------------------------------------------------

#: ``Opening.status`` values.
HEADER = "header"
NO_HEADER = "none"
INVALID = "invalid"

#: ``Payload.kind`` values: what the client's own bytes start with.
EMPTY = "empty"
HTTP = "http"
HTTP2 = "http2"
TLS = "tls"
SSH = "ssh"
UNKNOWN = "unknown"

#: How the client side of a connection was decided (``Connection.client_by``).
BY_SYN = "syn"
BY_SYN_ACK = "syn-ack"
BY_FIRST_SENDER = "first-sender"
BY_PORT = "port-guess"


@dataclass(frozen=True, slots=True)
class Payload:
    """The start of the client's own data (after the header, if there was one).

    ``detail`` is one short printable line: the HTTP request line, the TLS SNI,
    the SSH banner or the first bytes escaped. ``fields`` holds what was parsed
    out of it (``sni``, ``alpn``, ``host``, ``tls_version``...).
    """

    kind: str
    detail: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, **self.fields}


@dataclass(frozen=True, slots=True)
class Opening:
    """Whether a stream (or a UDP flow's first datagram) opens with a PROXY header.

    ``error`` is the codec's own message when the header is invalid. ``payload``
    describes the client's data: what follows the header, or what came instead
    of one. It is ``None`` for an invalid header, whose end is unknown.
    """

    status: str
    header: ProxyHeader | None = None
    error: str | None = None
    payload: Payload | None = None

    @property
    def outcome(self) -> str:
        """A short class for summaries: ``v1``, ``v2``, ``local``, ``invalid`` or
        ``none:<payload kind>``."""
        if self.header is not None:
            return "local" if self.header.is_local else f"v{self.header.version}"
        if self.status == INVALID:
            return INVALID
        kind = self.payload.kind if self.payload is not None else UNKNOWN
        return f"none:{kind}"


@dataclass(slots=True)
class Connection:
    """One TCP connection or UDP flow as seen in the capture.

    ``client`` is the side that opened the connection (see ``client_by``), as the
    capture saw it: the peer address a server would see, not the address a header
    claims. ``start_seen`` is false when the capture joined a TCP connection after
    its SYN: its first captured bytes may then not be the start of the stream.
    """

    number: int
    transport: str
    client: tuple[str, int]
    server: tuple[str, int]
    start: float
    first_packet: int
    client_by: str
    start_seen: bool
    opening: Opening
    packets: int = 0
    client_bytes: int = 0
    server_bytes: int = 0
    end: str = "capture-end"
    notes: tuple[str, ...] = ()
    #: UDP only: datagrams from the client, with a valid header, with an invalid one.
    datagrams: tuple[int, int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        opening = self.opening
        out: dict[str, Any] = {
            "number": self.number,
            "transport": self.transport,
            "client": {"address": self.client[0], "port": self.client[1]},
            "server": {"address": self.server[0], "port": self.server[1]},
            "start": format_time(self.start),
            "start_epoch": self.start,
            "first_packet": self.first_packet,
            "client_by": self.client_by,
            "start_seen": self.start_seen,
            "status": opening.status,
            "header": None
            if opening.header is None
            else header_to_json(opening.header),
            "error": opening.error,
            "opens_with": None
            if opening.payload is None
            else opening.payload.to_json(),
            "packets": self.packets,
            "client_bytes": self.client_bytes,
            "server_bytes": self.server_bytes,
            "end": self.end,
            "notes": list(self.notes),
        }
        if self.datagrams is not None:
            total, with_header, invalid = self.datagrams
            out["datagrams"] = {
                "total": total,
                "with_header": with_header,
                "invalid": invalid,
            }
        return out


def format_time(epoch: float) -> str:
    """An epoch time as ISO 8601 in UTC with microseconds and a ``Z``."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- options -----------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Host = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class NamedNetwork:
    """A ``--network NAME=CIDR``: connections from ``network`` are summed up as one
    group called ``name``."""

    name: str
    network: Network


@dataclass(frozen=True, slots=True)
class ServerFilter:
    """A ``--server HOST[:PORT]``: keep connections to ``host`` (and ``port``)."""

    host: Host
    port: int | None = None

    def matches(self, address: str, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        return ipaddress.ip_address(address) == self.host


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What to keep and how to group it.

    ``ports`` keeps connections with either port in the set. ``since``/``until``
    bound the connection's start time (epoch seconds, ``until`` excluded). ``idle``
    is the capture time after which a silent connection is closed and reported.
    """

    ports: frozenset[int] = frozenset()
    servers: tuple[ServerFilter, ...] = ()
    since: float | None = None
    until: float | None = None
    networks: tuple[NamedNetwork, ...] = ()
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64
    idle: float = 300.0

    def keeps(self, connection: Connection) -> bool:
        """Whether ``connection`` passes the server and time filters (ports are
        filtered per packet, before any state is kept)."""
        start = connection.start
        if self.since is not None and start < self.since:
            return False
        if self.until is not None and start >= self.until:
            return False
        if self.servers:
            address, port = connection.server
            return any(spec.matches(address, port) for spec in self.servers)
        return True
