"""realip serve vs plain uvicorn: the same ASGI app, the same run, wrk as load.

Variants (each alternates A and B runs, several rounds, and prints medians):

- ``haproxy``: wrk -> HAProxy (mode tcp) -> uvicorn, versus wrk -> HAProxy (mode
  tcp, send-proxy-v2) -> realip serve (``require`` for 127.0.0.1).
- ``direct``: wrk -> uvicorn, versus wrk -> realip serve (``optional`` for
  loopback, so no header is sent and the gate decides from the first byte).
- ``close``: as ``direct`` with ``Connection: close``: one connection per
  request, the gate's worst case.

Both servers are single processes with the same uvicorn settings: ``--loop auto``
(uvloop when installed), ``--http auto`` (httptools), access log off, uvicorn's
own proxy-header handling off, lifespan ``auto``, log level warning.

Besides requests per second, each run reads the servers' CPU time from
``/proc/PID/stat`` and prints CPU microseconds per request: on a shared machine
that is steadier than the rate, which other processes' load moves. For
``close`` it also counts the kernel's passive TCP opens during the run (from
``/proc/net/snmp``), which shows that every request really came on a new
connection on both sides.

    python3 bench/serve_compare.py [--rounds 5] [--duration 5] [--connections 50]
"""

from __future__ import annotations

import argparse
import contextlib
import os
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
        "--log-level", "warning", "--no-proxy-headers", "--lifespan", "auto",
        "--loop", "auto", "--http", "auto", "--timeout-keep-alive", "5",
    ]  # fmt: skip


def realip_argv(port: int, policy: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "realip", "serve", "serve_compare:app",
        "--app-dir", str(HERE), "--bind", f"127.0.0.1:{port}",
        "--loop", "auto", "--http", "auto", "--timeout-keep-alive", "5",
        *(f"--proxy-protocol={spec}" for spec in policy),
    ]  # fmt: skip


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def passive_opens() -> int:
    """The kernel's count of accepted TCP connections (RFC 1213 tcpPassiveOpens)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [row for row in lines if row[0] == "Tcp:"][:2]
    return int(values[names.index("PassiveOpens")])


class Run:
    """One wrk run against one server: its rate and the server's cost."""

    def __init__(self, rate: float, requests: int, cpu: float, opens: int) -> None:
        self.rate = rate
        self.cpu_us = cpu * 1e6 / max(requests, 1)
        self.opens_per_request = opens / max(requests, 1)


def measure(
    url: str, pid: int, args: argparse.Namespace, *, close: bool = False
) -> Run:
    cpu, opens = cpu_seconds(pid), passive_opens()
    rate, requests = wrk(url, args, close=close)
    return Run(rate, requests, cpu_seconds(pid) - cpu, passive_opens() - opens)


def wrk(
    url: str, args: argparse.Namespace, *, close: bool = False
) -> tuple[float, int]:
    argv = [args.wrk, "-t1", f"-c{args.connections}", f"-d{args.duration}s", url]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if match is None or total is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed responses from {url}")
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+)", out)
    if sockets and int(sockets.group(1)) + int(sockets.group(2)) > 0:
        print(f"    ({url}: {sockets.group(0)})", flush=True)
    return float(match.group(1)), int(total.group(1))


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


def compare(
    name: str,
    a: tuple[str, int],
    b: tuple[str, int],
    args: argparse.Namespace,
) -> float:
    """Alternate wrk runs against ``a`` (uvicorn) and ``b`` (realip serve), each
    a (url, server pid) pair; print medians; return the rate ratio b / a."""
    close = name == "close"
    a_runs: list[Run] = []
    b_runs: list[Run] = []
    wrk(a[0], args, close=close)  # warm-up both (imports, caches, JIT-less but fair)
    wrk(b[0], args, close=close)
    for round_ in range(args.rounds):
        # Alternate the order so drift on a shared machine hits both equally.
        order = [(a_runs, a), (b_runs, b)]
        if round_ % 2:
            order.reverse()
        for runs, (url, pid) in order:
            runs.append(measure(url, pid, args, close=close))
    a_med = statistics.median(run.rate for run in a_runs)
    b_med = statistics.median(run.rate for run in b_runs)
    a_cpu = statistics.median(run.cpu_us for run in a_runs)
    b_cpu = statistics.median(run.cpu_us for run in b_runs)
    ratio = b_med / a_med
    print(f"{name:8} uvicorn {a_med:9.0f} req/s   realip serve {b_med:9.0f} req/s   "
          f"ratio {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)")  # fmt: skip
    extra = (b_cpu / a_cpu - 1) * 100
    print(f"{'':8} server CPU per request: uvicorn {a_cpu:.1f} us, realip serve "
          f"{b_cpu:.1f} us ({b_cpu - a_cpu:+.1f} us, {extra:+.1f}%)")  # fmt: skip
    if close:
        a_opens = statistics.median(run.opens_per_request for run in a_runs)
        b_opens = statistics.median(run.opens_per_request for run in b_runs)
        print(f"{'':8} new connections per request: uvicorn {a_opens:.3f}, "
              f"realip serve {b_opens:.3f}")  # fmt: skip
    print(f"{'':8} runs uvicorn {[round(run.rate) for run in a_runs]}")
    print(f"{'':8} runs realip  {[round(run.rate) for run in b_runs]}", flush=True)
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
        plain = stack.enter_context(
            running(uvicorn_argv(ports["uvicorn"]), ports["uvicorn"])
        )
        if "haproxy" in variants:
            port = ports["realip"]
            gated = stack.enter_context(
                running(realip_argv(port, ["require=127.0.0.1"]), port)
            )
            fronts = {"front_plain": free_port(), "front_pp": free_port()}
            cfg = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "h.cfg"
            cfg.write_text(HAPROXY_CFG.format(**ports, **fronts))
            haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
            stack.enter_context(
                running([haproxy, "-db", "-f", str(cfg)], fronts["front_pp"])
            )
            compare(
                "haproxy",
                (f"http://127.0.0.1:{fronts['front_plain']}/", plain.pid),
                (f"http://127.0.0.1:{fronts['front_pp']}/", gated.pid),
                args,
            )
        if "direct" in variants or "close" in variants:
            port = ports["realip_opt"]
            gated = stack.enter_context(
                running(realip_argv(port, ["optional=loopback"]), port)
            )
            for name in ("direct", "close"):
                if name in variants:
                    compare(
                        name,
                        (f"http://127.0.0.1:{ports['uvicorn']}/", plain.pid),
                        (f"http://127.0.0.1:{port}/", gated.pid),
                        args,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
