"""GCRA state shared through Redis or Valkey (redis-py's asyncio client).

One script, ``gcra.lua`` (shipped in this package), reads the server's clock,
checks every limit of a request and writes the new state only if all of them
have room. Calls go out as ``EVALSHA``; a server that answers
``NOSCRIPT`` (restarted, failed over, a Cluster node that never saw the script)
gets the same call as ``EVAL``, which also caches the script there.

Keys are ``<prefix>:{<client>}:<limit name>``. The braces are a Cluster hash tag
(Redis Cluster specification, "Hash tags"): every limit of one client lives in one
slot, so the multi-key script is legal on a Cluster and the clients spread over
all nodes.

Auto-batching. Requests that arrive while a script call is in flight are decided
together by the next call, which takes them in arrival order (on a Cluster, one
call per hash slot, sent as one pipeline). A busy server thus pays one round trip
and one command per batch rather than per request; an idle one still sends at
once.

Outages. When Redis cannot be reached the store follows its mode: *fail open*
allows the request (the :class:`Decision` says ``degraded``), *fail closed* raises
:class:`~realip.errors.StoreUnavailable`. The outage is logged once when it starts
and once when it ends. During an outage Redis is tried again at most every
``retry_interval`` seconds; the first answer ends the outage, with no restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
import logging
import socket
import urllib.parse
from collections.abc import Sequence
from typing import Any, Final

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    NoScriptError,
    RedisClusterException,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from realip.errors import ConfigError, StoreUnavailable
from realip.limiter._gcra import Decision, Limit, Verdict, settle
from realip.limiter._keys import ClientKey
from realip.limiter._rules import Charges

log = logging.getLogger("realip.limiter")

SCRIPT: Final = (
    importlib.resources.files("realip.limiter").joinpath("gcra.lua").read_text()
)
SCRIPT_SHA: Final = hashlib.sha1(SCRIPT.encode()).hexdigest()

DEFAULT_PREFIX: Final = "realip:rl"
#: Seconds a request may wait for Redis before the fail mode decides it.
DEFAULT_TIMEOUT: Final = 1.0
DEFAULT_RETRY_INTERVAL: Final = 1.0

# Errors that mean "Redis is not there" rather than "this call was wrong".
_OUTAGE_ERRORS: Final = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    RedisClusterException,
)
_Pending = tuple[list[str], str, "asyncio.Future[list[int]]"]
#: Requests per script call: bounds how long one call holds the server.
_BATCH: Final = 256
_PLAN_CACHE: Final = 1024


class RedisStore:
    """GCRA state in Redis/Valkey, standalone or Cluster.

    ``client`` is a redis-py asyncio client (:class:`redis.asyncio.Redis` or
    :class:`~redis.asyncio.cluster.RedisCluster`); the store closes it in
    :meth:`aclose`. Use :func:`open_store` to build one from a URL.
    """

    def __init__(
        self,
        client: aioredis.Redis | RedisCluster,
        *,
        fail_open: bool = True,
        prefix: str = DEFAULT_PREFIX,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        label: str = "redis",
    ) -> None:
        if not retry_interval > 0:
            raise ConfigError(
                f"retry_interval must be > 0 seconds, got {retry_interval!r}"
            )
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        self.fail_open = fail_open
        self._prefix = prefix
        self._retry_interval = retry_interval
        self._label = label
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._outage_decisions = 0
        self._plans: dict[Charges, tuple[tuple[str, ...], str]] = {}

    async def acquire(
        self, key: ClientKey, charges: Sequence[tuple[Limit, int]]
    ) -> Decision:
        """Charge ``key`` for one request against every ``(limit, cost)``, atomically
        on the server; a refused request changes nothing. While Redis is down the
        fail mode decides (see the module docstring)."""
        loop = asyncio.get_running_loop()
        if self._down_since is not None and loop.time() < self._retry_at:
            return self._outage(charges)
        names, args = self._plan(charges)
        tag = f"{self._prefix}:{{{_client_text(key)}}}:"
        future: asyncio.Future[list[int]] = loop.create_future()
        self._pending.append(([tag + name for name in names], args, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="realip-limiter-redis")
        try:
            reply = await future
        except StoreUnavailable:
            return self._outage(charges)
        if len(charges) == 1:
            # The common case, without settle()'s generality.
            limit, cost = charges[0]
            free, backlog = reply[1], reply[2] / 1e6
            if reply[0]:
                reset = backlog + cost * limit.interval
                verdict = Verdict(limit, True, free - cost, 0.0, reset)
                return Decision(True, free - cost, 0.0, reset, (verdict,))
        return settle(charges, reply[1::2], [b / 1e6 for b in reply[2::2]])

    async def aclose(self) -> None:
        """Finish the batch in flight, then close the Redis client."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._client.aclose()

    @property
    def down(self) -> bool:
        """True while an outage is in progress."""
        return self._down_since is not None

    def _plan(
        self, charges: Sequence[tuple[Limit, int]]
    ) -> tuple[tuple[str, ...], str]:
        """Key suffixes and script input for ``charges`` (cached per tuple)."""
        plan = self._plans.get(charges) if isinstance(charges, tuple) else None
        if plan is None:
            words = [str(len(charges))]
            for limit, cost in charges:
                words += (
                    str(cost),
                    repr(limit.interval * 1e6),
                    repr(limit.horizon * 1e6),
                )
            plan = tuple(limit.name for limit, _ in charges), " ".join(words)
            if isinstance(charges, tuple) and len(self._plans) < _PLAN_CACHE:
                self._plans[charges] = plan
        return plan

    # -- batching ---------------------------------------------------------------------

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:_BATCH]
                del self._pending[:_BATCH]
                await self._send(batch)
        finally:
            self._flusher = None

    async def _send(self, batch: list[_Pending]) -> None:
        groups = self._groups(batch)
        try:
            replies = await self._call(groups, "EVALSHA", SCRIPT_SHA)
            again = [
                i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)
            ]
            if again:
                log.debug("script_missing sha=%s calls=%d", SCRIPT_SHA, len(again))
                retried = await self._call([groups[i] for i in again], "EVAL", SCRIPT)
                for i, reply in zip(again, retried, strict=True):
                    replies[i] = reply
        except _OUTAGE_ERRORS as exc:
            self._outage_started(exc)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(
                        StoreUnavailable(f"{self._label} unreachable: {exc}")
                    )
            return
        except BaseException:
            for _, _, future in batch:
                future.cancel()
            raise

        self._outage_ended()
        for group, reply in zip(groups, replies, strict=True):
            if isinstance(reply, Exception):
                error = StoreUnavailable(f"{self._label} refused the script: {reply}")
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(error)
                continue
            numbers = list(map(int, reply.split()))
            at = 0
            for keys, _, future in group:
                end = at + 1 + 2 * len(keys)
                if not future.done():  # else the request went away meanwhile
                    future.set_result(numbers[at:end])
                at = end

    def _groups(self, batch: list[_Pending]) -> list[list[_Pending]]:
        """One script call may only touch one Cluster slot: group by it there."""
        if not self._cluster:
            return [batch]
        slots: dict[int, list[_Pending]] = {}
        for pending in batch:
            slots.setdefault(key_slot(pending[0][0].encode()), []).append(pending)
        return list(slots.values())

    async def _call(
        self, groups: list[list[_Pending]], command: str, script: str
    ) -> list[Any]:
        """Run the script once per group; a reply or the server's error per group."""
        calls: list[tuple[str | int, ...]] = []
        for group in groups:
            keys: list[str] = []
            for pending_keys, _, _ in group:
                keys += pending_keys
            words = " ".join([pending[1] for pending in group])
            calls.append((command, script, len(keys), *keys, words))
        if len(calls) == 1 and not self._cluster:
            try:
                return [await self._client.execute_command(*calls[0])]
            except ResponseError as exc:
                return [exc]
        pipe = self._client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*call)
        return await pipe.execute(raise_on_error=False)

    # -- outages ----------------------------------------------------------------------

    def _outage(self, charges: Sequence[tuple[Limit, int]]) -> Decision:
        self._outage_decisions += 1
        if not self.fail_open:
            raise StoreUnavailable(
                f"{self._label} is unreachable and the limiter fails closed"
            )
        verdicts = tuple(
            Verdict(limit, True, limit.capacity - cost, 0.0, 0.0)
            for limit, cost in charges
        )
        remaining = min(v.remaining for v in verdicts)
        return Decision(True, remaining, 0.0, 0.0, verdicts, True)

    def _outage_started(self, exc: BaseException) -> None:
        now = asyncio.get_running_loop().time()
        self._retry_at = now + self._retry_interval
        if self._down_since is None:
            self._down_since = now
            self._outage_decisions = 0
            log.warning(
                "store=%s unreachable (%s: %s); failing %s until it answers",
                self._label,
                type(exc).__name__,
                exc,
                "open" if self.fail_open else "closed",
            )

    def _outage_ended(self) -> None:
        if self._down_since is None:
            return
        lasted = asyncio.get_running_loop().time() - self._down_since
        self._down_since = None
        log.warning(
            "store=%s reachable again after %.1fs; the fail mode made %d decisions "
            "meanwhile",
            self._label,
            lasted,
            self._outage_decisions,
        )


