"""ASGI middleware: refuse over-limit requests with 429 and say why.

The key is ``scope["client"][0]``. Deciding who the client really is (PROXY
protocol, forwarded headers from trusted proxies) is the trust policy's job and
happens before this middleware, which trusts the scope as given.

A refused request gets ``429 Too Many Requests`` (RFC 6585 §4) with

* ``Retry-After`` in delay-seconds (RFC 9110 §10.2.3), rounded up;
* ``RateLimit-Policy`` and ``RateLimit``, Structured Field lists as in
  draft-ietf-httpapi-ratelimit-headers-10 and later:
  ``RateLimit-Policy: "login";q=5;w=60`` and ``RateLimit: "login";r=0;t=12``.

For a GCRA limit, ``q`` is the capacity (count + burst, what may be spent at once)
and ``w`` the seconds an empty budget takes to refill, so ``q/w`` is the sustained
rate; ``5/minute`` is exactly ``q=5;w=60``. On a 429, ``RateLimit`` lists the limits
that refused, each with ``t`` = seconds until the request would fit, so that
``Retry-After`` (the largest) is never earlier than any ``t`` (the draft's
SHOULD). With ``headers_on_allowed``, allowed responses carry both fields for every
matching limit, ``t`` being the seconds until that budget is full again.

When the store is down and fails closed, the answer is ``503`` with
``Retry-After``: the client is not at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final

from realip.errors import StoreUnavailable
from realip.limiter._gcra import Decision, Limit, whole_seconds
from realip.limiter._keys import KeyPolicy
from realip.limiter._memory import MemoryStore
from realip.limiter._rules import Charges, Rule, RuleSet
from realip.limiter._store import Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("realip.limiter")

_REFUSED_BODY: Final = b"Too Many Requests\n"
_UNAVAILABLE_BODY: Final = b"Rate-limit store unavailable\n"
_UNAVAILABLE_RETRY: Final = b"1"


class RateLimitMiddleware:
    """Apply ``rules`` to every HTTP request, keyed by the client address.

    ``store`` defaults to a fresh :class:`MemoryStore`; ``keys`` to IPv6 /64
    aggregation with no exemptions. ``close_store`` closes the store when the
    ASGI lifespan shuts down (set it when the middleware owns the store).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        rules: RuleSet | Iterable[Rule],
        store: Store | None = None,
        keys: KeyPolicy | None = None,
        headers_on_allowed: bool = False,
        close_store: bool = False,
    ) -> None:
        self.app = app
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)
        self.store: Store = store if store is not None else MemoryStore()
        self.keys = keys if keys is not None else KeyPolicy()
        self.headers_on_allowed = headers_on_allowed
        self.close_store = close_store
        self._policies: dict[Charges, bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.close_store:
                await self.app(scope, receive, self._closing_send(send))
            else:
                await self.app(scope, receive, send)
            return

        host = _host(scope) if self.rules.needs_host else ""
        charges = self.rules.match(scope["path"], scope["method"], host)
        if not charges:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = self.keys.key(client[0] if client else None)
        if key is None:  # exempt network
            await self.app(scope, receive, send)
            return

        try:
            decision = await self.store.acquire(key, charges)
        except StoreUnavailable:
            await _respond(
                send, 503, _UNAVAILABLE_BODY, [(b"retry-after", _UNAVAILABLE_RETRY)]
            )
            return
        if not decision.allowed:
            await self._refuse(send, key, charges, decision)
            return
        if not self.headers_on_allowed or decision.degraded:
            await self.app(scope, receive, send)
            return

        extra = [
            (b"ratelimit-policy", self._policy(charges)),
            (b"ratelimit", _items(decision, refused_only=False)),
        ]

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_fields)

    async def _refuse(
        self, send: Send, key: object, charges: Charges, decision: Decision
    ) -> None:
        if log.isEnabledFor(logging.DEBUG):
            refused = ",".join(v.limit.name for v in decision.verdicts if not v.allowed)
            log.debug(
                "refused client=%s limits=%s retry_after=%.3f",
                key,
                refused,
                decision.retry_after,
            )
        headers = [
            (b"retry-after", str(whole_seconds(decision.retry_after)).encode()),
            (b"ratelimit-policy", self._policy(charges)),
            (b"ratelimit", _items(decision, refused_only=True)),
            # RFC 6585 §4: a 429 must not be stored by a cache.
            (b"cache-control", b"no-store"),
        ]
        await _respond(send, 429, _REFUSED_BODY, headers)

    def _policy(self, charges: Charges) -> bytes:
        value = self._policies.get(charges)
        if value is None:
            value = ", ".join(_policy_item(limit) for limit, _ in charges).encode()
            self._policies[charges] = value
        return value

    def _closing_send(self, send: Send) -> Send:
        async def closing_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.store.aclose()
            await send(message)

        return closing_send


def _policy_item(limit: Limit) -> str:
    # Names are restricted to token characters (see _rules.py), so quoting them as
    # an sf-string needs no escapes.
    return f'"{limit.name}";q={limit.capacity};w={whole_seconds(limit.horizon) or 1}'


def _items(decision: Decision, *, refused_only: bool) -> bytes:
    parts = []
    for verdict in decision.verdicts:
        if refused_only and verdict.allowed:
            continue
        wait = verdict.retry_after if refused_only else verdict.reset
        parts.append(
            f'"{verdict.limit.name}";r={verdict.remaining};t={whole_seconds(wait)}'
        )
    return ", ".join(parts).encode()


def _host(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host: str = value.decode("latin-1").lower()
            if host.startswith("["):
                return host[: host.find("]") + 1]
            return host.partition(":")[0]
    return ""


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
