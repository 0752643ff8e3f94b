"""realip serve vs plain uvicorn: the same ASGI app, the same run, wrk as load.

Variants (each alternates A and B runs, several rounds, and prints medians):

- ``haproxy``: wrk -> HAProxy (mode tcp) -> uvicorn, versus wrk -> HAProxy (mode
  tcp, send-proxy-v2) -> realip serve (``require`` for 127.0.0.1).
- ``direct``: wrk -> uvicorn, versus wrk -> realip serve (``optional`` for
  loopback, so no header is sent and the gate decides from the first byte).
- ``close``: as ``direct`` with ``Connection: close``: one connection per
  request, the gate's worst case.

Both servers are single processes with uvicorn's defaults (``--loop auto``: uvloop
when installed; ``--http auto``: httptools), access log off.

    python3 bench/serve_compare.py [--rounds 5] [--duration 5] [--connections 50]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
BODY = b"hello, world\n"


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    """The benchmarked application: a fixed small answer."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} not ready")


@contextlib.contextmanager
def running(argv: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def uvicorn_argv(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "serve_compare:app", "--app-dir", str(HERE),
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        "--log-level", "warning", "--no-proxy-headers", "--lifespan", "off",
    ]  # fmt: skip


def realip_argv(port: int, policy: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "realip", "serve", "serve_compare:app",
        "--app-dir", str(HERE), "--bind", f"127.0.0.1:{port}",
        *(f"--proxy-protocol={spec}" for spec in policy),
    ]  # fmt: skip


def wrk(url: str, args: argparse.Namespace, *, close: bool = False) -> float:
    argv = [args.wrk, "-t1", f"-c{args.connections}", f"-d{args.duration}s", url]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed responses from {url}")
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+)", out)
    if sockets and int(sockets.group(1)) + int(sockets.group(2)) > 0:
        print(f"    ({url}: {sockets.group(0)})", flush=True)
    return float(match.group(1))


HAPROXY_CFG = """
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen plain
    bind 127.0.0.1:{front_plain}
    server s 127.0.0.1:{uvicorn}
listen proxied
    bind 127.0.0.1:{front_pp}
    server s 127.0.0.1:{realip} send-proxy-v2
"""


def compare(name: str, a_url: str, b_url: str, args: argparse.Namespace) -> float:
    close = name == "close"
    a_rates: list[float] = []
    b_rates: list[float] = []
    wrk(a_url, args, close=close)  # warm-up both (imports, caches, JIT-less but fair)
    wrk(b_url, args, close=close)
    for round_ in range(args.rounds):
        # Alternate the order so drift on a shared machine hits both equally.
        order = [(a_rates, a_url), (b_rates, b_url)]
        if round_ % 2:
            order.reverse()
        for rates, url in order:
            rates.append(wrk(url, args, close=close))
    a_med, b_med = statistics.median(a_rates), statistics.median(b_rates)
    ratio = b_med / a_med
    print(f"{name:8} uvicorn {a_med:9.0f} req/s   realip serve {b_med:9.0f} req/s   "
          f"ratio {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)")  # fmt: skip
    print(f"{'':8} runs uvicorn {[round(r) for r in a_rates]}")
    print(f"{'':8} runs realip  {[round(r) for r in b_rates]}", flush=True)
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument(
        "--variants", default="haproxy,direct,close", help="comma-separated list"
    )
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    args = parser.parse_args()
    variants = args.variants.split(",")

    import uvloop  # noqa: F401  (fail early: both servers should run on uvloop)

    print(f"python {sys.version.split()[0]}, loop: uvloop (uvicorn --loop auto), "
          f"http: httptools; wrk -t1 -c{args.connections} -d{args.duration}s, "
          f"{args.rounds} rounds, medians", flush=True)  # fmt: skip
    ports = {name: free_port() for name in ("uvicorn", "realip", "realip_opt")}
    with contextlib.ExitStack() as stack:
        stack.enter_context(running(uvicorn_argv(ports["uvicorn"]), ports["uvicorn"]))
        if "haproxy" in variants:
            port = ports["realip"]
            stack.enter_context(running(realip_argv(port, ["require=127.0.0.1"]), port))
            fronts = {"front_plain": free_port(), "front_pp": free_port()}
            cfg = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "h.cfg"
            cfg.write_text(HAPROXY_CFG.format(**ports, **fronts))
            haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
            stack.enter_context(
                running([haproxy, "-db", "-f", str(cfg)], fronts["front_pp"])
            )
            compare(
                "haproxy",
                f"http://127.0.0.1:{fronts['front_plain']}/",
                f"http://127.0.0.1:{fronts['front_pp']}/",
                args,
            )
        if "direct" in variants or "close" in variants:
            port = ports["realip_opt"]
            stack.enter_context(running(realip_argv(port, ["optional=loopback"]), port))
            for name in ("direct", "close"):
                if name in variants:
                    compare(
                        name,
                        f"http://127.0.0.1:{ports['uvicorn']}/",
                        f"http://127.0.0.1:{port}/",
                        args,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
