"""Read a packet capture and tell which connections open with a PROXY header.

:func:`scan` streams a pcap or pcapng file, follows each TCP connection's first
bytes (reassembled in sequence order) and each UDP datagram, and reports every
connection as a :class:`Connection` as soon as it ends, so memory stays bounded by
the connections open at one time, never by the size of the capture. The
:class:`Summary` groups them by client network and reads the likely cause of a
missing header (hairpin traffic, health checks, a sender speaking the wrong
version).

>>> from realip.capture import scan
>>> result = scan("ingress.pcap", emit=print)  # doctest: +SKIP
>>> result.summary.lines()  # doctest: +SKIP
['from 10.0.0.5: 120 of 120 carry v2']
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from realip.capture._flows import STREAM_CAP, FlowTable, Stats
from realip.capture._model import (
    Connection,
    NamedNetwork,
    Opening,
    Payload,
    ScanOptions,
    ServerFilter,
    format_time,
)
from realip.capture._opening import classify_datagram, classify_stream
from realip.capture._packet import SUPPORTED_LINKTYPES, UNSUPPORTED_LINK
from realip.capture._reader import CaptureError, PacketSource
from realip.capture._summary import Summary
from realip.capture._tls import ClientHello, parse_client_hello

__all__ = [
    "STREAM_CAP",
    "SUPPORTED_LINKTYPES",
    "CaptureError",
    "ClientHello",
    "Connection",
    "NamedNetwork",
    "Opening",
    "Payload",
    "ScanOptions",
    "ScanResult",
    "ServerFilter",
    "Stats",
    "Summary",
    "classify_datagram",
    "classify_stream",
    "format_time",
    "parse_client_hello",
    "scan",
]

#: Reads are large so that the per-packet reads of the reader hit memory, not the
#: kernel.
_READ_BUFFER = 1 << 20


@dataclass(slots=True)
class ScanResult:
    """What a scan found besides the connections it emitted.

    ``error`` is set when the file is damaged part-way: everything before the
    damaged packet was read and reported, nothing after. ``warnings`` are
    one-line notes for stderr (a truncated last packet, skipped link types).
    """

    format: str
    stats: Stats
    summary: Summary
    peak_open: int
    warnings: list[str] = field(default_factory=list)
    error: CaptureError | None = None


def scan(
    capture: str | os.PathLike[str] | BinaryIO,
    options: ScanOptions | None = None,
    emit: Callable[[Connection], None] | None = None,
) -> ScanResult:
    """Read the capture at ``capture`` (a path, or a binary stream such as a pipe
    from ``tcpdump -w -``); call ``emit`` with each connection kept by ``options``
    as it ends (connections still open at the end come last, in the order they
    started).

    Raises :class:`CaptureError` when the file is not a capture at all, and
    ``OSError`` when it cannot be read; damage part-way through is returned in
    ``ScanResult.error`` instead, so the connections before it are not lost.
    """
    if isinstance(capture, (str, os.PathLike)):
        with open(capture, "rb", buffering=_READ_BUFFER) as stream:
            return _scan(stream, os.fspath(capture), options, emit)
    return _scan(capture, str(getattr(capture, "name", "<stream>")), options, emit)


def _scan(
    stream: BinaryIO,
    name: str,
    options: ScanOptions | None,
    emit: Callable[[Connection], None] | None,
) -> ScanResult:
    options = options or ScanOptions()
    summary = Summary(
        options.networks,
        ipv4_prefix=options.ipv4_prefix,
        ipv6_prefix=options.ipv6_prefix,
    )

    def keep(connection: Connection) -> None:
        summary.add(connection)
        if emit is not None:
            emit(connection)

    table = FlowTable(options, keep)
    error: CaptureError | None = None
    source = PacketSource(stream, name)
    packet = table.packet
    try:
        for number, (ts, linktype, frame) in enumerate(source, 1):
            packet(number, ts, linktype, frame)
    except CaptureError as exc:
        if exc.packet == 0:  # the file header: nothing was read
            raise
        error = exc
    table.finish()
    result = ScanResult(source.format, table.stats, summary, table.peak_open)
    if source.truncated is not None:
        result.warnings.append(source.truncated)
    for reason, (count, first) in table.stats.skipped.items():
        if reason.startswith(UNSUPPORTED_LINK):
            result.warnings.append(
                f"{count} packet(s) skipped, first {first}: {reason} (supported: "
                "Ethernet, Linux cooked SLL and SLL2, raw IP, BSD loopback)"
            )
    result.error = error
    return result
