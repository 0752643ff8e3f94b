"""Helpers for the capture tests: a recording TCP server, tcpdump on loopback,
and a way to run ``realip capture`` in-process."""

from __future__ import annotations

import contextlib
import json
import re
import select
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from realip.cli import main
from tests.support.peers import require_binary


class RecordingServer(socketserver.ThreadingTCPServer):
    """Accepts connections, records every byte each client sends (keyed by the
    client's port), answers an HTTP request with 200, and closes."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), _Handler)
        self.received: dict[int, bytearray] = {}
        self.finished: set[int] = set()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def got(self, port: int) -> int:
        with self.lock:
            return len(self.received.get(port, b""))

    def done(self, port: int) -> bool:
        with self.lock:
            return port in self.finished

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(socketserver.BaseRequestHandler):
    server: RecordingServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        port = int(self.client_address[1])
        sock.settimeout(5)
        data = bytearray()
        with self.server.lock:
            self.server.received[port] = data
        try:
            # Until EOF, or the end of an HTTP request (curl waits for an answer).
            # A v2 signature also holds CRLF CRLF, hence the version check.
            while not (data.endswith(b"\r\n\r\n") and b" HTTP/1." in data):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                with self.server.lock:
                    data += chunk
            if b"HTTP/1." in data:
                sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            pass
        finally:
            sock.close()
            with self.server.lock:
                self.server.finished.add(port)


class Dump:
    """What tcpdump said when it stopped: ``dropped`` packets by the kernel."""

    dropped = 0


@contextlib.contextmanager
def tcpdump(
    path: Path, ports: Sequence[int], *, interface: str = "lo"
) -> Iterator[Dump]:
    """Capture the given ports on ``interface`` into ``path`` until the block ends.

    Waits for tcpdump's "listening on" line before the block runs, and stops it
    with SIGINT afterwards so that it flushes the file; then reads its drop count
    (on a loaded machine, ``any`` sees each loopback packet twice and can drop)."""
    binary = require_binary("tcpdump")
    expression = " or ".join(f"port {port}" for port in ports)
    proc = subprocess.Popen(
        # -B: a larger kernel buffer; the default one drops packets on "any".
        [binary, "-i", interface, "-n", "-U", "--immediate-mode", "-B", "8192",
         "-w", str(path), expression],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = b""
    dump = Dump()
    deadline = time.monotonic() + 15
    try:
        while b"listening on" not in seen:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"tcpdump did not start: {seen.decode(errors='replace')}")
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                seen += proc.stderr.read1(4096)  # type: ignore[attr-defined]
        yield dump
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            seen += proc.stderr.read()
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    dropped = re.search(rb"(\d+) packets? dropped by kernel", seen)
    dump.dropped = int(dropped[1]) if dropped else 0


def wait_in_file(path: Path, marker: bytes, *, timeout: float = 10.0) -> None:
    """Wait until ``marker`` has been written to ``path`` (tcpdump writes packets
    in capture order, so everything sent before it is in the file too)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and marker in path.read_bytes()):
        if time.monotonic() > deadline:
            pytest.fail(f"{marker!r} never reached {path}")
        time.sleep(0.02)


def run_capture(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``realip capture ARGS`` in this process: exit status, stdout, stderr."""
    capsys.readouterr()
    status = main(["capture", *args])
    out, err = capsys.readouterr()
    return status, out, err


def capture_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    status, out, err = run_capture(capsys, "--json", *args)
    assert status == 0, err
    document: dict[str, Any] = json.loads(out)
    return document
