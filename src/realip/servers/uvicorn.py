"""uvicorn behind the policy gate: the PROXY header is read before HTTP parsing.

uvicorn builds one protocol object per connection from ``config.http``, which
may be a callable. :func:`gated_config` puts :class:`UvicornGateProtocol` there:
it runs the gate, then builds uvicorn's own HTTP protocol (httptools or h11) and
hands it the transport, so uvicorn parses HTTP exactly as usual, with
``scope["client"]`` set to the real client. Each connection's
:class:`ConnectionInfo` (TLVs included) is added to the state uvicorn copies into
every request's ``scope["state"]``, under :data:`~realip.servers.asgi.STATE_KEY`.

Connections still waiting for their header are registered with uvicorn's
``server_state.connections``, so its graceful shutdown closes them too.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from realip.errors import ConfigError
from realip.policy import Policy
from realip.servers._protocol import GateProtocol, Pending
from realip.servers._transport import ConnectionInfo
from realip.servers.asgi import STATE_KEY

__all__ = ["UvicornGateProtocol", "gated_config", "http_protocol_class"]


def http_protocol_class(http: str | type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class for ``"auto"``, ``"h11"``, ``"httptools"``
    (or a class, returned as is)."""
    if not isinstance(http, str):
        return http
    if http not in HTTP_PROTOCOLS:
        choices = ", ".join(HTTP_PROTOCOLS)
        raise ConfigError(f"--http must be one of {choices}, got {http!r}")
    cls: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS[http])
    return cls


class UvicornGateProtocol(GateProtocol):
    """What uvicorn creates per connection; becomes ``inner_class`` once the
    gate accepts."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        policy: Policy,
        pending: Pending,
        inner_class: type[asyncio.Protocol],
    ) -> None:
        def make_inner(info: ConnectionInfo) -> asyncio.BaseProtocol:
            state = dict(app_state)
            state[STATE_KEY] = info
            return inner_class(  # type: ignore[call-arg]
                config=config, server_state=server_state, app_state=state, _loop=_loop
            )

        super().__init__(make_inner, policy, pending)
        self._connections: set[Any] = server_state.connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._gate is not None:
            self._connections.add(self)

    def _settle(self) -> None:
        super()._settle()
        self._connections.discard(self)

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: a connection without a decision yet has
        no request to finish, so it is closed now."""
        self._settle()
        if self._transport is not None:
            self._transport.close()


def gated_config(
    app: Any, *, policy: Policy, http: str = "auto", **kwargs: Any
) -> uvicorn.Config:
    """A :class:`uvicorn.Config` serving ``app`` behind ``policy``.

    ``kwargs`` go to :class:`uvicorn.Config`. uvicorn's own proxy-header handling
    is switched off: it would trust ``X-Forwarded-For`` from 127.0.0.1 by
    default; use :class:`~realip.servers.asgi.ForwardedMiddleware` instead.
    """
    if kwargs.get("ssl_keyfile") or kwargs.get("ssl_certfile"):
        raise ConfigError(
            "TLS is not supported behind the PROXY gate (the header precedes the "
            "TLS handshake); terminate TLS at the proxy"
        )
    kwargs["proxy_headers"] = False
    factory = functools.partial(
        UvicornGateProtocol,
        policy=policy,
        pending=Pending(),
        inner_class=http_protocol_class(http),
    )
    return uvicorn.Config(app, http=factory, **kwargs)  # type: ignore[arg-type]
