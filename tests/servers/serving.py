"""Run ``realip serve`` as a subprocess, read its port from stderr, talk to it."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.support.net import wait_until

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"listening on http://(\S+):(\d+)")


class Served:
    """A running ``realip serve``: its port and everything it wrote on stderr."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.port = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            match = _LISTENING.search(line)
            if match:
                self.port = int(match.group(2))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_log(self, text: str, timeout: float = 10.0) -> None:
        wait_until(lambda: text in self.log, timeout=timeout)


@contextlib.contextmanager
def realip_serve(
    args: Sequence[str], app: str = "tests.servers.echo_app:app"
) -> Iterator[Served]:
    argv = [
        sys.executable,
        "-m",
        "realip",
        "serve",
        app,
        "--bind",
        "127.0.0.1:0",
        *args,
    ]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served = Served(proc)
    try:
        wait_until(lambda: served.port != 0 or proc.poll() is not None, timeout=20)
        if served.port == 0:
            raise RuntimeError(f"realip serve exited early:\n{served.log}")
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        served._reader.join(5)
        if proc.stderr is not None:
            proc.stderr.close()


def connect(
    port: int, source: str = "127.0.0.1", *, nodelay: bool = False
) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def request(path: str = "/", headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: test", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(port: int, payload: bytes, source: str = "127.0.0.1") -> bytes:
    with connect(port, source) as sock:
        sock.sendall(payload)
        return read_all(sock)


def answer_json(raw: bytes) -> dict[str, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw[:200]
    return json.loads(body)  # type: ignore[no-any-return]
