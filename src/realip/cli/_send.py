"""`realip send`: the ``nc`` experiment as one command.

Connects, sends a PROXY header (v1 by default, built from this connection's own
addresses unless told otherwise) and a payload in one write, and prints the raw
response on stdout; ``--hexdump`` shows the bytes sent and received instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from realip.cli._exit import ExitStatus
from realip.diagnostics import (
    HeaderSpec,
    HeaderVersion,
    HttpFraming,
    Outcome,
    describe_exchange,
    hexdump,
    http_request,
    parse_endpoint,
    parse_ip,
    parse_ip_endpoint,
    parse_tlv,
    send,
    unescape,
)
from realip.errors import ConfigError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "send",
        help="send one connection with a hand-made PROXY header and print the answer",
        description="Connect to HOST:PORT, send a PROXY header and a payload at "
        "once, print the raw response. The header's source and destination default "
        "to this connection's own addresses, as a health check would send them.",
    )
    parser.add_argument("target", metavar="HOST:PORT", help="where to connect")
    parser.add_argument(
        "--proxy",
        choices=[version.value for version in HeaderVersion],
        default=None,
        help="header version (default v1; v2 when --local, --tlv or --crc32c is given)",
    )
    parser.add_argument(
        "--source", metavar="IP:PORT", help="the client address the header claims"
    )
    parser.add_argument(
        "--destination", metavar="IP:PORT", help="the destination the header names"
    )
    parser.add_argument(
        "--tlv",
        action="append",
        default=[],
        metavar="TYPE=VALUE",
        help="add a v2 TLV (repeatable): TYPE a name (alpn, authority, unique_id, "
        "netns, aws, azure, gcp...) or 0-255; VALUE text, or hex:0A0B...",
    )
    parser.add_argument(
        "--local", action="store_true", help="a v2 LOCAL header (a health check)"
    )
    parser.add_argument(
        "--crc32c", action="store_true", help="add a CRC32C TLV to the v2 header"
    )
    payload = parser.add_mutually_exclusive_group()
    payload.add_argument(
        "--http", metavar="PATH", help="send GET PATH with a Host header"
    )
    payload.add_argument(
        "--data",
        metavar="TEXT",
        help=r"send TEXT (\r \n \t \0 \\ \xNN understood); default: stdin when "
        "it is not a terminal, else nothing",
    )
    parser.add_argument(
        "--hexdump",
        action="store_true",
        help="show the bytes sent and received as hex dumps",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="give up connecting, or stop reading after SECONDS without a byte "
        "(default 5)",
    )
    parser.add_argument(
        "--bind-source",
        metavar="IP",
        help="connect from this local address (e.g. 127.0.0.2)",
    )
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    host, port = parse_endpoint(args.target, what="target")
    if not args.timeout > 0:
        raise ConfigError(
            f"--timeout must be more than 0 seconds, got {args.timeout:g}"
        )
    spec = _header_spec(args)
    bind = (
        None
        if args.bind_source is None
        else parse_ip(args.bind_source, what="--bind-source")
    )
    payload: bytes | HttpFraming
    if args.http is not None:
        payload = HttpFraming(http_request(host, port, args.http))
    elif args.data is not None:
        payload = unescape(args.data)
    elif not sys.stdin.isatty():
        payload = sys.stdin.buffer.read()
    else:
        payload = b""

    result = send((host, port), spec, payload, timeout=args.timeout, bind=bind)
    print(describe_exchange(result), file=sys.stderr)
    if result.outcome is Outcome.UNREACHABLE:
        return ExitStatus.UNREACHABLE
    out = sys.stdout.buffer
    if args.hexdump:
        out.write(f"> sent {len(result.sent)} bytes\n".encode())
        out.write(hexdump(result.sent).encode())
        out.write(f"< received {len(result.received)} bytes\n".encode())
        out.write(hexdump(result.received).encode())
    else:
        out.write(result.received)
    out.flush()
    return ExitStatus.OK


def _header_spec(args: argparse.Namespace) -> HeaderSpec:
    needs_v2 = args.local or args.tlv or args.crc32c
    version = HeaderVersion(args.proxy or ("v2" if needs_v2 else "v1"))
    if version is not HeaderVersion.V2 and needs_v2:
        flags = [
            flag
            for flag, used in (
                ("--local", args.local),
                ("--tlv", args.tlv),
                ("--crc32c", args.crc32c),
            )
            if used
        ]
        raise ConfigError(
            f"{', '.join(flags)} need --proxy v2, got --proxy {version.value}"
        )
    if version is HeaderVersion.NONE and (args.source or args.destination):
        raise ConfigError("--source and --destination need --proxy v1 or v2")
    return HeaderSpec(
        version=version,
        source=_claimed(args.source, "--source"),
        destination=_claimed(args.destination, "--destination"),
        tlvs=tuple(parse_tlv(text) for text in args.tlv),
        local=args.local,
        crc32c=args.crc32c,
    )


def _claimed(text: str | None, flag: str) -> tuple[str, int] | None:
    return None if text is None else parse_ip_endpoint(text, what=flag)
