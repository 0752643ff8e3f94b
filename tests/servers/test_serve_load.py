"""``realip serve`` under slow and silent clients, and its graceful shutdown."""

from __future__ import annotations

import re
import signal
import socket
import time

import pytest

from realip.proxyproto import Command, build_v2
from tests.servers.serving import answer_json, connect, exchange, realip_serve, request
from tests.support.net import wait_until

pytestmark = [pytest.mark.peers, pytest.mark.slow]

HEADER = build_v2(Command.PROXY, ("192.0.2.44", 1000), ("127.0.0.1", 80))
PARTIAL = HEADER[:20]  # the signature and part of the address block


def closed_by_peer(sock: socket.socket, deadline: float) -> bool:
    """True once the server has closed ``sock`` (EOF or reset) before ``deadline``."""
    sock.settimeout(max(deadline - time.monotonic(), 0.01))
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slow_clients_are_closed_at_the_timeout_while_others_are_served() -> None:
    args = ["--proxy-protocol=require", "--header-timeout=0.5"]
    with realip_serve(args) as served:
        slow = []
        try:
            for index in range(300):
                sock = connect(served.port, f"127.0.1.{index % 250 + 1}")
                sock.sendall(PARTIAL if index % 2 else b"")
                slow.append(sock)
            started = time.monotonic()
            # Normal requests keep being served while 300 connections wait.
            for _ in range(20):
                answer = answer_json(exchange(served.port, HEADER + request()))
                assert answer["client"] == ["192.0.2.44", 1000]
            deadline = started + 10
            assert all(closed_by_peer(sock, deadline) for sock in slow)
        finally:
            for sock in slow:
                sock.close()
        served.wait_log("then nothing for 0.5 s: a slow client")
        served.wait_log("sent nothing for 0.5 s")
        assert served.proc.poll() is None

        # The flood was rate-limited in the log; the next refusal says how much.
        def summary_logged() -> bool:
            exchange(served.port, request())
            return (
                re.search(r"\d+ more refused connection\(s\) not logged", served.log)
                is not None
            )

        wait_until(summary_logged, timeout=10, interval=0.2)
        refusals = served.log.count("refused connection from")
        assert refusals < 100, refusals


def test_pending_cap_and_graceful_shutdown() -> None:
    args = ["--proxy-protocol=require", "--header-timeout=30", "--max-pending=20"]
    with realip_serve(args) as served:
        waiting = [connect(served.port, "127.0.0.3") for _ in range(20)]
        try:
            # Accepted in order: once the 20 are pending, the next are refused.
            wait_until(lambda: _pending_full(served.port), timeout=10)
            served.wait_log(
                "connections already waiting for their PROXY header (limit 20)"
            )
            assert not any(
                closed_by_peer(sock, time.monotonic() + 0.05) for sock in waiting
            )

            # SIGTERM: uvicorn's graceful shutdown also closes the waiting ones,
            # long before their 30 s header timeout.
            started = time.monotonic()
            served.proc.send_signal(signal.SIGTERM)
            assert all(closed_by_peer(sock, started + 10) for sock in waiting)
            served.proc.wait(10)
            assert time.monotonic() - started < 10
            assert served.proc.returncode in (0, -signal.SIGTERM)
        finally:
            for sock in waiting:
                sock.close()


def _pending_full(port: int) -> bool:
    with connect(port, "127.0.0.4") as sock:
        return closed_by_peer(sock, time.monotonic() + 0.5)
