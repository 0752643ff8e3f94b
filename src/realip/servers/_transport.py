"""The transport an application protocol sees once the gate has accepted.

It is the real transport with two differences: ``peername`` (and the socket's
``getpeername()``, which uvicorn and hypercorn read first) report the real client,
and ``get_extra_info("realip")`` returns the :class:`ConnectionInfo`. Every other
method is the real transport's own bound method stored on the instance, so a
``write`` costs no extra Python call. The three that every HTTP connection calls
(``write``, ``close``, ``is_closing``) are bound when the view is made; the rest
on first use, so a connection pays only for what its protocol really calls.
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

    - ``peer``: the direct TCP peer.
    - ``client``: the address to use: the header's source, or the peer.
    - ``header``: the PROXY header the policy *used* (TLVs included), or ``None``.
      Only a header from a source allowed to send one lands here, so its fields
      and TLVs can be trusted and passed on.
    - ``ignored_header``: a header that arrived and was read and discarded
      (action ``ignore``), or ``None``. Its fields come from a source that is not
      trusted to send one: show it (diagnostics), never act on it. At most one of
      ``header`` and ``ignored_header`` is set.
    - ``action``: the policy action that applied to the peer.
    - ``local``: the listening side's address (looked up on first use).
    """

    __slots__ = (
        "_local",
        "_transport",
        "action",
        "client",
        "header",
        "ignored_header",
        "peer",
    )

    def __init__(
        self,
        peer: tuple[str, int],
        client: tuple[str, int],
        header: ProxyHeader | None,
        action: Action,
        transport: asyncio.BaseTransport | None = None,
        ignored_header: ProxyHeader | None = None,
    ) -> None:
        self.peer = peer
        self.client = client
        self.header = header
        self.action = action
        self.ignored_header = ignored_header
        self._transport = transport
        self._local: tuple[str, int] | bool | None = False

    @property
    def header_came(self) -> bool:
        """Whether a PROXY header arrived, used or ignored."""
        return self.header is not None or self.ignored_header is not None

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
        ignored = (
            ""
            if self.ignored_header is None
            else f", ignored_header={self.ignored_header!r}"
        )
        return (
            f"ConnectionInfo(peer={self.peer!r}, client={self.client!r}, "
            f"action={self.action.value}, header={self.header!r}{ignored})"
        )


class SocketView:
    """A socket whose ``getpeername()`` is the real client; the rest delegates."""

    __slots__ = ("_client", "_sock")

    def __init__(self, sock: Any, client: tuple[str, int]) -> None:
        self._sock = sock
        self._client = client

    def getpeername(self) -> tuple[str, int]:
        return self._client

    def getsockname(self) -> Any:
        # Spelled out: uvicorn calls it on every connection, and a direct
        # method is cheaper than the __getattr__ fallback.
        return self._sock.getsockname()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return f"<SocketView client={self._client!r} of {self._sock!r}>"


#: Bound on first use (see ClientTransport.__getattr__).
_LAZY = frozenset(
    {
        "abort",
        "can_write_eof",
        "get_protocol",
        "get_write_buffer_limits",
        "get_write_buffer_size",
        "is_reading",
        "pause_reading",
        "resume_reading",
        "set_protocol",
        "set_write_buffer_limits",
        "write_eof",
        "writelines",
    }
)


class ClientTransport(asyncio.Transport):
    """Wraps an accepted connection's transport; see the module docstring."""

    # One slot per delegated method. An empty slot shadows asyncio.Transport's
    # placeholder method, so the first access of a lazy one falls through to
    # __getattr__, which stores the real transport's bound method in the slot.
    # (That first access raises and catches an AttributeError: about as dear as
    # binding three methods, hence the eager three.)
    __slots__ = (
        "_info",
        "_socket",
        "_transport",
        "close",
        "is_closing",
        "write",
        *sorted(_LAZY),
    )

    def __init__(self, transport: Any, info: ConnectionInfo) -> None:
        # BaseTransport.__init__ only sets _extra, which get_extra_info replaces.
        self._transport = transport
        self._info = info
        self._socket: SocketView | None = None
        self.write = transport.write  # type: ignore[method-assign]
        self.close = transport.close  # type: ignore[method-assign]
        self.is_closing = transport.is_closing  # type: ignore[method-assign]

    def __getattr__(self, name: str) -> Any:
        if name in _LAZY:
            method = getattr(self._transport, name)
            setattr(self, name, method)
            return method
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}"
        )

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            sock = self._socket
            if sock is None:
                real = self._transport.get_extra_info("socket")
                if real is None:
                    return default
                sock = self._socket = SocketView(real, self._info.client)
            return sock
        if name == "peername":
            return self._info.client
        if name == EXTRA_KEY:
            return self._info
        return self._transport.get_extra_info(name, default)

    def __repr__(self) -> str:
        return f"<ClientTransport client={self._info.client!r} of {self._transport!r}>"
