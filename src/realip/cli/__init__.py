"""The ``realip`` command: one error boundary, one exit-code enum.

Each subcommand lives in its own module with a ``register(subparsers)`` function
that adds its parser and sets ``handler``: a callable taking the parsed namespace
and returning an exit status. Only :func:`main` turns exceptions into
``realip: error: ...`` lines; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import traceback
from collections.abc import Iterator, Sequence

from realip import __version__
from realip.cli._exit import ExitStatus
from realip.errors import RealipError

__all__ = ["ExitStatus", "main"]

# Order is the order of ``realip --help``: the chain first, then the tools. Only the
# module of the command being run is imported, so that ``realip send`` does not pay
# for loading the Kubernetes checker or the packet reader; the others appear in the
# help with these one-line summaries.
_COMMANDS = {
    "decode": "decode a PROXY protocol header (v1 or v2) and print it as JSON",
    "encode": "build a PROXY protocol header (v1 or v2) from flags",
    "serve": "run an ASGI app on uvicorn behind the PROXY protocol policy",
    "whoami": "echo server: answer each client with the address, PROXY header and "
    "client the server saw",
    "send": "send one connection with a hand-made PROXY header and print the answer",
    "probe": "tell whether an endpoint requires, accepts or ignores PROXY headers",
    "capture": "show which connections in a pcap/pcapng file carry a PROXY header",
    "k8s": "check Kubernetes objects for PROXY-protocol hairpin problems",
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full parser for the command named in ``argv`` (the first argument that
    names one); every other command is listed by name and summary only."""
    parser = argparse.ArgumentParser(
        prog="realip",
        description="The real client address, end to end: PROXY protocol, trust "
        "policy, rate limits and diagnostics.",
    )
    parser.add_argument("--version", action="version", version=f"realip {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and DEBUG logs"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output on stderr"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    selected = next((arg for arg in argv if arg in _COMMANDS), None)
    for name, summary in _COMMANDS.items():
        if name == selected:
            importlib.import_module(f"realip.cli._{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


@contextlib.contextmanager
def _logging_to_stderr(args: argparse.Namespace) -> Iterator[None]:
    """Send the ``realip`` loggers to stderr while a command runs, then put them
    back as they were: ``main`` is also called in-process (tests, embedding)."""
    if args.debug:
        level = logging.DEBUG
    elif args.verbose:
        level = logging.INFO if args.verbose == 1 else logging.DEBUG
    else:
        level = logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logger = logging.getLogger("realip")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
        handler.close()


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return ExitStatus.USAGE

    try:
        with _logging_to_stderr(args):
            return int(args.handler(args))
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # The reader of our stdout went away (``realip decode ... | head``).
        sys.stderr.close()
        return ExitStatus.ERROR
    except (RealipError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"realip: error: {_describe(exc)}", file=sys.stderr)
        return ExitStatus.ERROR


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, RealipError):
        target = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{target}"
    return str(exc)
