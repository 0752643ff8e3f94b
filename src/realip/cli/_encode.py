"""`realip encode`: build a PROXY protocol header from flags.

Writes the raw bytes to stdout (to pipe into ``nc`` or a file), or hexadecimal
with ``--hex``. Without ``--source``, v1 gives ``PROXY UNKNOWN`` and v2 an UNSPEC
block; ``--command LOCAL`` gives the v2 health-check header.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from realip.cli._exit import ExitStatus
from realip.diagnostics import parse_ip_endpoint, parse_tlv
from realip.errors import ConfigError
from realip.proxyproto import (
    Command,
    Family,
    Protocol,
    ProxyHeader,
    TLVType,
    encode,
)

#: TLV names accepted by --tlv, from the registry (section 2.2.1 of the spec).
TLV_NAMES = {member.name.lower(): int(member) for member in TLVType}


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "encode",
        help="build a PROXY protocol header (v1 or v2) from flags",
        description="Build a PROXY protocol header and write its raw bytes to "
        "stdout, or hexadecimal with --hex.",
        epilog="examples: realip encode --version 1 --source 192.0.2.7:51000 "
        "--destination 198.51.100.1:443 | realip encode --source [2001:db8::7]:1 "
        "--destination [2001:db8::1]:443 --tlv alpn=h2 --tlv authority=example.com "
        "--crc32c --hex",
    )
    parser.add_argument(
        "--version",
        dest="pp_version",
        type=int,
        choices=(1, 2),
        default=2,
        help="PROXY protocol version (default: 2)",
    )
    parser.add_argument(
        "--command",
        type=str.upper,
        choices=("PROXY", "LOCAL"),
        default="PROXY",
        help="v2 command; LOCAL is the health-check header (default: PROXY)",
    )
    parser.add_argument("--source", metavar="IP:PORT", help="client address")
    parser.add_argument("--destination", metavar="IP:PORT", help="server address")
    parser.add_argument(
        "--unix",
        nargs=2,
        metavar=("SRC", "DST"),
        help="v2 UNIX socket paths instead of --source/--destination "
        "(a leading @ names an abstract socket)",
    )
    parser.add_argument(
        "--protocol",
        type=str.lower,
        choices=("stream", "dgram"),
        default="stream",
        help="v2 transport (default: stream)",
    )
    parser.add_argument(
        "--tlv",
        action="append",
        default=[],
        metavar="TYPE=VALUE",
        help="add a v2 TLV, in order (repeatable). TYPE is a number (5, 0xEA) or a "
        f"name ({', '.join(TLV_NAMES)}); VALUE is text, or hex:... for bytes",
    )
    parser.add_argument(
        "--crc32c", action="store_true", help="add a CRC32C TLV, computed last (v2)"
    )
    parser.add_argument(
        "--pad",
        type=int,
        default=0,
        metavar="N",
        help="pad with a NOOP TLV to at least N bytes (v2)",
    )
    parser.add_argument(
        "--hex", action="store_true", help="write hexadecimal instead of raw bytes"
    )
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    wire = encode(header_from_args(args), crc32c=args.crc32c, pad_to=args.pad)
    if args.hex:
        print(wire.hex())
    else:
        sys.stdout.buffer.write(wire)
        sys.stdout.buffer.flush()
    return ExitStatus.OK


def header_from_args(args: argparse.Namespace) -> ProxyHeader:
    """The header the flags describe; raises ConfigError naming a bad flag."""
    version = args.pp_version
    command = Command[args.command]
    tlvs = tuple(parse_tlv(text) for text in args.tlv)
    if version == 1 and (
        command is Command.LOCAL or args.unix or args.protocol != "stream"
    ):
        raise ConfigError(
            "--version 1 carries only TCP over IPv4/IPv6 (no --command LOCAL, --unix "
            "or --protocol dgram)"
        )
    if args.unix:
        if args.source or args.destination:
            raise ConfigError("give --unix or --source/--destination, not both")
        source: Any = _unix_path(args.unix[0])
        destination: Any = _unix_path(args.unix[1])
        family = Family.UNIX
    elif args.source or args.destination:
        if not (args.source and args.destination):
            raise ConfigError("--source and --destination go together")
        source = parse_ip_endpoint(args.source, what="--source")
        destination = parse_ip_endpoint(args.destination, what="--destination")
        family = Family.INET6 if ":" in source[0] else Family.INET
    else:
        source = destination = None
        family = Family.UNSPEC
    if family is Family.UNSPEC:
        protocol = Protocol.UNSPEC
    else:
        protocol = Protocol.DGRAM if args.protocol == "dgram" else Protocol.STREAM
    if command is Command.LOCAL and source is not None:
        # The receiver discards a LOCAL block; sending zeros says so plainly.
        source = destination = None
    return ProxyHeader(version, command, family, protocol, source, destination, tlvs)


def _unix_path(text: str) -> str:
    # "@name" is the usual spelling of a Linux abstract socket (ss, systemd).
    return "\x00" + text[1:] if text.startswith("@") else text
