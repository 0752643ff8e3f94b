"""The transport an application protocol sees once the gate has accepted.

It is the real transport with two differences: ``peername`` (and the socket's
``getpeername()``, which uvicorn and hypercorn read first) report the real client,
and ``get_extra_info("realip")`` returns the :class:`ConnectionInfo`. Every other
method is the real transport's bound method, stored on the instance, so a
``write`` costs no extra Python call on the hot path.
"""

from __future__ import annotations

import asyncio
from typing import Any

from realip.policy import Action
from realip.proxyproto import ProxyHeader

#: The ``get_extra_info`` key under which realip's transports expose
#: :class:`ConnectionInfo`.
EXTRA_KEY = "realip"


class ConnectionInfo:
    """Who is on the other end of an accepted connection, and how we know.

    ``peer`` is the direct TCP peer, ``client`` the address to use (the header's
    source, or the peer), ``header`` the PROXY header with its TLVs (``None`` when
    none was used), ``action`` the policy action that applied to the peer, and
    ``local`` the listening side's address (looked up on first use).
    """

    __slots__ = ("_local", "_transport", "action", "client", "header", "peer")

    def __init__(
        self,
        peer: tuple[str, int],
        client: tuple[str, int],
        header: ProxyHeader | None,
        action: Action,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.peer = peer
        self.client = client
        self.header = header
        self.action = action
        self._transport = transport
        self._local: tuple[str, int] | bool | None = False

    @property
    def local(self) -> tuple[str, int] | None:
        if self._local is False:
            name = (
                None
                if self._transport is None
                else self._transport.get_extra_info("sockname")
            )
            self._local = (
                (str(name[0]), int(name[1]))
                if isinstance(name, tuple) and len(name) >= 2
                else None
            )
        return self._local  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"ConnectionInfo(peer={self.peer!r}, client={self.client!r}, "
            f"action={self.action.value}, header={self.header!r})"
        )


class SocketView:
    """A socket whose ``getpeername()`` is the real client; the rest delegates."""

    __slots__ = ("_client", "_sock")

    def __init__(self, sock: Any, client: tuple[str, int]) -> None:
        self._sock = sock
        self._client = client

    def getpeername(self) -> tuple[str, int]:
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return f"<SocketView client={self._client!r} of {self._sock!r}>"


_DELEGATED = (
    "abort",
    "can_write_eof",
    "close",
    "get_protocol",
    "get_write_buffer_limits",
    "get_write_buffer_size",
    "is_closing",
    "is_reading",
    "pause_reading",
    "resume_reading",
    "set_protocol",
    "set_write_buffer_limits",
    "write",
    "write_eof",
    "writelines",
)


class ClientTransport(asyncio.Transport):
    """Wraps an accepted connection's transport; see the module docstring."""

    __slots__ = ("_info", "_socket", "_transport", *_DELEGATED)

    def __init__(self, transport: asyncio.BaseTransport, info: ConnectionInfo) -> None:
        # BaseTransport.__init__ only sets _extra, which get_extra_info replaces.
        self._transport = transport
        self._info = info
        self._socket: SocketView | None = None
        for name in _DELEGATED:
            method = getattr(transport, name, None)
            if method is not None:
                setattr(self, name, method)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._info.client
        if name == "socket":
            if self._socket is None:
                sock = self._transport.get_extra_info("socket")
                if sock is None:
                    return default
                self._socket = SocketView(sock, self._info.client)
            return self._socket
        if name == EXTRA_KEY:
            return self._info
        return self._transport.get_extra_info(name, default)

    def __repr__(self) -> str:
        return f"<ClientTransport client={self._info.client!r} of {self._transport!r}>"
