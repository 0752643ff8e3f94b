"""`realip decode`: read a PROXY protocol header and print it as one JSON object.

Input is raw bytes from a file, from stdin (``-``, the default) or ``--hex``. The
object is :func:`realip.proxyproto.header_to_json`'s: version, command, family,
protocol, source, destination, TLVs in received order, and the bytes the header
took. An invalid or incomplete header exits 1 with one line naming the problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, BinaryIO

from realip.cli._exit import ExitStatus
from realip.errors import ConfigError, IncompleteHeader
from realip.proxyproto import V2_MAX_SIZE, decode, header_to_json


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "decode",
        help="decode a PROXY protocol header (v1 or v2) and print it as JSON",
        description="Decode the PROXY protocol header at the start of FILE (or "
        "stdin, or --hex) and print it as one JSON object. Exits 1 with one line "
        "on stderr if the bytes are not a complete, valid header.",
    )
    parser.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE",
        help="file holding the raw bytes; - (the default) reads stdin",
    )
    parser.add_argument(
        "--hex",
        metavar="HEX",
        help="the bytes as hexadecimal (spaces allowed) instead of FILE",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="accepted for symmetry with other commands: the output is always JSON",
    )
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    data = _read_input(args)
    try:
        header = decode(data)
    except IncompleteHeader as exc:
        raise IncompleteHeader(
            f"incomplete PROXY header: the input ends after {len(data)} byte(s) ({exc})"
        ) from None
    print(json.dumps(header_to_json(header)))
    return ExitStatus.OK


def _read_input(args: argparse.Namespace) -> bytes:
    if args.hex is not None:
        if args.file != "-":
            raise ConfigError(f"give FILE or --hex, not both (FILE is {args.file!r})")
        try:
            return bytes.fromhex(args.hex)
        except ValueError:
            raise ConfigError(f"--hex is not hexadecimal: {args.hex[:60]!r}") from None
    if args.file == "-":
        return _read_header_bytes(sys.stdin.buffer)
    with open(args.file, "rb") as stream:
        return _read_header_bytes(stream)


def _read_header_bytes(stream: BinaryIO) -> bytes:
    # No header is longer than V2_MAX_SIZE: what follows it is never needed.
    chunks = []
    size = 0
    while size < V2_MAX_SIZE:
        chunk = stream.read(V2_MAX_SIZE - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
