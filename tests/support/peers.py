"""Start real peer processes (haproxy, nginx, redis-server...) on loopback.

Each peer runs in a temporary directory, on a port that was free a moment ago, and
is stopped (SIGTERM, then SIGKILL) when the context exits. If the peer dies before
its port accepts connections, its output is shown in the failure.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.net import can_connect


def require_binary(name: str) -> str:
    """The path of ``name``; fails (not skips) the test when it is missing, because
    the README's test command installs every peer."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{name} is not installed; run ./scripts/test, which installs it")
    return path


@contextlib.contextmanager
def run_peer(
    argv: Sequence[str],
    *,
    ready_port: tuple[str, int] | None,
    cwd: Path | None = None,
    timeout: float = 15.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; wait until ``ready_port`` accepts."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        if ready_port is not None:
            deadline = time.monotonic() + timeout
            while not can_connect(*ready_port):
                if proc.poll() is not None:
                    out = (
                        proc.stdout.read().decode(errors="replace")
                        if proc.stdout
                        else ""
                    )
                    raise RuntimeError(
                        f"{argv[0]} exited with {proc.returncode} before "
                        f"{ready_port} was ready:\n{out}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv[0]} not ready on {ready_port}")
                time.sleep(0.02)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
