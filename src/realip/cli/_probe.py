"""`realip probe`: does HOST:PORT speak the PROXY protocol, and can it be spoofed?

Five connections (no header, v1, v2, v2 LOCAL, v1 claiming 203.0.113.7), one
verdict: strict, optional, none or unclear. See :mod:`realip.diagnostics._probe`
for the rules. Exit status: 0 for a clear verdict, 3 when the endpoint cannot be
reached, 4 when the answers do not decide.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from realip.cli._exit import ExitStatus
from realip.diagnostics import (
    Mode,
    Verdict,
    parse_endpoint,
    parse_ip,
    probe,
    probe_to_json,
    render_probe,
)
from realip.errors import ConfigError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "probe",
        help="tell whether an endpoint requires, accepts or ignores PROXY headers",
        description="Make five connections (no header; v1; v2; v2 LOCAL; v1 "
        "claiming 203.0.113.7) and judge from the answers whether the endpoint "
        "requires the PROXY protocol (strict), accepts both (optional), does not "
        "speak it (none), or cannot be told (unclear). Exit 0 for a clear verdict, "
        "3 when unreachable, 4 when unclear.",
    )
    parser.add_argument("target", metavar="HOST:PORT", help="the endpoint to probe")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--http",
        action="store_const",
        dest="mode",
        const=Mode.HTTP,
        help="send an HTTP request after each header and read the status",
    )
    mode.add_argument(
        "--tls",
        action="store_const",
        dest="mode",
        const=Mode.TLS,
        help="send a TLS ClientHello after each header and watch the handshake",
    )
    parser.set_defaults(mode=Mode.TCP)
    parser.add_argument(
        "--path", default="/", help="the path requested with --http (default /)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="time limit of each attempt (default 3)",
    )
    parser.add_argument(
        "--total-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time limit of the whole probe (default: 5 x --timeout + 1)",
    )
    parser.add_argument(
        "--bind-source",
        metavar="IP",
        help="connect from this local address (e.g. 127.0.0.2)",
    )
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    target = parse_endpoint(args.target, what="target")
    _check_positive(args)
    bind = (
        None
        if args.bind_source is None
        else parse_ip(args.bind_source, what="--bind-source")
    )
    report = probe(
        target,
        mode=args.mode,
        timeout=args.timeout,
        total_timeout=args.total_timeout,
        bind=bind,
        path=args.path,
    )
    if args.json:
        print(json.dumps(probe_to_json(report), indent=2))
    else:
        sys.stdout.write(render_probe(report))
    if not report.reachable:
        return ExitStatus.UNREACHABLE
    if report.verdict is Verdict.UNCLEAR:
        return ExitStatus.UNCLEAR
    return ExitStatus.OK


def _check_positive(args: argparse.Namespace) -> None:
    for flag, value in (
        ("--timeout", args.timeout),
        ("--total-timeout", args.total_timeout),
    ):
        if value is not None and not value > 0:
            raise ConfigError(f"{flag} must be more than 0 seconds, got {value:g}")
