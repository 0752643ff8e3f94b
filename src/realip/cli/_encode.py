"""`realip encode`: being written; registers its name so the command list is stable."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("encode", help="(not yet built)")
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    raise NotImplementedError("realip encode is not built yet")
