"""GCRA, the generic cell rate algorithm, as one pure function.

Theory of operation
-------------------
A limit of ``count`` requests per ``period`` seconds with ``burst`` extra requests
keeps one number per client: the *theoretical arrival time* (TAT), the instant at
which the client's budget would be back to full if it sent nothing more. Every
request of cost ``c`` pushes the TAT ``c`` *emission intervals* into the future,
starting from ``max(TAT, now)``; a request is refused when that would put the TAT
more than one *horizon* ahead of now. Nothing drips, nothing is swept: an idle
client's TAT simply falls into the past (Brandur Leach, "Rate Limiting, Cells, and
GCRA", 2015; redis-cell's ``CL.THROTTLE`` computes the same thing).

With ``N = count``, ``B = burst`` and ``T = period / N`` (the emission interval):

* ``capacity = N + B`` units can be spent at once by an idle client;
* after that, exactly one unit comes back every ``T`` seconds;
* ``horizon = capacity * T`` is the time an empty budget takes to refill.

So ``5/minute`` lets 5 requests through at once and then one every 12 s;
``5/minute, burst=3`` lets 8 through at once and then one every 12 s. This is
nginx's ``limit_req ... burst=B nodelay`` reading of *burst*: B requests beyond
the rate are served at once instead of being refused. nginx meters its rate per
request (``rate=R r/s`` holds one request per 1/R s), so nginx's
``rate=1r/s burst=3 nodelay`` is exactly ``Limit(1, 1.0, burst=3)`` here: 4 at
once, then one per second. redis-cell's ``max_burst`` is ``capacity - 1``.

A request of cost ``c`` needs ``c`` whole units; a refused request changes no
state, so a client that keeps retrying too early never digs itself deeper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, NamedTuple

from realip.errors import ConfigError

#: Tolerance, in units of quota, for floating-point rounding. State in Redis is
#: rounded to whole microseconds and the clock is a float, so ``k * T`` may come
#: back a hair above or below itself; without this a budget could read ``N - 1``
#: where ``N`` is due.
UNIT_EPSILON: Final = 1e-6

#: The draft RateLimit fields and RFC 9110 ``delay-seconds`` carry whole seconds;
#: values are rounded up after taking this much float noise off.
_SECOND_EPSILON: Final = 1e-6

#: The units ``--limit`` accepts, in seconds.
PERIODS: Final = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


class Limit:
    """``count`` requests per ``period`` seconds, plus ``burst`` at once.

    Limits compare and hash by identity: two rules that both say ``10/minute``
    keep separate budgets. ``name`` identifies the limit in the RateLimit header
    fields and in Redis keys, so replicas sharing a store must use the same names.
    """

    __slots__ = ("burst", "capacity", "count", "horizon", "interval", "name", "period")

    def __init__(
        self, count: int, period: float, *, burst: int = 0, name: str = "limit"
    ) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"limit count must be a whole number >= 1, got {count!r}")
        if not 0 < period < math.inf:
            raise ConfigError(f"limit period must be > 0 seconds, got {period!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
            raise ConfigError(f"limit burst must be a whole number >= 0, got {burst!r}")
        self.count = count
        self.period = float(period)
        self.burst = burst
        self.name = name
        #: T, the emission interval: one unit of quota comes back every T seconds.
        self.interval = self.period / count
        #: N + B: the units an idle client may spend at once.
        self.capacity = count + burst
        #: capacity * T: how long an empty budget takes to refill.
        self.horizon = self.capacity * self.interval

    def __repr__(self) -> str:
        burst = f", burst={self.burst}" if self.burst else ""
        return f"Limit({self.count}, {self.period:g}{burst}, name={self.name!r})"


class Verdict(NamedTuple):
    """One limit's part in the decision on one request (times in seconds).

    ``allowed`` says whether this limit alone had room. ``remaining`` is the whole
    units left after the request, or, when the request was refused (by this or
    another limit), the units free now. ``retry_after`` is 0 when this limit had
    room, else the wait until the request's cost fits. ``reset`` is the wait until
    this limit's budget is full again.
    """

    limit: Limit
    allowed: bool
    remaining: int
    retry_after: float
    reset: float


class Decision(NamedTuple):
    """The decision on one request against every limit that applies to it.

    ``allowed`` only when every limit had room; a refused request consumed
    nothing. ``remaining`` is the smallest of the limits' remaining units,
    ``retry_after`` the longest wait any limit asks for (0 when allowed) and
    ``reset`` the longest wait until every budget is full. ``verdicts`` has one
    entry per limit, in the order the limits were given. ``degraded`` is true
    when the store could not be asked and its fail-open mode allowed the request;
    the numbers are then the full budgets, not measurements.
    """

    allowed: bool
    remaining: int
    retry_after: float
    reset: float
    verdicts: tuple[Verdict, ...]
    degraded: bool = False


def free_units(backlog: float, limit: Limit) -> int:
    """Whole units free when the TAT lies ``backlog`` seconds ahead of now."""
    return math.floor((limit.horizon - backlog) / limit.interval + UNIT_EPSILON)


def gcra(tat: float, now: float, limit: Limit, cost: int = 1) -> tuple[Verdict, float]:
    """Decide one request of ``cost`` units against ``limit`` at time ``now``.

    ``tat`` is the stored theoretical arrival time; pass ``now`` (or anything
    earlier) for a client never seen or long idle. Returns the verdict and the
    TAT to store, which is ``tat`` itself when the request is refused.
    """
    backlog = tat - now if tat > now else 0.0
    free = free_units(backlog, limit)
    if free >= cost:
        backlog += cost * limit.interval
        return Verdict(limit, True, free - cost, 0.0, backlog), now + backlog
    retry = backlog + cost * limit.interval - limit.horizon
    return Verdict(limit, False, max(free, 0), max(retry, 0.0), backlog), tat


def settle(
    charges: Sequence[tuple[Limit, int]],
    frees: Sequence[int],
    backlogs: Sequence[float],
) -> Decision:
    """Combine per-limit state into one all-or-nothing decision.

    ``frees[i]`` and ``backlogs[i]`` describe limit ``i`` *before* this request
    (as :func:`free_units` and ``max(TAT - now, 0)``). The request is allowed only
    if every limit has at least its cost free; the caller commits the new TATs
    (``now + backlog + cost * T``) only in that case.
    """
    allowed = all(free >= cost for (_, cost), free in zip(charges, frees, strict=True))
    verdicts = []
    for (limit, cost), free, backlog in zip(charges, frees, backlogs, strict=True):
        if allowed:
            verdict = Verdict(
                limit, True, free - cost, 0.0, backlog + cost * limit.interval
            )
        elif free >= cost:
            verdict = Verdict(limit, True, free, 0.0, backlog)
        else:
            retry = backlog + cost * limit.interval - limit.horizon
            verdict = Verdict(limit, False, max(free, 0), max(retry, 0.0), backlog)
        verdicts.append(verdict)
    return Decision(
        allowed,
        min(v.remaining for v in verdicts),
        max(v.retry_after for v in verdicts),
        max(v.reset for v in verdicts),
        tuple(verdicts),
    )


def whole_seconds(seconds: float) -> int:
    """``seconds`` rounded up to an integer for ``delay-seconds`` header values."""
    return max(0, math.ceil(seconds - _SECOND_EPSILON))
