"""`realip k8s`: being written; registers its name so the command list is stable."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("k8s", help="(not yet built)")
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    raise NotImplementedError("realip k8s is not built yet")
