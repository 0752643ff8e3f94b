"""`realip whoami`: an echo server that answers each client with what it saw.

Per TCP connection (or per HTTP request with ``--http``) it reports the peer, the
PROXY header with its TLVs, the policy action, the resolved client and, for HTTP,
the request line and the forwarded headers. Text by default; JSON with ``--json``
or, for HTTP, ``Accept: application/json``. Once bound it writes
``listening on HOST:PORT`` to stderr (so ``--listen 127.0.0.1:0`` can be used).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from realip.cli._exit import ExitStatus
from realip.cli._policyargs import (
    add_policy_arguments,
    forwarded_from_args,
    policy_from_args,
)
from realip.diagnostics import (
    WhoamiService,
    format_endpoint,
    parse_endpoint,
    run_whoami,
)
from realip.policy import Policy


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "whoami",
        help="echo server: answer each client with the address, PROXY header and "
        "client the server saw",
        description="Listen on HOST:PORT and answer every TCP connection (or every "
        "HTTP request with --http) with what arrived: the peer, the PROXY header "
        "and its TLVs, the client the trust policy and forwarded headers resolve "
        "to. Put it behind the balancer under test.",
    )
    parser.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="address to listen on ([::1]:8080 for IPv6; port 0 picks a free one)",
    )
    parser.add_argument(
        "--http",
        action="store_true",
        help="speak HTTP/1.1: answer every request (keep-alive included)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="answer in JSON (with --http, also when the request asks for it "
        "with Accept: application/json)",
    )
    add_policy_arguments(parser)
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    host, port = parse_endpoint(args.listen, what="--listen")
    policy = policy_from_args(args)
    service = WhoamiService(
        http=args.http,
        json_output=args.json,
        forwarded=forwarded_from_args(args),
    )
    asyncio.run(_serve(host, port, policy, service))
    return ExitStatus.OK


async def _serve(host: str, port: int, policy: Policy, service: WhoamiService) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def ready(bound: list[tuple[str, int]]) -> None:
        for address in bound:
            print(f"listening on {format_endpoint(*address)}", file=sys.stderr)
        sys.stderr.flush()

    await run_whoami(host, port, policy=policy, service=service, ready=ready, stop=stop)
