"""Ports and readiness, the honest way: ask the kernel, then wait with a deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out for ``host``.

    External peers (haproxy, nginx, redis-server) cannot report the port they got
    for ``:0``, so they are given one that was free a moment ago; callers retry on
    the rare collision (see :func:`tests.support.peers.start_peer`).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``condition`` until it is true; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s: {condition!r}")
        time.sleep(interval)


def can_connect(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, *, timeout: float = 10.0) -> None:
    wait_until(lambda: can_connect(host, port), timeout=timeout)
