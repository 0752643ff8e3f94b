"""`realip capture FILE`: which connections in a packet capture carry a PROXY header.

Connections are printed as they end (the capture is streamed, never loaded), then
the summary by client network, the likely causes, and the packet counts. A capture
damaged part-way prints what was read before the damage, then fails with the
packet number; a capture whose last packet is cut only warns.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import sys
from typing import IO, Any

from realip.capture import (
    Connection,
    NamedNetwork,
    ScanOptions,
    ScanResult,
    ServerFilter,
    format_time,
    scan,
)
from realip.cli._exit import ExitStatus
from realip.errors import ConfigError
from realip.proxyproto import tlv_to_json

_KIND_LABELS = {
    "http": "HTTP",
    "http2": "HTTP/2",
    "tls": "TLS",
    "ssh": "SSH",
    "empty": "empty",
    "unknown": "bytes",
}
_ROW = "{:>5}  {:<27}  {:<4} {:<23} {:<23} {:<10} {}"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "capture",
        help="show which connections in a pcap/pcapng file carry a PROXY header",
        description="Read a pcap or pcapng file (tcpdump -w, tshark, kubectl sniff) "
        "and show, for each TCP connection and UDP flow, whether it opens with a "
        "PROXY header and what it opens with otherwise; then a summary by client "
        "network with the likely cause.",
    )
    parser.add_argument(
        "file",
        metavar="FILE",
        help="the pcap or pcapng file; - reads standard input (tcpdump -w - | ...)",
    )
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="PORT",
        help="keep connections with this client or server port (repeatable)",
    )
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="keep connections to this server address, e.g. 10.0.0.7:443 or "
        "[2001:db8::7]:443 (repeatable)",
    )
    parser.add_argument(
        "--since",
        metavar="TIME",
        help="keep connections that start at or after TIME: ISO 8601 (UTC unless "
        "it has an offset) or epoch seconds",
    )
    parser.add_argument(
        "--until", metavar="TIME", help="keep connections that start before TIME"
    )
    parser.add_argument(
        "--network",
        action="append",
        default=[],
        metavar="NAME=CIDR",
        help="group clients in CIDR under NAME in the summary (repeatable); "
        "others are grouped by /24 (IPv4) and /64 (IPv6)",
    )
    parser.add_argument(
        "--idle",
        default="300",
        metavar="SECONDS",
        help="report a connection after this much capture time without a packet "
        "(default 300)",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="print only the summary, not one line per connection",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    options = _options(args)
    out = sys.stdout
    printer: _Printer = (
        _JsonPrinter(out, args) if args.json else _TextPrinter(out, args)
    )
    source = sys.stdin.buffer if args.file == "-" else args.file
    result = scan(source, options, printer.connection)
    printer.finish(result)
    for warning in result.warnings:
        print(f"realip: warning: {warning}", file=sys.stderr)
    if result.error is not None:
        raise result.error
    return ExitStatus.OK


# -- options -----------------------------------------------------------------------


def _options(args: argparse.Namespace) -> ScanOptions:
    since = _time(args.since, "--since") if args.since is not None else None
    until = _time(args.until, "--until") if args.until is not None else None
    if since is not None and until is not None and until <= since:
        raise ConfigError(f"--until {args.until} is not after --since {args.since}")
    try:
        idle = float(args.idle)
    except ValueError:
        idle = -1.0
    if not idle > 0:
        raise ConfigError(
            f"--idle must be a number of seconds above 0, got {args.idle!r}"
        )
    return ScanOptions(
        ports=frozenset(_port(text, "--port") for text in args.port),
        servers=tuple(_server(text) for text in args.server),
        since=since,
        until=until,
        networks=tuple(_network(text) for text in args.network),
        idle=idle,
    )


def _port(text: str, flag: str) -> int:
    if not text.isdigit() or int(text) > 0xFFFF:
        raise ConfigError(f"{flag} must be a port 0-65535, got {text!r}")
    return int(text)


def _server(text: str) -> ServerFilter:
    host, port = text, None
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or (close + 1 < len(text) and text[close + 1] != ":"):
            raise ConfigError(
                f"--server must be HOST, HOST:PORT or [IPV6]:PORT, got {text!r}"
            )
        host = text[1:close]
        if close + 1 < len(text):
            port = _port(text[close + 2 :], "--server port")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, "--server port")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"--server host must be an IP address, got {host!r} (in {text!r})"
        ) from None
    return ServerFilter(address, port)


def _network(text: str) -> NamedNetwork:
    name, sep, cidr = text.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"--network must be NAME=CIDR, got {text!r}")
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise ConfigError(f"--network {name}: {cidr!r} is not a CIDR") from None
    return NamedNetwork(name.strip(), network)


def _time(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{flag} must be an ISO 8601 time or epoch seconds, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


# -- output ------------------------------------------------------------------------


class _Printer:
    def connection(self, connection: Connection) -> None:
        raise NotImplementedError

    def finish(self, result: ScanResult) -> None:
        raise NotImplementedError


class _TextPrinter(_Printer):
    """One line per connection as it ends, each note indented below it."""

    def __init__(self, out: IO[str], args: argparse.Namespace) -> None:
        self._out = out
        self._rows = not args.summary
        self._count = 0

    def connection(self, connection: Connection) -> None:
        self._count += 1
        if not self._rows:
            return
        write = self._out.write
        if self._count == 1:
            write(_ROW.format("#", "START", "", "CLIENT", "SERVER", "HEADER", "DETAIL"))
            write("\n")
        write(
            _ROW.format(
                connection.number,
                format_time(connection.start),
                connection.transport,
                _endpoint(connection.client),
                _endpoint(connection.server),
                _header_cell(connection),
                _detail(connection),
            )
        )
        write("\n")
        for note in connection.notes:
            write(f"{'':>7}note: {note}\n")

    def finish(self, result: ScanResult) -> None:
        write = self._out.write
        if self._rows and self._count:
            write("\n")
        if self._count == 0:
            write("no connections")
            write(" match the filters\n" if result.stats.filtered else "\n")
        else:
            write("Summary by client network:\n")
            for line in result.summary.lines():
                write(f"  {line}\n")
        readings = result.summary.readings()
        if readings:
            write("Likely cause:\n")
            for line in readings:
                write(f"  - {line}\n")
        write(_packets_line(result))
        write("\n")


class _JsonPrinter(_Printer):
    """One JSON document, written as it goes: the connections array is streamed."""

    def __init__(self, out: IO[str], args: argparse.Namespace) -> None:
        self._out = out
        self._rows = not args.summary
        self._file = args.file
        self._started = False
        self._first = True

    def _start(self) -> None:
        # Written with the first result, so that a file that is no capture at all
        # leaves stdout empty rather than holding half a document.
        if not self._started:
            self._started = True
            self._out.write("{" + f'"file": {json.dumps(self._file)}, "connections": [')

    def connection(self, connection: Connection) -> None:
        if not self._rows:
            return
        self._start()
        self._out.write("\n" if self._first else ",\n")
        self._first = False
        self._out.write(json.dumps(connection.to_json()))

    def finish(self, result: ScanResult) -> None:
        self._start()
        tail = {
            "format": result.format,
            "summary": result.summary.to_json(),
            "packets": result.stats.to_json(),
            "peak_open_connections": result.peak_open,
            "warnings": result.warnings,
            "error": None
            if result.error is None
            else {"message": str(result.error), "packet": result.error.packet},
        }
        self._out.write("\n], " + json.dumps(tail)[1:] + "\n")


def _endpoint(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _header_cell(connection: Connection) -> str:
    opening = connection.opening
    header = opening.header
    if header is not None:
        if header.version == 1 and header.source is None:
            cell = "v1 UNKNOWN"
        else:
            cell = f"v{header.version} {header.command.name}"
    elif opening.status == "invalid":
        cell = "INVALID"
    else:
        cell = "none"
    if connection.datagrams is not None and connection.datagrams[0] > 1:
        total, with_header, _ = connection.datagrams
        cell += f" {with_header}/{total}"
    return cell


def _detail(connection: Connection) -> str:
    opening = connection.opening
    if opening.error is not None:
        return opening.error
    parts = []
    header = opening.header
    if header is not None and header.source is not None:
        parts.append(f"{_address(header.source)} -> {_address(header.destination)}")
    if header is not None and header.tlvs:
        parts.append("tlvs " + ", ".join(_tlv(tlv_to_json(tlv)) for tlv in header.tlvs))
    payload = opening.payload
    if payload is not None:
        label = _KIND_LABELS.get(payload.kind, payload.kind)
        text = f"{label} {payload.detail}".rstrip()
        parts.append(f"then {text}" if header is not None else text)
    return "; ".join(parts)


def _address(address: tuple[str, int] | str | None) -> str:
    if address is None:
        return "-"
    if isinstance(address, str):
        return address
    return _endpoint(address)


def _tlv(tlv: dict[str, Any]) -> str:
    name = tlv.get("name")
    if name is None:
        return f"0x{tlv['type']:02X}({len(tlv['value']) // 2} bytes)"
    for key in ("authority", "alpn", "unique_id", "netns", "crc32c", "vpce_id"):
        if key in tlv:
            return f"{name}={tlv[key]}"
    return str(name)


def _packets_line(result: ScanResult) -> str:
    stats = result.stats
    text = f"Packets: {stats.packets} read ({stats.tcp} TCP, {stats.udp} UDP)"
    extras = [
        f"{count} {reason} (first #{first})"
        for reason, (count, first) in stats.skipped.items()
    ]
    if stats.filtered:
        extras.append(f"{stats.filtered} filtered out by --port")
    if stats.stray:
        extras.append(f"{stats.stray} stray control packets of unseen connections")
    if extras:
        text += "; skipped: " + ", ".join(extras)
    return text
