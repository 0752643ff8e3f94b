"""Drop-in replacement for :func:`asyncio.start_server` that applies a policy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from realip.policy import Policy
from realip.servers._protocol import GateProtocol
from realip.servers._transport import EXTRA_KEY, ConnectionInfo

ClientConnected = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None
]

_STREAM_LIMIT = 2**16  # asyncio.streams' default buffer limit


async def start_server(
    client_connected_cb: ClientConnected,
    host: str | None = None,
    port: int | None = None,
    *,
    policy: Policy,
    limit: int = _STREAM_LIMIT,
    **kwargs: Any,
) -> asyncio.Server:
    """Like :func:`asyncio.start_server`, with ``policy`` applied first.

    ``client_connected_cb(reader, writer)`` runs only for accepted connections;
    ``writer.get_extra_info("peername")`` is the real client and
    :func:`connection_info` (or :data:`~realip.servers.current_connection` inside
    the callback) gives the header and its TLVs. Refused connections are closed
    without a byte and logged on ``realip.policy``. Other keyword arguments go to
    ``loop.create_server`` (``sock``, ``backlog``, ``reuse_port``...).
    """
    loop = asyncio.get_running_loop()

    def make_inner(self: GateProtocol, info: ConnectionInfo) -> asyncio.BaseProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    protocol_class = GateProtocol.serving(policy, make_inner=make_inner)
    return await loop.create_server(protocol_class, host, port, **kwargs)


def connection_info(writer_or_transport: Any) -> ConnectionInfo:
    """The :class:`ConnectionInfo` of a connection accepted through realip, from
    its ``StreamWriter`` or transport. Raises :class:`LookupError` for other
    connections."""
    info = writer_or_transport.get_extra_info(EXTRA_KEY)
    if not isinstance(info, ConnectionInfo):
        raise LookupError(
            f"{writer_or_transport!r} was not accepted through a realip policy gate"
        )
    return info
