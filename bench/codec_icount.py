"""Decode cost in CPU instructions: realip against proxy-protocol 0.11.3.

The same rows as ``codec_compare.py`` (same inputs, same calls, both sides
checked to read the same client), counted instead of timed: on a shared
two-core machine nanoseconds move with the neighbours' load by more than the
differences being measured, while the number of instructions a call runs does
not. Each (row, side) runs in its own ``valgrind --tool=cachegrind`` process
that makes ``--calls`` calls after a warm-up of the same number (so that
CPython's specialising interpreter has settled); a process that makes only the
warm-up is subtracted. Objects made before the calls are frozen out of the
cyclic collector's way (``gc.freeze``), so that its passes cost what the calls
allocate and not what the set-up left behind. Needs ``valgrind`` (``apt-get
install valgrind``); takes about ten minutes.

    python3 bench/codec_icount.py [--calls 4000] [--only NAME] [--pure-crc]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _cachegrind import cachegrind, instructions_in

HERE = Path(__file__).resolve().parent

_CHILD = """
import sys
sys.path.insert(0, {here!r})
import codec_compare
if {pure_crc!r}:
    import realip.proxyproto._v2 as v2
    from realip.proxyproto import crc32c_pure
    v2._crc32c = crc32c_pure
import gc
_, ours, theirs = codec_compare.rows()[{name!r}]
call = ours if {side!r} == "realip" else theirs
gc.collect()
gc.freeze()  # the collector's passes then walk only what the calls allocate
def run(n):
    for _ in range(n):
        call()
run({calls})
run({measured})
"""


def instructions(
    valgrind: str, name: str, side: str, calls: int, measured: int, pure: bool
) -> int:
    """User-space instructions of one child process."""
    code = _CHILD.format(
        here=str(HERE),
        name=name,
        side=side,
        calls=calls,
        measured=measured,
        pure_crc=pure,
    )
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log"
        subprocess.run(
            cachegrind(valgrind, log, [sys.executable, "-c", code]),
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        return instructions_in(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--only", help="run the rows whose name contains this")
    parser.add_argument(
        "--pure-crc", action="store_true", help="realip with its pure-Python CRC32C"
    )
    args = parser.parse_args()
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("codec_icount: needs valgrind (apt-get install valgrind)")
    sys.path.insert(0, str(HERE))
    import codec_compare

    names = [n for n in codec_compare.rows() if not args.only or args.only in n]
    print(f"instructions per call, {args.calls} calls after as many warm-up calls\n")
    header = f"{'input':50} {'realip':>9} {'icgood':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name in names:
        counts = {}
        for side in ("realip", "icgood"):
            base = instructions(valgrind, name, side, args.calls, 0, args.pure_crc)
            full = instructions(
                valgrind, name, side, args.calls, args.calls, args.pure_crc
            )
            counts[side] = (full - base) / args.calls
        ratio = counts["icgood"] / counts["realip"]
        print(
            f"{name:50} {counts['realip']:9.0f} {counts['icgood']:9.0f} {ratio:6.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