def _client_text(key: ClientKey) -> str:
    """The client part of a Redis key: dotted IPv4, ``6:<hex prefix>`` for an IPv6
    prefix, or the text key with the hash-tag braces taken out."""
    if isinstance(key, int):
        if key >= 0:
            return socket.inet_ntoa(key.to_bytes(4, "big"))
        return f"6:{~key:x}"
    return key.replace("{", "(").replace("}", ")")


# -- URLs ---------------------------------------------------------------------------

_STANDALONE: Final = {
    "redis": "redis",
    "rediss": "rediss",
    "unix": "unix",
    "valkey": "redis",
    "valkeys": "rediss",
}
_CLUSTER: Final = {
    "redis+cluster": False,
    "valkey+cluster": False,
    "rediss+cluster": True,
    "valkeys+cluster": True,
}
# Options of ours in the URL query; everything else goes to redis-py.
_OURS: Final = ("prefix", "retry_interval")


def redis_store_from_url(
    url: str,
    *,
    fail_open: bool = True,
    flag: str = "url",
    timeout: float = DEFAULT_TIMEOUT,
) -> RedisStore:
    """Build a :class:`RedisStore` for ``redis://``, ``rediss://``, ``unix://``,
    ``valkey://``, ``valkeys://`` or ``redis+cluster://host:port[,host:port...]``.

    ``?prefix=`` sets the key prefix and ``?retry_interval=`` the outage retry
    period; other query options (``socket_timeout``, ``db``...) go to redis-py.
    Nothing connects until the first decision.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OURS}
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k not in _OURS])
    try:
        retry_interval = float(ours.get("retry_interval", DEFAULT_RETRY_INTERVAL))
    except ValueError as exc:
        raise ConfigError(f"{flag}: bad retry_interval in {url!r}") from exc
    prefix = ours.get("prefix", DEFAULT_PREFIX)
    label = f"{scheme}://{parts.hostname or parts.path}"
    # One quick retry replaces a pooled connection that a Redis restart broke;
    # redis-py's default (3 retries, backoff from 1 s) would stall every request.
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1),
    }
    client: aioredis.Redis | RedisCluster
    try:
        if scheme in _STANDALONE:
            target = parts._replace(scheme=_STANDALONE[scheme], query=rest).geturl()
            client = aioredis.Redis.from_url(target, **common)
        elif scheme in _CLUSTER:
            client = _cluster(parts, rest, tls=_CLUSTER[scheme], common=common)
        else:
            raise ConfigError(
                f"{flag}: unsupported store URL {url!r}; use memory://, redis://, "
                "rediss://, unix://, valkey:// or redis+cluster://"
            )
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{flag}: bad store URL {url!r}: {exc}") from exc
    return RedisStore(
        client,
        fail_open=fail_open,
        prefix=prefix,
        retry_interval=retry_interval,
        label=label,
    )


def _cluster(
    parts: urllib.parse.SplitResult, query: str, *, tls: bool, common: dict[str, Any]
) -> RedisCluster:
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = []
    for item in filter(None, hosts.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"cluster node must be host:port, got {item!r}")
        nodes.append(ClusterNode(host.strip("[]"), int(port)))
    if not nodes:
        raise ValueError("no cluster nodes given")
    username, _, password = userinfo.partition(":")
    options: dict[str, Any] = dict(urllib.parse.parse_qsl(query))
    for name in ("socket_timeout", "socket_connect_timeout"):
        if name in options:
            common[name] = float(options.pop(name))
    if options:
        raise ValueError(f"unsupported cluster option {sorted(options)[0]!r}")
    return RedisCluster(
        startup_nodes=nodes,
        username=urllib.parse.unquote(username) or None,
        password=urllib.parse.unquote(password) or None,
        ssl=tls,
        **common,
    )
