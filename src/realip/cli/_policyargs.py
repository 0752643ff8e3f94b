"""Trust-policy flags shared by ``serve``, ``whoami``, ``lb`` and ``ingress``.

``--proxy-protocol ACTION=CIDR[,CIDR...]`` adds rules (repeatable, first match
wins); ``--proxy-protocol ACTION`` sets the default, which is ``require`` without
the flag. ``--forwarded-trust`` / ``--forwarded-hops`` configure the resolution of
``X-Forwarded-For``-style headers.
"""

from __future__ import annotations

import argparse
import logging

from realip.errors import ConfigError
from realip.policy import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_MAX_PENDING,
    SPEC_MIN_HEADER_TIMEOUT,
    ForwardedResolver,
    Policy,
)
from realip.policy.forwarded import HEADERS

logger = logging.getLogger("realip.policy")

_POLICY_HELP = (
    "PROXY protocol rule: ACTION=CIDR[,CIDR...] applies ACTION to those sources "
    "(repeatable; first match wins), a bare ACTION sets the default for every other "
    "source. Actions: require (a valid header must come first), optional (use a "
    "header if one comes: only for networks that cannot forge one, such as your "
    "load balancers and your own hosts), ignore (discard a header), reject (a "
    "header is a spoofing attempt: close), deny (close). CIDRs may also be any, "
    "loopback or private. Default: require for everyone, since the spec forbids "
    "guessing whether a header is present."
)


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the trust-policy and forwarded-header flags to ``parser``."""
    group = parser.add_argument_group("trust policy (PROXY protocol)")
    group.add_argument(
        "--proxy-protocol",
        action="append",
        default=[],
        metavar="ACTION[=CIDR,...]",
        help=_POLICY_HELP,
    )
    group.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="close connections whose header has not arrived after SECONDS "
        f"(default {DEFAULT_HEADER_TIMEOUT:g}; the spec asks for at least "
        f"{SPEC_MIN_HEADER_TIMEOUT:g} to cover a TCP retransmit)",
    )
    group.add_argument(
        "--max-header-size",
        type=int,
        default=DEFAULT_MAX_HEADER_SIZE,
        metavar="BYTES",
        help=f"refuse larger v2 headers (default {DEFAULT_MAX_HEADER_SIZE})",
    )
    group.add_argument(
        "--max-pending",
        type=int,
        default=DEFAULT_MAX_PENDING,
        metavar="N",
        help="refuse new connections while N are still waiting for their header "
        f"(default {DEFAULT_MAX_PENDING})",
    )
    fwd = parser.add_argument_group("forwarded headers (HTTP proxies in front)")
    fwd.add_argument(
        "--forwarded-trust",
        action="append",
        default=[],
        metavar="CIDR[,CIDR...]",
        help="believe forwarded headers only from these direct peers, and skip "
        "these addresses when walking the list from the right (repeatable)",
    )
    fwd.add_argument(
        "--forwarded-hops",
        type=int,
        default=None,
        metavar="N",
        help="alternative to a trusted list: N proxies sit in front, so the "
        "client is the N-th address from the right",
    )
    fwd.add_argument(
        "--forwarded-header",
        choices=HEADERS,
        default="x-forwarded-for",
        help="the one header your proxies write (default x-forwarded-for); the "
        "others are never read, so clients cannot inject them",
    )
    fwd.add_argument(
        "--forwarded-scheme",
        action="store_true",
        help="also take the scheme (X-Forwarded-Proto, or proto= of Forwarded)",
    )
    fwd.add_argument(
        "--forwarded-host",
        action="store_true",
        help="also take the Host (X-Forwarded-Host, or host= of Forwarded)",
    )


def policy_from_args(args: argparse.Namespace) -> Policy:
    """The :class:`Policy` the flags describe; :class:`ConfigError` names the flag
    and the bad value."""
    timeout = args.header_timeout
    if not timeout > 0:
        raise ConfigError(f"--header-timeout must be > 0, got {timeout:g}")
    if timeout < SPEC_MIN_HEADER_TIMEOUT:
        logger.warning(
            "--header-timeout %g is below the %g s the spec asks for (a TCP "
            "retransmit can delay a header that long)",
            timeout,
            SPEC_MIN_HEADER_TIMEOUT,
        )
    if args.max_header_size < 16:
        raise ConfigError(
            f"--max-header-size must be >= 16, got {args.max_header_size}"
        )
    if args.max_pending < 1:
        raise ConfigError(f"--max-pending must be >= 1, got {args.max_pending}")
    return Policy.from_specs(
        args.proxy_protocol,
        flag="--proxy-protocol",
        header_timeout=timeout,
        max_header_size=args.max_header_size,
        max_pending=args.max_pending,
    )


def forwarded_from_args(args: argparse.Namespace) -> ForwardedResolver | None:
    """The resolver the flags describe, or ``None`` when forwarded headers are
    not to be read (neither ``--forwarded-trust`` nor ``--forwarded-hops``)."""
    trusted = [
        item.strip()
        for value in args.forwarded_trust
        for item in value.split(",")
        if item.strip()
    ]
    if args.forwarded_trust and not trusted:
        raise ConfigError("--forwarded-trust: no network given")
    if not trusted and args.forwarded_hops is None:
        if args.forwarded_scheme or args.forwarded_host:
            raise ConfigError(
                "--forwarded-scheme/--forwarded-host need --forwarded-trust or "
                "--forwarded-hops"
            )
        return None
    return ForwardedResolver(
        trusted,
        hops=args.forwarded_hops,
        header=args.forwarded_header,
        use_scheme=args.forwarded_scheme,
        use_host=args.forwarded_host,
        flag="--forwarded-trust",
    )
