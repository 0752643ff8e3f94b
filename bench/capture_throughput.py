"""Throughput and peak memory of ``realip capture`` on a capture of >= 1M packets.

Generates (once) a pcap of TCP connections over Ethernet/IPv4, interleaved so that
many are open at a time: a third send a PROXY v2 header, a sixth v1, the rest plain
HTTP or a TLS ClientHello, from several client networks. Then, in fresh
subprocesses, repeated:

- realip: ``realip.capture.scan`` over the file (every connection emitted and
  summed up, nothing printed);
- baseline: a plain dpkt loop, ``dpkt.pcap.Reader`` plus ``dpkt.ethernet.Ethernet``
  down to the TCP payload, the least a script must do to look at the same bytes;
- read only: ``dpkt.pcap.Reader`` alone, for scale.

Prints the median packets per second and peak RSS (``wait4`` rusage of each
subprocess) and the ratios. Run: ``python3 bench/capture_throughput.py`` (options:
``--connections``, ``--concurrent``, ``--repeat``, ``--out``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

PACKETS_PER_CONNECTION = 10
_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

REALIP = """
import sys, time
from realip.capture import scan
count = 0
def emit(connection):
    global count
    count += 1
start = time.perf_counter()
result = scan(sys.argv[1], emit=emit)
elapsed = time.perf_counter() - start
print(result.stats.packets, elapsed, count, result.peak_open)
"""

BASELINE = """
import sys, time
import dpkt
start = time.perf_counter()
packets = payload = 0
with open(sys.argv[1], "rb") as f:
    for ts, buf in dpkt.pcap.Reader(f):
        packets += 1
        tcp = dpkt.ethernet.Ethernet(buf).data.data
        payload += len(tcp.data)
elapsed = time.perf_counter() - start
print(packets, elapsed, payload, 0)
"""

READ_ONLY = """
import sys, time
import dpkt
start = time.perf_counter()
packets = 0
with open(sys.argv[1], "rb") as f:
    for ts, buf in dpkt.pcap.Reader(f):
        packets += 1
