"""The store interface and the URL that picks one."""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Protocol

from realip.errors import ConfigError
from realip.limiter._gcra import Decision, Limit
from realip.limiter._keys import ClientKey
from realip.limiter._memory import DEFAULT_MAX_CLIENTS, MemoryStore


class Store(Protocol):
    """Where GCRA state lives. Both stores make the same decisions."""

    async def acquire(
        self, key: ClientKey, charges: Sequence[tuple[Limit, int]]
    ) -> Decision:
        """Charge ``key`` ``(limit, cost)`` for every limit; all or nothing."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


def open_store(
    url: str = "memory://",
    *,
    fail_open: bool = True,
    max_clients: int | None = None,
    flag: str = "url",
) -> Store:
    """The store ``url`` names.

    * ``memory://`` (``?max_clients=N``): this process only, see ``_memory.py``;
    * ``redis://``, ``rediss://``, ``unix://``, ``valkey://``, ``valkeys://``,
      ``redis+cluster://host:port[,host:port...]``: shared, see ``_redis.py``.

    ``fail_open`` is the Redis outage mode; ``max_clients`` bounds the memory
    store (overriding the URL). Bad URLs raise :class:`ConfigError` naming ``flag``.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "memory":
        from realip.limiter._redis import redis_store_from_url

        return redis_store_from_url(url, fail_open=fail_open, flag=flag)
    query = dict(urllib.parse.parse_qsl(parts.query))
    if max_clients is None:
        text = query.pop("max_clients", str(DEFAULT_MAX_CLIENTS))
        if not text.isdigit():
            raise ConfigError(
                f"{flag}: max_clients must be a whole number, got {text!r}"
            )
        max_clients = int(text)
    else:
        query.pop("max_clients", None)
    if query or parts.netloc or parts.path not in ("", "/"):
        raise ConfigError(f"{flag}: memory:// takes only ?max_clients=N, got {url!r}")
    try:
        return MemoryStore(max_clients=max_clients)
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}") from exc
