"""Servers that apply the trust policy before the application sees a byte.

- :func:`start_server`: drop-in for :func:`asyncio.start_server`.
- :func:`wrap_protocol_factory`: the same for ``loop.create_server`` protocols.
- :func:`connection_info`: peer, real client, header (TLVs) of a connection.
- :class:`~realip.servers.asgi.ForwardedMiddleware`: ``scope["client"]`` from
  ``Forwarded``/``X-Forwarded-For`` when the direct peer is a trusted proxy.
- :mod:`realip.servers.uvicorn` and :mod:`realip.servers.hypercorn`: run an ASGI
  application behind the gate.
"""

from realip.servers._protocol import (
    GateProtocol,
    Pending,
    current_connection,
    wrap_protocol_factory,
)
from realip.servers._streams import connection_info, start_server
from realip.servers._transport import EXTRA_KEY, ClientTransport, ConnectionInfo

__all__ = [
    "EXTRA_KEY",
    "ClientTransport",
    "ConnectionInfo",
    "GateProtocol",
    "Pending",
    "connection_info",
    "current_connection",
    "start_server",
    "wrap_protocol_factory",
]
