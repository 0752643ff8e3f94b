"""Refusal logging that a flood cannot turn into a log flood.

Each refused connection is worth one WARNING line, but an attacker (or a
misconfigured load balancer) can open thousands per second. A token bucket lets a
burst through, then one line per ``1 / rate`` seconds; the first line after a
suppressed stretch says how many were dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger("realip.policy")


class RefusalLog:
    """Rate-limited WARNING lines on ``realip.policy``; shared by a server's
    connections (the event loop is single-threaded, so no lock is needed)."""

    __slots__ = ("_clock", "_last", "_logger", "_tokens", "burst", "rate", "suppressed")

    def __init__(
        self,
        *,
        rate: float = 1.0,
        burst: int = 20,
        log: logging.Logger = logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.suppressed = 0
        self._logger = log
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def refused(self, reason: str) -> bool:
        """Log ``reason`` unless the bucket is empty; True when it was logged."""
        now = self._clock()
        tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if tokens < 1.0:
            self._tokens = tokens
            self.suppressed += 1
            return False
        self._tokens = tokens - 1.0
        if self.suppressed:
            self._logger.warning(
                "%d more refused connection(s) not logged (rate limit)", self.suppressed
            )
            self.suppressed = 0
        self._logger.warning("%s", reason)
        return True
