"""Counting a process's user-space instructions with valgrind's cachegrind.

Shared by the ``*_icount.py`` benchmarks: on a shared two-core machine the
instructions a program runs do not move with the neighbours' load, while its
wall-clock time does.
"""

from __future__ import annotations

import re
from pathlib import Path


def cachegrind(valgrind: str, log: Path, argv: list[str]) -> list[str]:
    """``argv`` run under cachegrind, without the cache simulation, its summary
    written to ``log``."""
    return [
        valgrind,
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        f"--log-file={log}",
        *argv,
    ]


def instructions_in(log: Path) -> int:
    """The instruction count from a cachegrind summary."""
    text = log.read_text()
    match = re.search(r"I\s+refs:\s+([\d,]+)", text)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's log: {text[-500:]}")
    return int(match.group(1).replace(",", ""))
