"""Rate-limit flags shared by ``realip serve`` and the ingress.

``--limit PATH=N/UNIT[,burst=B][,name=NAME][,cost=C][,methods=GET|POST][,host=H]``
declares one limit; the flag repeats, and every limit whose rule matches a request
must pass. ``--redis URL`` moves the state from process memory to Redis/Valkey so
that several replicas share one budget per client.
"""

from __future__ import annotations

import argparse
from typing import Any

ASGIApp = Any  # an ASGI 3 callable; typed loosely so the CLI needs no ASGI stubs


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the rate-limit flags to ``parser``.

    ``--limit PATH=N/UNIT[,burst=B]`` (repeatable; UNIT second|minute|hour|day; a
    PATH ending in ``*`` is a prefix), ``--redis URL``, ``--limit-fail
    open|closed``, ``--limit-ipv6-prefix``, ``--limit-exempt CIDR``,
    ``--limit-max-clients`` and ``--ratelimit-headers``.
    """
    group = parser.add_argument_group("rate limits (per real client address)")
    group.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="PATH=N/UNIT[,burst=B]",
        help="allow N requests per UNIT (second, minute, hour, day) plus B at once "
        "from each client on PATH; PATH ending in * is a prefix, ~REGEX a pattern; "
        "more options: ,name=NAME ,cost=C ,methods=GET|POST ,host=HOST; repeatable, "
        "and every matching limit must pass",
    )
    group.add_argument(
        "--redis",
        metavar="URL",
        default=None,
        help="share limits through Redis/Valkey: redis://, rediss://, unix://, "
        "valkey://, redis+cluster://host:port[,host:port] (default: process memory)",
    )
    group.add_argument(
        "--limit-fail",
        choices=("open", "closed"),
        default="open",
        help="when Redis is unreachable: let requests through (open, default) or "
        "answer 503 (closed)",
    )
    group.add_argument(
        "--limit-ipv6-prefix",
        type=int,
        default=64,
        metavar="BITS",
        help="count IPv6 clients per /BITS network (default 64); IPv4 is exact",
    )
    group.add_argument(
        "--limit-exempt",
        action="append",
        default=[],
        metavar="CIDR",
        help="never limit clients in this network (repeatable)",
    )
    group.add_argument(
        "--limit-max-clients",
        type=int,
        default=None,
        metavar="N",
        help="memory store: clients tracked per limit before the oldest are forgotten",
    )
    group.add_argument(
        "--ratelimit-headers",
        action="store_true",
        help="also send the RateLimit fields on allowed responses (a 429 always has "
        "them)",
    )


def wrap_with_limits(app: ASGIApp, args: argparse.Namespace) -> ASGIApp:
    """Return ``app`` wrapped in the rate-limit middleware, or ``app`` itself when
    no ``--limit`` was given. Bad values raise :class:`realip.errors.ConfigError`
    naming the flag and the value."""
    specs: list[str] = list(getattr(args, "limit", None) or [])
    if not specs:
        return app

    from realip.limiter import (
        KeyPolicy,
        RateLimitMiddleware,
        open_store,
        parse_limit_flags,
    )

    rules = parse_limit_flags(specs, flag="--limit")
    keys = KeyPolicy(
        ipv6_prefix=args.limit_ipv6_prefix,
        exempt=args.limit_exempt,
        flag_names=("--limit-ipv6-prefix", "--limit-exempt"),
    )
    store = open_store(
        args.redis or "memory://",
        fail_open=args.limit_fail == "open",
        max_clients=args.limit_max_clients,
        flag="--redis",
    )
    return RateLimitMiddleware(
        app,
        rules=rules,
        store=store,
        keys=keys,
        headers_on_allowed=args.ratelimit_headers,
        close_store=True,
    )
