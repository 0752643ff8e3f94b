"""The Redis store against a real redis-server (and a real 3-node Cluster)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from realip.errors import ConfigError, StoreUnavailable
from realip.limiter import SCRIPT_SHA, KeyPolicy, Limit, RedisStore, open_store
from tests.limiter.conftest import RedisClusterPeers, RedisServer
from tests.support.peers import require_binary

pytestmark = pytest.mark.peers

KEYS = KeyPolicy()
CLIENT = KEYS.key("203.0.113.7")


def redis_store(server: RedisServer, query: str = "", **kwargs: bool) -> RedisStore:
    store = open_store(f"{server.url}{query}", **kwargs)
    assert isinstance(store, RedisStore)
    return store


async def burst(
    store: RedisStore, limit: Limit, key: object = CLIENT, cost: int = 1
) -> int:
    n = 0
    while (await store.acquire(key, ((limit, cost),))).allowed:  # type: ignore[arg-type]
        n += 1
        assert n < 1000
    return n


async def test_count_plus_burst_at_once_then_one_per_interval(
    redis: RedisServer,
) -> None:
    store = redis_store(redis)
    limit = Limit(5, 1.0, burst=2, name="login")  # T = 0.2 s
    try:
        started = time.monotonic()
        assert await burst(store, limit) == 7
        refused = await store.acquire(CLIENT, ((limit, 1),))  # type: ignore[arg-type]
        elapsed = time.monotonic() - started
        assert not refused.allowed and refused.remaining == 0
        assert 0.2 - elapsed - 0.02 <= refused.retry_after <= 0.2

        # Poll (refusals cost nothing) until the next unit arrives.
        refused_at = time.monotonic()
        while not (await store.acquire(CLIENT, ((limit, 1),))).allowed:  # type: ignore[arg-type]
            assert time.monotonic() - refused_at < 5
            await asyncio.sleep(0.005)
        assert time.monotonic() - refused_at >= refused.retry_after - 0.01
        # Exactly one came back: the next is refused for about one interval.
        again = await store.acquire(CLIENT, ((limit, 1),))  # type: ignore[arg-type]
        assert not again.allowed and 0.1 <= again.retry_after <= 0.2
    finally:
        await store.aclose()


async def test_costs_and_several_limits_atomically(redis: RedisServer) -> None:
    store = redis_store(redis)
    minute = Limit(10, 60.0, name="minute")
    day = Limit(12, 86400.0, name="day")
    charges = ((minute, 4), (day, 4))
    try:
        first = await store.acquire(CLIENT, charges)  # type: ignore[arg-type]
        assert first.allowed and [v.remaining for v in first.verdicts] == [6, 8]
        assert (await store.acquire(CLIENT, charges)).allowed  # type: ignore[arg-type]
        refused = await store.acquire(CLIENT, charges)  # type: ignore[arg-type]
        assert not refused.allowed
        assert [v.allowed for v in refused.verdicts] == [False, True]
        assert refused.retry_after == pytest.approx(12.0, abs=0.1)  # 2 units x 6 s
        for _ in range(20):  # refusals consume nothing, in either limit
            assert not (await store.acquire(CLIENT, charges)).allowed  # type: ignore[arg-type]
        cheap = await store.acquire(CLIENT, ((minute, 2), (day, 2)))  # type: ignore[arg-type]
        assert cheap.allowed and [v.remaining for v in cheap.verdicts] == [0, 2]
    finally:
        await store.aclose()


async def test_concurrent_callers_share_one_budget(redis: RedisServer) -> None:
    store = redis_store(redis)
    limit = Limit(30, 60.0, burst=5, name="x")
    try:
        results = await asyncio.gather(
            *(store.acquire(CLIENT, ((limit, 1),)) for _ in range(200))  # type: ignore[arg-type]
        )
        assert sum(r.allowed for r in results) == 35
        other = await asyncio.gather(
            *(store.acquire(i, ((limit, 1),)) for i in range(100))
        )
        assert all(r.allowed for r in other)
    finally:
        await store.aclose()


async def test_keys_carry_a_hash_tag_and_expire(redis: RedisServer) -> None:
    store = redis_store(redis, "?prefix=t")
    six = KEYS.key("2001:db8:1:2::7")
    limit = Limit(2, 10.0, name="login")
    try:
        await store.acquire(CLIENT, ((limit, 1),))  # type: ignore[arg-type]
        await store.acquire(six, ((limit, 1),))  # type: ignore[arg-type]
        await store.acquire("we{ird}", ((limit, 1),))
    finally:
        await store.aclose()
    keys = set(redis.cli("--raw", "KEYS", "t:*").split())
    assert keys == {
        "t:{203.0.113.7}:login",
        "t:{6:20010db800010002}:login",
        "t:{we(ird)}:login",
    }
    ttl = int(redis.cli("PTTL", "t:{203.0.113.7}:login"))
    assert 0 < ttl <= 5000  # expires when the TAT passes: one interval of 5 s


async def test_noscript_falls_back_to_eval(redis: RedisServer) -> None:
    store = redis_store(redis)
    limit = Limit(3, 60.0, name="x")
    try:
        assert (await store.acquire(CLIENT, ((limit, 1),))).allowed  # type: ignore[arg-type]
        assert redis.cli("SCRIPT", "EXISTS", SCRIPT_SHA) == "1"
        redis.cli("SCRIPT", "FLUSH")
        assert (await store.acquire(CLIENT, ((limit, 1),))).remaining == 1  # type: ignore[arg-type]
        assert redis.cli("SCRIPT", "EXISTS", SCRIPT_SHA) == "1"
    finally:
        await store.aclose()


async def test_the_clock_is_the_servers(redis: RedisServer) -> None:
    """State is written in the server's TIME scale (epoch microseconds), and a TAT
    planted from the server's clock is judged against that clock."""
    store = redis_store(redis, "?prefix=c")
    limit = Limit(5, 60.0, name="clock")  # T = 12 s, horizon 60 s
    try:
        before = _server_time_us(redis)
        await store.acquire(CLIENT, ((limit, 1),))  # type: ignore[arg-type]
        after = _server_time_us(redis)
        tat = int(redis.cli("GET", "c:{203.0.113.7}:clock"))
        assert before + 12_000_000 <= tat <= after + 12_000_000

        # Use up the budget as of the server's now + 30 s: 2 units free.
        planted = _server_time_us(redis) + 30_000_000
        redis.cli("SET", "c:{203.0.113.7}:clock", str(planted))
        decision = await store.acquire(CLIENT, ((limit, 1),))  # type: ignore[arg-type]
        assert decision.allowed and decision.remaining == 1
    finally:
        await store.aclose()


