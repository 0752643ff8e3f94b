"""The memory store's bounds: idle expiry and a maximum of tracked clients."""

from __future__ import annotations

import asyncio
import logging

import pytest

from realip.errors import ConfigError
from realip.limiter import Limit, MemoryStore, open_store
from tests.limiter.test_gcra import Clock


def test_idle_clients_expire_without_changing_decisions() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    limit = Limit(2, 10.0, name="x")  # horizon 10 s
    for client in range(100):
        store.decide(client, ((limit, 1),))
    assert store.tracked(limit) == 100

    clock.now += 10.0
    store.decide(1000, ((limit, 1),))  # rotation: the 100 become "previous"
    assert store.tracked(limit) == 101
    store.decide(5, ((limit, 1),))  # seen again: kept
    clock.now += 10.0
    store.decide(1001, ((limit, 1),))  # rotation: the idle ones are gone
    assert store.tracked(limit) == 3  # 1000, 5 and 1001


def test_long_idle_forgets_everything() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    limit = Limit(1, 1.0, name="x")
    for client in range(10):
        store.decide(client, ((limit, 1),))
    clock.now += 1000.0
    store.decide(99, ((limit, 1),))
    assert store.tracked(limit) == 1


def test_max_clients_bounds_the_table(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    store = MemoryStore(max_clients=50, clock=clock)
    limit = Limit(1, 3600.0, name="x")
    caplog.set_level(logging.WARNING, logger="realip.limiter")
    for client in range(500):
        assert store.decide(client, ((limit, 1),)).allowed
        assert store.tracked(limit) <= 50
    warnings = [r for r in caplog.records if "max_clients" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited, not one per eviction
    # The most recent clients are still remembered.
    assert not store.decide(499, ((limit, 1),)).allowed


def test_recently_used_clients_survive_eviction() -> None:
    store = MemoryStore(max_clients=10, clock=Clock())
    limit = Limit(1, 3600.0, name="x")
    store.decide("vip", ((limit, 1),))
    for client in range(40):
        store.decide(client, ((limit, 1),))
        store.decide("vip", ((limit, 1),))  # refused, but counts as use
    assert not store.decide("vip", ((limit, 1),)).allowed


async def test_safe_under_asyncio_concurrency() -> None:
    store = MemoryStore()
    limit = Limit(50, 60.0, burst=10, name="x")

    async def one() -> bool:
        await asyncio.sleep(0)
        return (await store.acquire(1, ((limit, 1),))).allowed

    results = await asyncio.gather(*(one() for _ in range(500)))
    assert sum(results) == 60


def test_open_store_memory_url() -> None:
    store = open_store("memory://?max_clients=7")
    assert isinstance(store, MemoryStore) and store.max_clients == 7
    assert open_store("memory://", max_clients=9).max_clients == 9  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"--redis.*max_clients"):
        open_store("memory://?max_clients=lots", flag="--redis")
    with pytest.raises(ConfigError, match=r"--redis.*'ftp://x'"):
        open_store("ftp://x", flag="--redis")
    with pytest.raises(ConfigError, match="max_clients"):
        MemoryStore(max_clients=0)
