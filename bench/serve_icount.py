"""CPU instructions per connection: realip serve vs plain uvicorn, under valgrind.

On a shared two-core machine requests per second move with other processes'
load by more than the gate costs; the number of instructions a server runs per
connection does not. Each server runs under ``valgrind --tool=cachegrind``
(user-space instructions only, so the kernel's share of a connection is left
out) twice: once with only a warm-up, once with ``--connections`` more
one-request connections (``Connection: close``, four clients at a time). The
difference, divided by the count, is the cost of one connection. Both servers
are the same as in ``serve_compare.py`` (the same app and uvicorn options;
``optional`` for loopback, no header sent). Slow: valgrind runs Python about 50
times slower; needs ``valgrind`` (``apt-get install valgrind``).

    python3 bench/serve_icount.py [--connections 2000]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _cachegrind import cachegrind, instructions_in
from serve_compare import HERE, free_port, realip_argv, uvicorn_argv

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
WARM_UP = 50
CLIENTS = 4


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {port} not ready") from None
            time.sleep(0.2)


def one_request(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(REQUEST)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    if not answer.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"bad answer from port {port}: {answer[:80]!r}")


def requests(port: int, count: int) -> None:
    for _ in range(count):
        one_request(port)


def drive(port: int, count: int) -> None:
    """``count`` one-request connections from CLIENTS threads."""
    threads = [
        threading.Thread(target=requests, args=(port, count // CLIENTS))
        for _ in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def instructions(argv: list[str], port: int, count: int, valgrind: str) -> int:
    """User-space instructions of one server run that served ``count``
    connections after the warm-up."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "valgrind.log"
        command = cachegrind(valgrind, log, argv)
        proc = subprocess.Popen(
            command, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_ready(port, proc, timeout=120)
            requests(port, WARM_UP)
            drive(port, count)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
        return instructions_in(log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    args = parser.parse_args()
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print(
            "serve_icount: needs valgrind (apt-get install valgrind)", file=sys.stderr
        )
        return 1
    count = args.connections - args.connections % CLIENTS
    print(f"python {sys.version.split()[0]}; {count} connections, one request each")
    results = {}
    servers = {
        "uvicorn": uvicorn_argv,
        "realip serve": lambda port: realip_argv(port, ["optional=loopback"]),
    }
    for name, make_argv in servers.items():
        runs = []
        for served in (0, count):
            port = free_port()
            runs.append(instructions(make_argv(port), port, served, valgrind))
        results[name] = (runs[1] - runs[0]) / count
        print(f"{name:13} {results[name]:9.0f} instructions per connection", flush=True)
    extra = results["realip serve"] - results["uvicorn"]
    print(f"{'gate':13} {extra:+9.0f} ({extra / results['uvicorn'] * 100:+.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
