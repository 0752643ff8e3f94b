"""The embedded store: GCRA state in process memory, bounded.

Layout. Each limit has its own table holding two plain dicts, *current* and
*previous*, mapping a client key (an int, see ``_keys.py``) to its TAT (a float).
No per-client object exists besides the key and the float, which keeps a tracked
client near 100 bytes at a million clients (``bench/limiter_compare.py``).

Idle expiry, exactly. A TAT is never more than one horizon ahead of the moment
it was written (``_gcra.py``). Every ``horizon`` seconds the table rotates:
*previous* is dropped and *current* becomes *previous*. Anything dropped was
written before the last rotation, at least one horizon ago, so its TAT has passed
and forgetting it changes no decision. A client seen again while in *previous*
moves back to *current*.

Bound. When a table holds ``max_clients`` keys and a new client arrives, one key
from *previous* is forgotten (after a forced rotation if *previous* is empty).
Everything in *previous* was used less recently than everything in *current*,
so this approximates nginx's "least recently used state is removed". A forgotten
client that was still inside its budget gets a fresh one; a warning says so, at
most once a minute.

Concurrency. A decision reads and writes the tables without awaiting in between,
so it is atomic with respect to other asyncio tasks. The store is not meant to be
shared between threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from realip.errors import ConfigError
from realip.limiter._gcra import UNIT_EPSILON, Decision, Limit, Verdict, settle
from realip.limiter._keys import ClientKey

log = logging.getLogger("realip.limiter")

DEFAULT_MAX_CLIENTS: Final = 200_000
_WARN_EVERY: Final = 60.0
_floor = int  # floor for the non-negative values below, without a call into math


class _Table:
    """The state of one limit: two generations of ``key -> TAT``."""

    __slots__ = ("current", "horizon", "previous", "rotate_at")

    def __init__(self, horizon: float, now: float) -> None:
        self.current: dict[ClientKey, float] = {}
        self.previous: dict[ClientKey, float] = {}
        self.horizon = horizon
        self.rotate_at = now + horizon

    def rotate(self, now: float) -> None:
        if now >= self.rotate_at + self.horizon:
            # Idle for two horizons: both generations have expired.
            self.previous = {}
        else:
            self.previous = self.current
        self.current = {}
        self.rotate_at = now + self.horizon

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)


class MemoryStore:
    """GCRA state for every limit, in this process.

    ``max_clients`` bounds the keys kept *per limit*. ``clock`` returns seconds
    on a monotonic scale (injectable for tests).
    """

    def __init__(
        self,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_clients, bool) or not isinstance(max_clients, int):
            raise ConfigError(
                f"max_clients must be a whole number, got {max_clients!r}"
            )
        if max_clients < 1:
            raise ConfigError(f"max_clients must be >= 1, got {max_clients}")
        self.max_clients = max_clients
        self._clock = clock
        self._tables: dict[Limit, _Table] = {}
        self._forgotten = 0
        self._warned_at = -_WARN_EVERY

    def decide(self, key: ClientKey, charges: Sequence[tuple[Limit, int]]) -> Decision:
        """Charge ``key`` for one request: ``(limit, cost)`` for every limit that
        applies. All limits must have room; a refused request changes nothing."""
        now = self._clock()
        if len(charges) == 1:
            limit, cost = charges[0]
            return self._decide_one(key, limit, cost, now)
        frees: list[int] = []
        backlogs: list[float] = []
        tables: list[_Table] = []
        for limit, cost in charges:
            _check_cost(limit, cost)
            table = self._table(limit, now)
            tat = self._lookup(table, key, now)
            backlog = tat - now if tat > now else 0.0
            frees.append(
                _floor((limit.horizon - backlog) / limit.interval + UNIT_EPSILON)
            )
            backlogs.append(backlog)
            tables.append(table)
        decision = settle(charges, frees, backlogs)
        if decision.allowed:
            for table, verdict in zip(tables, decision.verdicts, strict=True):
                table.current[key] = now + verdict.reset
        return decision

    async def acquire(
        self, key: ClientKey, charges: Sequence[tuple[Limit, int]]
    ) -> Decision:
        """:meth:`decide`, as the awaitable every store offers."""
        return self.decide(key, charges)

    async def aclose(self) -> None:
        """Nothing to release; present so every store closes the same way."""

    def tracked(self, limit: Limit) -> int:
        """How many client keys ``limit`` holds right now (including idle ones)."""
        table = self._tables.get(limit)
        return 0 if table is None else len(table)

    # -- the hot path ---------------------------------------------------------------

    def _decide_one(
        self, key: ClientKey, limit: Limit, cost: int, now: float
    ) -> Decision:
        if cost < 1 or cost > limit.capacity:
            _check_cost(limit, cost)
        table = self._tables.get(limit)
        if table is None or now >= table.rotate_at:
            table = self._table(limit, now)
        tat = table.current.get(key)
        if tat is None:
            tat = self._lookup(table, key, now)
        interval = limit.interval
        backlog = tat - now if tat > now else 0.0
        free = _floor((limit.horizon - backlog) / interval + UNIT_EPSILON)
        if free >= cost:
            backlog += cost * interval
            table.current[key] = now + backlog
            verdict = Verdict(limit, True, free - cost, 0.0, backlog)
            return Decision(True, free - cost, 0.0, backlog, (verdict,))
        retry = backlog + cost * interval - limit.horizon
        retry = retry if retry > 0.0 else 0.0
        verdict = Verdict(limit, False, free if free > 0 else 0, retry, backlog)
        return Decision(False, verdict.remaining, retry, backlog, (verdict,))

    def _table(self, limit: Limit, now: float) -> _Table:
        table = self._tables.get(limit)
        if table is None:
            table = self._tables[limit] = _Table(limit.horizon, now)
        elif now >= table.rotate_at:
            table.rotate(now)
        return table

    def _lookup(self, table: _Table, key: ClientKey, now: float) -> float:
        """The TAT of ``key`` (``now`` if unknown), with ``key`` in *current*."""
        tat = table.current.get(key)
        if tat is not None:
            return tat
        tat = table.previous.pop(key, None)
        if tat is None:
            if len(table) >= self.max_clients:
                self._evict(table, now)
            tat = now
        # Present in *current* from now on, so recency follows use.
        table.current[key] = tat
        return tat

    def _evict(self, table: _Table, now: float) -> None:
        if not table.previous:
            table.previous = table.current
            table.current = {}
        table.previous.popitem()  # O(1): the newest of the older generation
        self._forgotten += 1
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(
                "memory store full: max_clients=%d reached, %d clients forgotten "
                "so far; raise max_clients or use Redis",
                self.max_clients,
                self._forgotten,
            )


def _check_cost(limit: Limit, cost: int) -> None:
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise ConfigError(f"cost must be a whole number >= 1, got {cost!r}")
    if cost > limit.capacity:
        raise ConfigError(
            f"cost {cost} can never fit limit {limit.name!r}: its capacity "
            f"(count + burst) is {limit.capacity}"
        )