SHIFT_CLOCK_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
#include <sys/time.h>
/* Every clock of the process runs one day ahead. */
int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0) ts->tv_sec += 86400;
    return rc;
}
int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000;
    return rc;
}
time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
"""

CHILD = """
import asyncio, sys, time
from realip.limiter import Limit, open_store

async def main():
    store = open_store(sys.argv[1])
    limit = Limit(3, 3600.0, name="shared")
    decisions = [await store.acquire(12345, ((limit, 1),)) for _ in range(2)]
    await store.aclose()
    print(int(time.time()), *(int(d.allowed) for d in decisions))

asyncio.run(main())
"""


async def test_a_replica_with_a_wrong_clock_shares_the_budget(
    redis: RedisServer, tmp_path: Path
) -> None:
    """A second process whose clocks run a day ahead (LD_PRELOAD) still sees the
    budget the first one spent: the decision does not use the caller's clock."""
    source = tmp_path / "shift.c"
    source.write_text(SHIFT_CLOCK_C)
    library = tmp_path / "shift.so"
    await asyncio.to_thread(
        subprocess.run,
        [
            require_binary("gcc"),
            "-shared",
            "-fPIC",
            "-o",
            str(library),
            str(source),
            "-ldl",
        ],
        check=True,
        capture_output=True,
    )
    store = redis_store(redis)
    limit = Limit(3, 3600.0, name="shared")
    try:
        assert await burst(store, limit, key=12345) == 3
    finally:
        await store.aclose()

    env = {**os.environ, "LD_PRELOAD": str(library)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, redis.url, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    assert child.returncode == 0
    child_time, *allowed = map(int, out.split())
    assert child_time - time.time() > 86000  # the child's clock really is shifted
    assert allowed == [0, 0]


def _server_time_us(redis: RedisServer) -> int:
    seconds, micros = redis.cli("TIME").split()
    return int(seconds) * 1_000_000 + int(micros)


# -- faults -------------------------------------------------------------------------


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    messages = [r.getMessage() for r in caplog.records if r.name == "realip.limiter"]
    return (
        sum("unreachable" in m for m in messages),
        sum("reachable again" in m for m in messages),
    )


@pytest.mark.parametrize("fail_open", [True, False])
async def test_redis_killed_mid_traffic_and_restarted(
    redis: RedisServer, caplog: pytest.LogCaptureFixture, fail_open: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="realip.limiter")
    store = redis_store(redis, "?retry_interval=0.05", fail_open=fail_open)
    limit = Limit(1000, 1.0, name="traffic")
    outcomes: list[str] = []
    stop = asyncio.Event()

    async def traffic(client: int) -> None:
        while not stop.is_set():
            try:
                decision = await store.acquire(client, ((limit, 1),))
                outcomes.append("degraded" if decision.degraded else "redis")
            except StoreUnavailable:
                outcomes.append("refused")
            await asyncio.sleep(0.002)

    async def until(predicate: object, within: float = 15.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():  # type: ignore[operator]
            assert time.monotonic() < deadline, outcomes[-5:]
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(traffic(i)) for i in range(5)]
    try:
        await until(lambda: outcomes.count("redis") >= 20)
        redis.kill()
        mode = "degraded" if fail_open else "refused"
        await until(lambda: outcomes.count(mode) >= 50)
        assert store.down
        assert outage_lines(caplog) == (1, 0)  # one line for the whole outage

        mark = len(outcomes)
        await asyncio.to_thread(redis.start)
        await until(lambda: outcomes[mark:].count("redis") >= 20)
        assert not store.down
        assert outage_lines(caplog) == (1, 1)
        assert set(outcomes) == {"redis", mode}
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await store.aclose()


async def test_unreachable_from_the_start(caplog: pytest.LogCaptureFixture) -> None:
    from tests.support.net import free_port

    store = open_store(f"redis://127.0.0.1:{free_port()}?retry_interval=10")
    limit = Limit(1, 60.0, name="x")
    try:
        for _ in range(5):
            decision = await store.acquire(1, ((limit, 1),))
            assert decision.allowed and decision.degraded
        assert outage_lines(caplog) == (1, 0)
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://host-without-port",
        "redis+cluster://127.0.0.1:1?bogus=1",
        "gopher://127.0.0.1",
        "redis://127.0.0.1?retry_interval=soon",
    ],
)
def test_bad_urls_name_the_flag_and_value(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url, flag="--redis")
    assert "--redis" in str(info.value) and url in str(info.value)


