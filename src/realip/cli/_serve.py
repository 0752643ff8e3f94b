"""``realip serve MODULE:APP``: an ASGI application on uvicorn, behind the policy.

The trust policy runs before HTTP parsing (a refused connection is closed without
an HTTP answer); forwarded headers and rate limits wrap the application, in that
order from the outside, so limits count the resolved client. The bound address is
printed on stderr at startup (``--bind 127.0.0.1:0`` picks a free port).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from typing import Any

from realip.cli._exit import ExitStatus
from realip.cli._limitargs import add_limit_arguments, wrap_with_limits
from realip.cli._policyargs import (
    add_policy_arguments,
    forwarded_from_args,
    policy_from_args,
)
from realip.errors import ConfigError

_DESCRIPTION = """\
Run an ASGI application on uvicorn with the PROXY protocol trust policy applied
to every connection before HTTP parsing. scope["client"] is the real client; the
connection's PROXY header (TLVs included) is scope["state"]["realip.connection"]
(a realip.servers.ConnectionInfo).

examples:
  realip serve app:app --bind 0.0.0.0:8000 --proxy-protocol require=10.0.0.0/8 \\
      --proxy-protocol reject
  realip serve app:app --proxy-protocol optional=loopback \\
      --forwarded-trust 10.0.0.0/8
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run an ASGI app on uvicorn behind the PROXY protocol policy",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("app", metavar="MODULE:APP", help="the ASGI application")
    parser.add_argument(
        "--bind",
        default="127.0.0.1:8000",
        metavar="HOST:PORT",
        help="listen address (default 127.0.0.1:8000; [::]:8000 for IPv6; port 0 "
        "picks a free port, printed on stderr)",
    )
    parser.add_argument(
        "--factory", action="store_true", help="MODULE:APP is a factory to call"
    )
    parser.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="look for MODULE in DIR (default: the current directory)",
    )
    parser.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (uvicorn.access)"
    )
    parser.add_argument(
        "--timeout-keep-alive", type=float, default=5.0, metavar="SECONDS"
    )
    parser.add_argument(
        "--timeout-graceful-shutdown",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, let requests finish this long, then cancel them",
    )
    add_policy_arguments(parser)
    add_limit_arguments(parser)
    parser.set_defaults(handler=_handler)


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT`` as a (host, port) pair."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 0xFFFF:
        raise ConfigError(f"--bind must be HOST:PORT with a port 0-65535, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return (host or "0.0.0.0", int(port_text))


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--bind {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _load_app(args: argparse.Namespace) -> Any:
    from uvicorn.importer import ImportFromStringError, import_from_string

    if args.app_dir not in sys.path:
        sys.path.insert(0, args.app_dir)
    try:
        app = import_from_string(args.app)
    except ImportFromStringError as exc:
        raise ConfigError(f"cannot load {args.app!r}: {exc}") from None
    return app() if args.factory else app


def _handler(args: argparse.Namespace) -> int:

    from realip.servers.asgi import ForwardedMiddleware
    from realip.servers.uvicorn import gated_config

    policy = policy_from_args(args)
    resolver = forwarded_from_args(args)
    host, port = parse_bind(args.bind)
    app = wrap_with_limits(_load_app(args), args)
    if resolver is not None:
        app = ForwardedMiddleware(app, resolver)
    verbose = args.debug or args.verbose
    config = gated_config(
        app,
        policy=policy,
        http=args.http,
        loop=args.loop,
        access_log=args.access_log,
        log_level="debug" if args.debug else "info" if verbose else "warning",
        timeout_keep_alive=args.timeout_keep_alive,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        lifespan="auto",
    )
    sock = _listen(host, port)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    banner = (
        f"realip serve: listening on http://{shown}:{bound[1]} "
        f"(policy: {'; '.join(policy.describe())})"
    )
    logging.getLogger("realip.servers").debug(
        "serve app=%s bind=%s:%d loop=%s http=%s",
        args.app,
        host,
        bound[1],
        args.loop,
        args.http,
    )
    server = _server_class()(config, banner)
    server.run(sockets=[sock])
    return ExitStatus.OK if server.started else ExitStatus.ERROR


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, announcing the address once it really accepts."""

        def __init__(self, config: uvicorn.Config, banner: str) -> None:
            super().__init__(config)
            self.banner = banner

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                print(self.banner, file=sys.stderr, flush=True)

    return Server
