"""ASGI: the real client from forwarded headers, and the PROXY header in a scope.

:class:`ForwardedMiddleware` replaces ``scope["client"]`` with the address that
``Forwarded`` / ``X-Forwarded-For`` / ``X-Real-IP`` give, only when the direct
peer is a trusted proxy (see :mod:`realip.policy.forwarded`). It changes the
scheme and the ``Host`` header only when asked to.

:func:`scope_connection` finds the :class:`ConnectionInfo` of the connection a
request came on, under ``realip serve`` (uvicorn: ``scope["state"]``) and under
the hypercorn helper or any server started with :func:`realip.servers.start_server`
(the :data:`~realip.servers.current_connection` context variable).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from realip.errors import ConfigError
from realip.policy import ForwardedResolver
from realip.servers._protocol import current_connection
from realip.servers._transport import ConnectionInfo

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The ``scope["state"]`` key under which ``realip serve`` puts the connection's
#: :class:`ConnectionInfo` (uvicorn copies the state into every request's scope).
STATE_KEY = "realip.connection"

_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def scope_connection(scope: Scope) -> ConnectionInfo | None:
    """The connection (peer, client, PROXY header and TLVs) a request came on,
    or ``None`` when it was not accepted through a realip gate."""
    state = scope.get("state")
    if state is not None:
        info = state.get(STATE_KEY)
        if info is not None:
            return info  # type: ignore[no-any-return]
    return current_connection.get()


class ForwardedMiddleware:
    """Set ``scope["client"]`` (and optionally scheme and host) from forwarded
    headers written by trusted proxies.

    ``scheme`` / ``host`` default to the resolver's ``use_scheme`` /
    ``use_host``. Non-HTTP scopes (lifespan) pass straight through.
    """

    def __init__(
        self,
        app: ASGIApp,
        resolver: ForwardedResolver,
        *,
        scheme: bool | None = None,
        host: bool | None = None,
    ) -> None:
        if not isinstance(resolver, ForwardedResolver):
            raise ConfigError(
                f"resolver must be a ForwardedResolver, got {type(resolver).__name__}"
            )
        self.app = app
        self.resolver = resolver
        self.set_scheme = resolver.use_scheme if scheme is None else scheme
        self.set_host = resolver.use_host if host is None else host
        self._extras = self.set_scheme or self.set_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            peer = scope.get("client")
            if peer is not None:
                resolved = self.resolver.resolve_headers(
                    peer[0], scope["headers"], want_scheme_host=self._extras
                )
                if resolved is not None:
                    scope["client"] = resolved.client
                    if self._extras:
                        self._apply_extras(scope, kind, resolved.scheme, resolved.host)
        await self.app(scope, receive, send)

    def _apply_extras(
        self, scope: Scope, kind: str, scheme: str | None, host: str | None
    ) -> None:
        if self.set_scheme and scheme is not None:
            table = _WS_SCHEMES if kind == "websocket" else _HTTP_SCHEMES
            scope["scheme"] = table[scheme]
        if self.set_host and host is not None:
            value = host.encode("latin-1", "replace")
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
            headers.append((b"host", value))
            scope["headers"] = headers
