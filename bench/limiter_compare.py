"""realip.limiter against `limits` 5.x, in one run.

1. Memory: decisions per second of realip's MemoryStore (including turning the
   client address text into a key) against limits' moving-window strategy on its
   MemoryStorage, same clients, same 500/minute limit, same request sequence.
2. Redis: decisions per second with 50 concurrent asyncio callers, realip's
   RedisStore against limits.aio (redis-py implementation) moving-window, fixed-
   window and sliding-window-counter strategies, on one redis-server that this
   script starts on loopback (no persistence).
3. Memory per tracked client at one million clients (tracemalloc, and the RSS
   delta as a cross-check), IPv4 and IPv6 /64 keys.

Each measurement is repeated; medians are printed with the ratios.

    python3 bench/limiter_compare.py [--repeat 5] [--skip-redis] [--clients 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from limits import RateLimitItemPerMinute
from limits import storage as limits_storage
from limits import strategies as limits_strategies
from limits.aio import strategies as limits_aio_strategies
from limits.aio.storage import RedisStorage as LimitsAioRedisStorage

from realip.limiter import KeyPolicy, Limit, MemoryStore, open_store

CLIENTS = 1000
RATE = 100  # per minute: about half of the requests below are refused
CONCURRENCY = 50


def client_addresses(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(n)]


def sequence(addresses: list[str], ops: int, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(addresses) for _ in range(ops)]


# -- 1. memory ------------------------------------------------------------------------


def bench_realip_memory(seq: list[str]) -> tuple[float, int]:
    keys = KeyPolicy()
    store = MemoryStore(max_clients=len(seq))
    charges = ((Limit(RATE, 60.0, name="bench"), 1),)
    key, decide = keys.key, store.decide
    allowed = 0
    start = time.perf_counter()
    for host in seq:
        allowed += decide(key(host), charges).allowed
    return len(seq) / (time.perf_counter() - start), allowed


def bench_limits_memory(seq: list[str]) -> tuple[float, int]:
    storage = limits_storage.MemoryStorage()
    limiter = limits_strategies.MovingWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(RATE)
    hit = limiter.hit
    allowed = 0
    start = time.perf_counter()
    for host in seq:
        allowed += hit(item, host)
    return len(seq) / (time.perf_counter() - start), allowed


# -- 2. redis -------------------------------------------------------------------------


@contextmanager
def redis_server() -> Iterator[int]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


async def run_callers(
    call: Callable[[str], Awaitable[bool]], seq: list[str]
) -> tuple[float, int]:
    chunks = [seq[i::CONCURRENCY] for i in range(CONCURRENCY)]
    allowed = 0

    async def caller(chunk: list[str]) -> None:
        nonlocal allowed
        for host in chunk:
            ok = await call(host)  # not `allowed += await ...`: that loses updates
            allowed += ok

    for host in seq[:CONCURRENCY]:  # connect the pool before timing
        await call(host)
    start = time.perf_counter()
    await asyncio.gather(*(caller(chunk) for chunk in chunks))
    return len(seq) / (time.perf_counter() - start), allowed


async def bench_realip_redis(port: int, seq: list[str], run: int) -> tuple[float, int]:
    store = open_store(f"redis://127.0.0.1:{port}/0?prefix=bench{run}")
    keys = KeyPolicy()
    charges = ((Limit(RATE, 60.0, name="bench"), 1),)

    async def call(host: str) -> bool:
        return (await store.acquire(keys.key(host), charges)).allowed  # type: ignore[arg-type]

    try:
        return await run_callers(call, seq)
    finally:
        await store.aclose()


async def bench_limits_redis(
    port: int, seq: list[str], strategy: str, run: int
) -> tuple[float, int]:
    storage = LimitsAioRedisStorage(
        f"async+redis://127.0.0.1:{port}/0",
        implementation="redispy",
        key_prefix=f"limits-{strategy}-{run}",
        max_connections=CONCURRENCY + 10,
    )
    limiter = {
        "moving-window": limits_aio_strategies.MovingWindowRateLimiter,
        "fixed-window": limits_aio_strategies.FixedWindowRateLimiter,
        "sliding-window-counter": limits_aio_strategies.SlidingWindowCounterRateLimiter,
    }[strategy](storage)
    item = RateLimitItemPerMinute(RATE)

    async def call(host: str) -> bool:
        return await limiter.hit(item, host)

    return await run_callers(call, seq)


# -- 3. bytes per client --------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def bytes_per_client(n: int, family: int) -> tuple[float, float]:
    rng = random.Random(3)
    keys = KeyPolicy()
    if family == 4:
        hosts = (str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(n))
    else:
        hosts = (
            str(
                ipaddress.IPv6Address(
                    (0x2001_0DB8 << 96) | (rng.getrandbits(32) << 64) | 1
                )
            )
            for _ in range(n)
        )
    client_keys = [keys.key(h) for h in hosts]
    gc.collect()
    limit = Limit(10, 60.0, name="mem")
    charges = ((limit, 1),)
    rss0 = rss_bytes()
    tracemalloc.start()
    store = MemoryStore(max_clients=n)
    for key in client_keys:
        store.decide(key, charges)  # type: ignore[arg-type]
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = rss_bytes() - rss0
    tracked = store.tracked(limit)
    del client_keys
    # The keys were built before measuring but the store now owns them: count the
    # key objects too (an int per client), as the store is what keeps them alive.
    key_bytes = sys.getsizeof(2**31) if family == 4 else sys.getsizeof(-(2**62))
    return (traced + key_bytes * tracked) / tracked, rss / tracked


# -- main -----------------------------------------------------------------------------


def median_of(runs: list[tuple[float, int]]) -> float:
    return statistics.median(r for r, _ in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--ops", type=int, default=200_000, help="memory decisions per run"
    )
    parser.add_argument("--redis-ops", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()

    addresses = client_addresses(CLIENTS)
    seq = sequence(addresses, args.ops)
    print(f"python {sys.version.split()[0]}, {CLIENTS} clients, {RATE}/minute, "
          f"median of {args.repeat}")  # fmt: skip

    ours = [bench_realip_memory(seq) for _ in range(args.repeat)]
    theirs = [bench_limits_memory(seq) for _ in range(args.repeat)]
    a, b = median_of(ours), median_of(theirs)
    print("\n1. memory, decisions/s (single thread)")
    print(f"   realip MemoryStore (GCRA)          {a:12,.0f}  allowed {ours[0][1]}")
    print(f"   limits moving-window MemoryStorage {b:12,.0f}  allowed {theirs[0][1]}")
    print(f"   ratio {a / b:.2f}x")

    if not args.skip_redis:
        rseq = sequence(addresses, args.redis_ops, seed=4)
        with redis_server() as port:
            results: dict[str, list[tuple[float, int]]] = {}
            for run in range(args.repeat):
                # Interleave the contenders so that drift on a shared machine
                # hits them alike.
                results.setdefault("realip", []).append(
                    asyncio.run(bench_realip_redis(port, rseq, run))
                )
                for strategy in (
                    "moving-window",
                    "fixed-window",
                    "sliding-window-counter",
                ):
                    results.setdefault(strategy, []).append(
                        asyncio.run(bench_limits_redis(port, rseq, strategy, run))
                    )
        print(f"\n2. redis, decisions/s with {CONCURRENCY} concurrent asyncio callers")
        ours_r = median_of(results["realip"])
        print(f"   realip RedisStore (GCRA, Lua)      {ours_r:12,.0f}")
        for strategy in ("moving-window", "fixed-window", "sliding-window-counter"):
            m = median_of(results[strategy])
            print(f"   limits.aio {strategy:23} {m:12,.0f}  ratio {ours_r / m:.2f}x")

    print(f"\n3. memory per tracked client at {args.clients:,} clients")
    for family in (4, 6):
        traced, rss = bytes_per_client(args.clients, family)
        kind = "IPv4" if family == 4 else "IPv6 /64"
        print(f"   {kind:9} tracemalloc {traced:6.1f} B/client", end="")
        print(f"   RSS delta {rss:6.1f} B/client")


if __name__ == "__main__":
    main()
