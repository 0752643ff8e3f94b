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

Per-connection cost: ``bench/serve_compare.py`` (requests per second and server
CPU per request against plain uvicorn, one connection per request in its
``close`` row) and ``bench/serve_icount.py`` (instructions per connection, steady
on a shared machine) measure it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from realip.errors import ConfigError
from realip.policy import Decision, Policy
from realip.servers._protocol import GateProtocol
from realip.servers._transport import AddressTransport, ConnectionInfo
from realip.servers.asgi import STATE_KEY

__all__ = ["UvicornGateProtocol", "gated_config", "http_protocol_class"]

_new = tuple.__new__  # ConnectionInfo without its Python-level __new__


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
    gate accepts. :func:`gated_config` makes the subclass for one server (policy,
    pending set, ``inner_class``), which uvicorn then calls as its
    ``http_protocol_class`` with its usual keyword arguments.

    uvicorn's protocol gets an :class:`~realip.servers._transport.AddressTransport`:
    ``peername`` is the real client, ``sockname`` the listening side, and there
    is no ``socket`` (uvicorn's address helpers then read those two; ASGI
    applications never see the transport)."""

    __slots__ = ("_app_state", "_config", "_connections", "_loop", "_server_state")

    inner_class: type[asyncio.Protocol]

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop
        # Registered at once, like uvicorn's own protocols: a connection waiting
        # for its header takes part in the graceful shutdown (see shutdown).
        self._connections: set[Any] = server_state.connections
        self._connections.add(self)

    def _settle(self) -> None:
        self._connections.discard(self)
        if self._waiting:
            self._waiting = False
            self.pending.pop(self, None)

    def _decide(self, decision: Decision, *, eof: bool = False) -> bool | None:
        # GateProtocol._decide and _hand_over in one, specialised (this runs once
        # per connection): uvicorn's protocols need neither the context variable
        # (they create no task in connection_made, and requests find their
        # connection in scope["state"]) nor the buffered-protocol delivery.
        # One unpacking instead of a descriptor lookup per field.
        accepted, client, header, remaining, _, action, peer, ignored = decision
        if not accepted:
            self._refuse(decision)
            return None
        self._connections.discard(self)
        self._waiting = False
        self.pending.pop(self, None)
        transport = self._transport
        # connection_info_of(), inlined
        info = _new(ConnectionInfo, (peer, client, header, action, transport, ignored))
        # uvicorn copies app_state into every request's scope["state"]: a copy
        # per connection carries this connection's info to each of its requests.
        state = self._app_state.copy()
        state[STATE_KEY] = info
        inner = self.inner_class(  # type: ignore[call-arg]
            config=self._config,
            server_state=self._server_state,
            app_state=state,
            _loop=self._loop,
        )
        transport.set_protocol(inner)
        inner.connection_made(AddressTransport(transport, info))
        if remaining:
            inner.data_received(remaining)
        if eof:
            return inner.eof_received()
        return None

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: a connection without a decision yet has
        no request to finish, so it is closed now."""
        self._settle()
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
    protocol_class = UvicornGateProtocol.serving(
        policy, inner_class=http_protocol_class(http)
    )
    return uvicorn.Config(app, http=protocol_class, **kwargs)
