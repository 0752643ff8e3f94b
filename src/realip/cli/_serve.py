"""`realip serve`: being written; registers its name so the command list is stable."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("serve", help="(not yet built)")
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    raise NotImplementedError("realip serve is not built yet")