async def test_url_schemes(tmp_path: Path) -> None:
    # unix:// and valkey:// reach a real server.
    from tests.limiter.conftest import redis_server

    sock = tmp_path / "r.sock"
    with redis_server(
        tmp_path, "--unixsocket", str(sock), "--unixsocketperm", "700"
    ) as srv:
        limit = Limit(1, 60.0, name="u")
        for url in (f"unix://{sock}", f"valkey://127.0.0.1:{srv.port}/0"):
            store = open_store(url)
            try:
                decision = await store.acquire(url, ((limit, 1),))
                assert decision.allowed and not decision.degraded
                assert not (await store.acquire(url, ((limit, 1),))).allowed
            finally:
                await store.aclose()


# -- cluster ------------------------------------------------------------------------


async def test_cluster_enforces_limits_across_slots(
    redis_cluster: RedisClusterPeers,
) -> None:
    store = open_store(redis_cluster.url + "?prefix=cl")
    assert isinstance(store, RedisStore)
    minute = Limit(3, 60.0, burst=1, name="minute")
    day = Limit(100, 86400.0, name="day")
    clients = [KEYS.key(f"198.51.100.{i}") for i in range(60)]
    try:
        rounds = []
        for _ in range(6):
            rounds.append(
                await asyncio.gather(
                    *(store.acquire(c, ((minute, 1), (day, 1))) for c in clients)  # type: ignore[arg-type]
                )
            )
        allowed = [sum(r[i].allowed for r in rounds) for i in range(len(clients))]
        assert allowed == [4] * len(clients)
    finally:
        await store.aclose()
    # The clients really are spread over the three nodes.
    holding = [int(n.cli("DBSIZE")) for n in redis_cluster.nodes]
    assert sum(holding) == 120 and all(h > 0 for h in holding), holding


async def test_cluster_loads_the_script_where_missing(
    redis_cluster: RedisClusterPeers,
) -> None:
    for node in redis_cluster.nodes:
        node.cli("SCRIPT", "FLUSH")
    store = open_store(redis_cluster.url + "?prefix=ns")
    limit = Limit(2, 60.0, name="x")
    try:
        results = await asyncio.gather(
            *(store.acquire(i, ((limit, 1),)) for i in range(30))
        )
        assert all(r.allowed and not r.degraded for r in results)
    finally:
        await store.aclose()
    assert all(
        n.cli("SCRIPT", "EXISTS", SCRIPT_SHA) == "1" for n in redis_cluster.nodes
    )
