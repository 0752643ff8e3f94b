"""GCRA semantics, proved on the pure function and on the memory store with a
clock the test moves by hand (no waiting)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realip.errors import ConfigError
from realip.limiter import Limit, MemoryStore, gcra
from realip.limiter._gcra import whole_seconds


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def store_with_clock(**kwargs: int) -> tuple[MemoryStore, Clock]:
    clock = Clock()
    return MemoryStore(clock=clock, **kwargs), clock


def burst_count(store: MemoryStore, key: int, limit: Limit, cost: int = 1) -> int:
    """Requests allowed back to back before the first refusal."""
    n = 0
    while store.decide(key, ((limit, cost),)).allowed:
        n += 1
        assert n < 10_000
    return n


@pytest.mark.parametrize(
    ("count", "burst"), [(1, 0), (5, 0), (5, 3), (1, 3), (100, 0), (7, 20)]
)
def test_count_plus_burst_at_once_then_one_per_interval(count: int, burst: int) -> None:
    store, clock = store_with_clock()
    limit = Limit(count, 60.0, burst=burst, name="x")
    interval = 60.0 / count

    assert burst_count(store, 1, limit) == count + burst
    for _ in range(5):
        clock.now += interval
        assert burst_count(store, 1, limit) == 1


def test_nginx_burst_equivalence() -> None:
    # nginx `limit_req zone=z burst=3 nodelay` with `rate=1r/s` passes 4 at once and
    # then one per second; the same limit written as 1/second with burst 3 here.
    store, clock = store_with_clock()
    limit = Limit(1, 1.0, burst=3, name="nginx")
    assert burst_count(store, 1, limit) == 4
    clock.now += 1.0
    assert burst_count(store, 1, limit) == 1


def test_window_edges_are_exact() -> None:
    store, clock = store_with_clock()
    limit = Limit(5, 60.0, name="login")
    charges = ((limit, 1),)
    for _ in range(5):
        assert store.decide(7, charges).allowed
    refused = store.decide(7, charges)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(12.0)
    assert refused.remaining == 0

    start = clock.now
    clock.now = start + 12.0 - 1e-3  # just before the edge: still refused
    early = store.decide(7, charges)
    assert not early.allowed
    assert early.retry_after == pytest.approx(1e-3)
    clock.now = start + 12.0  # on the edge: exactly one more
    assert store.decide(7, charges).allowed
    assert not store.decide(7, charges).allowed

    # A whole idle period refills the budget completely, and no more than that.
    clock.now += 60.0
    assert burst_count(store, 7, limit) == 5


def test_no_double_spend_across_a_window_boundary() -> None:
    # Unlike a fixed window, spending the budget just before a "minute" ends does
    # not earn a second full budget just after it.
    store, clock = store_with_clock()
    limit = Limit(10, 60.0, name="x")
    clock.now = 59.9
    assert burst_count(store, 1, limit) == 10
    clock.now = 60.1
    assert burst_count(store, 1, limit) == 0


def test_costs_above_one() -> None:
    store, clock = store_with_clock()
    limit = Limit(10, 10.0, name="x")  # one unit per second
    first = store.decide(1, ((limit, 4),))
    assert first.allowed and first.remaining == 6
    assert store.decide(1, ((limit, 4),)).remaining == 2
    refused = store.decide(1, ((limit, 4),))
    assert not refused.allowed
    assert refused.remaining == 2
    assert refused.retry_after == pytest.approx(2.0)  # two more units needed
    # A refused request costs nothing: a cheaper one still fits.
    assert store.decide(1, ((limit, 2),)).allowed
    clock.now += 4.0
    assert store.decide(1, ((limit, 4),)).allowed


def test_cost_beyond_capacity_is_a_config_error() -> None:
    store, _ = store_with_clock()
    with pytest.raises(ConfigError, match="cost 6"):
        store.decide(1, ((Limit(5, 1.0, name="x"), 6),))
    with pytest.raises(ConfigError, match="cost"):
        store.decide(1, ((Limit(5, 1.0, name="x"), 0),))


def test_several_limits_all_must_pass_and_refusal_consumes_nothing() -> None:
    store, clock = store_with_clock()
    minute = Limit(5, 60.0, name="minute")
    day = Limit(7, 86400.0, name="day")
    charges = ((minute, 1), (day, 1))
    assert burst_count_multi(store, charges) == 5

    refused = store.decide(1, charges)
    assert not refused.allowed
    by_name = {v.limit.name: v for v in refused.verdicts}
    assert not by_name["minute"].allowed
    assert by_name["day"].allowed and by_name["day"].remaining == 2
    # Many refusals later, the day budget is untouched.
    for _ in range(50):
        assert not store.decide(1, charges).allowed
    clock.now += 3600.0
    assert burst_count_multi(store, charges) == 2  # now the day limit binds
    refused = store.decide(1, charges)
    assert [v.allowed for v in refused.verdicts] == [True, False]
    assert refused.verdicts[0].remaining == 3  # minute budget untouched by refusals


def burst_count_multi(
    store: MemoryStore, charges: tuple[tuple[Limit, int], ...]
) -> int:
    n = 0
    while store.decide(1, charges).allowed:
        n += 1
    return n


def test_clients_are_independent() -> None:
    store, _ = store_with_clock()
    limit = Limit(2, 60.0, name="x")
    assert burst_count(store, 1, limit) == 2
    assert burst_count(store, 2, limit) == 2
    assert burst_count(store, "testclient", limit) == 2


def test_decision_fields() -> None:
    store, _ = store_with_clock()
    limit = Limit(4, 8.0, burst=1, name="x")  # T = 2 s, capacity 5, horizon 10 s
    first = store.decide(1, ((limit, 1),))
    assert (first.allowed, first.remaining, first.retry_after, first.reset) == (
        True,
        4,
        0.0,
        pytest.approx(2.0),
    )
    for _ in range(4):
        last = store.decide(1, ((limit, 1),))
    assert last.remaining == 0 and last.reset == pytest.approx(10.0)


def test_limit_validation() -> None:
    with pytest.raises(ConfigError, match="count"):
        Limit(0, 1.0)
    with pytest.raises(ConfigError, match="period"):
        Limit(1, 0.0)
    with pytest.raises(ConfigError, match="burst"):
        Limit(1, 1.0, burst=-1)


def test_whole_seconds_rounds_up() -> None:
    assert whole_seconds(12.0) == 12
    assert whole_seconds(12.0000000001) == 12  # float noise, not a 13th second
    assert whole_seconds(11.2) == 12
    assert whole_seconds(0.0) == 0


# -- properties ------------------------------------------------------------------

arrivals = st.lists(
    st.tuples(st.floats(0, 5.0, allow_nan=False), st.integers(1, 3)), max_size=80
)


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(1, 10),
    burst=st.integers(0, 5),
    period=st.sampled_from([1.0, 3.0, 60.0]),
    steps=arrivals,
)
def test_never_more_than_capacity_plus_refill_in_any_window(
    count: int, burst: int, period: float, steps: list[tuple[float, int]]
) -> None:
    """GCRA's conformance bound: in any span of length w, at most
    ``capacity + w / T`` units are granted."""
    limit = Limit(count, period, burst=burst, name="p")
    tat, now = 0.0, 100.0
    granted: list[tuple[float, int]] = []
    for gap, cost in steps:
        now += gap * limit.interval
        cost = min(cost, limit.capacity)
        verdict, tat = gcra(tat, now, limit, cost)
        if verdict.allowed:
            granted.append((now, cost))
        else:
            assert verdict.retry_after > 0 or math.isclose(verdict.retry_after, 0.0)
    for i, (start, _) in enumerate(granted):
        total = 0
        for t, cost in granted[i:]:
            total += cost
            allowed_max = limit.capacity + (t - start) / limit.interval + 1e-6
            assert total <= allowed_max


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(1, 6),
    burst=st.integers(0, 3),
    steps=st.lists(
        st.tuples(st.floats(0, 3.0, allow_nan=False), st.integers(0, 4)), max_size=120
    ),
    max_clients=st.integers(5, 50),
)
def test_memory_store_matches_the_pure_algorithm(
    count: int, burst: int, steps: list[tuple[float, int]], max_clients: int
) -> None:
    """Generation rotation (idle expiry) never changes a decision while the store
    is within its bound."""
    limit = Limit(count, 2.0, burst=burst, name="m")
    store, clock = store_with_clock(max_clients=max_clients)
    model: dict[int, float] = {}
    for gap, client in steps:
        clock.now += gap
        expected, model[client] = gcra(model.get(client, 0.0), clock.now, limit)
        got = store.decide(client, ((limit, 1),))
        assert got.allowed == expected.allowed
        assert got.remaining == expected.remaining
        assert got.retry_after == pytest.approx(expected.retry_after)