elapsed = time.perf_counter() - start
print(packets, elapsed, 0, 0)
"""


def _v2_header(client: bytes, cport: int, server: bytes, sport: int) -> bytes:
    body = client + server + struct.pack("!HH", cport, sport)
    return _SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def _v1_header(client: bytes, cport: int, server: bytes, sport: int) -> bytes:
    src, dst = ".".join(map(str, client)), ".".join(map(str, server))
    return f"PROXY TCP4 {src} {dst} {cport} {sport}\r\n".encode()


def _client_hello(sni: bytes) -> bytes:
    """A minimal TLS 1.2 ClientHello record with SNI and ALPN extensions."""
    name = b"\x00" + len(sni).to_bytes(2, "big") + sni
    sni_ext = b"\x00\x00" + (len(name) + 2).to_bytes(2, "big")
    sni_ext += len(name).to_bytes(2, "big") + name
    alpn = b"\x08http/1.1"
    alpn_ext = b"\x00\x10" + (len(alpn) + 2).to_bytes(2, "big")
    alpn_ext += len(alpn).to_bytes(2, "big") + alpn
    exts = sni_ext + alpn_ext
    body = b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\x00\x02\xc0\x2f" + b"\x01\x00"
    body += len(exts).to_bytes(2, "big") + exts
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


_HELLO = _client_hello(b"shop.example.com")


def _frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
           flags: int, payload: bytes) -> bytes:  # fmt: skip
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    return eth + ip + tcp + payload


def _connection(index: int) -> list[bytes]:
    kind = index % 6
    if kind in (0, 1):  # through the load balancer: v2
        client = bytes([10, 0, 0, 5 + index % 3])
    elif kind == 2:
        client = bytes([10, 0, 1, 9])  # an older proxy: v1
    else:
        client = bytes([10, 244, (index >> 8) % 4, index % 250 + 1])  # pods
    server = bytes([10, 0, 9, 1])
    cport, sport = 20000 + index % 40000, 443 if kind == 5 else 8080
    request = b"GET /item/%d HTTP/1.1\r\nHost: shop\r\n\r\n" % index
    if kind in (0, 1):
        data = _v2_header(bytes([198, 51, 100, 7]), 40000, server, sport) + request
    elif kind == 2:
        data = _v1_header(bytes([198, 51, 100, 8]), 40001, server, sport) + request
    elif kind == 5:
        data = _HELLO
    else:
        data = request
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    c, s = 1000, 5000
    up = (client, server, cport, sport)
    down = (server, client, sport, cport)
    n = len(data)
    return [
        _frame(*up, c, 0, 0x02, b""),
        _frame(*down, s, c + 1, 0x12, b""),
        _frame(*up, c + 1, s + 1, 0x10, b""),
        _frame(*up, c + 1, s + 1, 0x18, data),
        _frame(*down, s + 1, c + 1 + n, 0x10, b""),
        _frame(*down, s + 1, c + 1 + n, 0x18, response),
        _frame(*up, c + 1 + n, s + 1 + len(response), 0x11, b""),
        _frame(*down, s + 1 + len(response), c + 2 + n, 0x11, b""),
        _frame(*up, c + 2 + n, s + 2 + len(response), 0x10, b""),
        _frame(*down, s + 2 + len(response), c + 2 + n, 0x10, b""),
    ]


def generate(path: Path, connections: int, concurrent: int) -> int:
    """Write the capture: batches of ``concurrent`` connections, their packets
    interleaved, so that many connections are open at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = struct.Struct("<IIII")
    t0 = 1_780_000_000.0
    count = 0
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for first in range(0, connections, concurrent):
            batch = [
                _connection(i)
                for i in range(first, min(first + concurrent, connections))
            ]
            for step in range(PACKETS_PER_CONNECTION):
                for frame in (packets[step] for packets in batch):
                    ts = t0 + count * 1e-4  # 10k packets/s, 1k connections/s
                    sec = int(ts)
                    usec = int((ts - sec) * 1e6)
                    out.write(record.pack(sec, usec, len(frame), len(frame)))
                    out.write(frame)
                    count += 1
    return count


def run(code: str, path: Path) -> tuple[float, float]:
    """Packets per second and peak RSS (MiB) of one fresh interpreter."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"benchmark child failed with {proc.returncode}")
    packets, elapsed, _, _ = out.split()
    return int(packets) / float(elapsed), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--concurrent", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "out" / "capture_1m.pcap"
    )
    args = parser.parse_args()
    wanted = args.connections * PACKETS_PER_CONNECTION
    if not args.out.exists() or args.out.stat().st_size < wanted * 60:
        started = time.perf_counter()
        count = generate(args.out, args.connections, args.concurrent)
        took = time.perf_counter() - started
        print(f"generated {count} packets in {took:.1f}s: {args.out}")
    size = args.out.stat().st_size / 2**20
    print(f"capture: {args.out} ({size:.0f} MiB), {args.concurrent} open at once")
    results: dict[str, list[tuple[float, float]]] = {
        "realip": [],
        "dpkt": [],
        "read": [],
    }
    for _ in range(args.repeat):
        for name, code in (("realip", REALIP), ("dpkt", BASELINE), ("read", READ_ONLY)):
            results[name].append(run(code, args.out))
    medians = {
        name: (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
        )
        for name, runs in results.items()
    }
    labels = {
        "realip": "realip capture (scan)",
        "dpkt": "dpkt Reader + Ethernet decode",
        "read": "dpkt Reader only",
    }
    print(f"{'':32} {'packets/s':>12} {'peak RSS':>10}   (median of {args.repeat})")
    for name, (pps, rss) in medians.items():
        print(f"{labels[name]:32} {pps:12,.0f} {rss:8.1f} MiB")
    base = medians["dpkt"][0]
    print(
        f"realip / dpkt decode loop: {medians['realip'][0] / base:.2f}x the packets/s"
    )
    print(
        f"realip / dpkt read only:   {medians['realip'][0] / medians['read'][0]:.2f}x"
    )


if __name__ == "__main__":
    main()
