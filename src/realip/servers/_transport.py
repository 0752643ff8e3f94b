"""The transport an application protocol sees once the gate has accepted.

It is the real transport with two differences: ``peername`` (and the socket's
``getpeername()``, which uvicorn and hypercorn read first) report the real client,
and ``get_extra_info("realip")`` returns the :class:`ConnectionInfo`. Every other
method goes to the real transport: the three that every HTTP connection calls
(``write``, ``close``, ``is_closing``) are the real transport's own bound
methods, stored on the view, so a ``write`` costs no extra Python call; the
rest delegate with one call each, and cost nothing until called.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from realip.policy import Action, Decision
from realip.proxyproto import ProxyHeader

#: The ``get_extra_info`` key under which realip's transports expose
#: :class:`ConnectionInfo`.
EXTRA_KEY = "realip"


class ConnectionInfo(NamedTuple):
    """Who is on the other end of an accepted connection, and how we know
    (immutable).

    - ``peer``: the direct TCP peer.
    - ``client``: the address to use: the header's source, or the peer.
    - ``header``: the PROXY header the policy *used* (TLVs included), or ``None``.
      Only a header from a source allowed to send one lands here, so its fields
      and TLVs can be trusted and passed on.
    - ``action``: the policy action that applied to the peer.
    - ``transport``: the connection's real transport (``None`` when unknown).
    - ``ignored_header``: a header that arrived and was read and discarded
      (action ``ignore``), or ``None``. Its fields come from a source that is not
      trusted to send one: show it (diagnostics), never act on it. At most one of
      ``header`` and ``ignored_header`` is set.
    """

    peer: tuple[str, int]
    client: tuple[str, int]
    header: ProxyHeader | None
    action: Action
    transport: asyncio.BaseTransport | None = None
    ignored_header: ProxyHeader | None = None

    @property
    def header_came(self) -> bool:
        """Whether a PROXY header arrived, used or ignored."""
        return self.header is not None or self.ignored_header is not None

    @property
    def local(self) -> tuple[str, int] | None:
        """The listening side's address, from the transport."""
        name = (
            None
            if self.transport is None
            else self.transport.get_extra_info("sockname")
        )
        if isinstance(name, tuple) and len(name) >= 2:
            return (str(name[0]), int(name[1]))
        return None

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


#: ``connection_info_of(decision, transport)`` without the Python-level
#: ``__new__`` that calling the class runs: an accepted connection's info is
#: made once per connection, on the hot path.
_new = tuple.__new__


def connection_info_of(decision: Decision, transport: Any) -> ConnectionInfo:
    """The :class:`ConnectionInfo` of a connection the gate accepted."""
    _, client, header, _, _, action, peer, ignored = decision
    return _new(ConnectionInfo, (peer, client, header, action, transport, ignored))


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


class ClientTransport(asyncio.Transport):
    """Wraps an accepted connection's transport; see the module docstring."""

    # The three methods every HTTP connection calls are the real transport's
    # bound methods, stored in slots when the view is made. The others are
    # ordinary delegating methods below: they cost a Python call each, but
    # nothing until called. (No __getattr__: a class with one has every
    # attribute access, write included, go through the slow generic path.)
    __slots__ = ("_info", "_socket", "_transport", "close", "is_closing", "write")

    def __init__(self, transport: Any, info: ConnectionInfo) -> None:
        # BaseTransport.__init__ only sets _extra, which get_extra_info replaces.
        self._transport = transport
        self._info = info
        self._socket: SocketView | None = None
        self.write = transport.write  # type: ignore[method-assign]
        self.close = transport.close  # type: ignore[method-assign]
        self.is_closing = transport.is_closing  # type: ignore[method-assign]

    def writelines(self, list_of_data: Any) -> None:
        self._transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return bool(self._transport.can_write_eof())

    def abort(self) -> None:
        self._transport.abort()

    def is_reading(self) -> bool:
        return bool(self._transport.is_reading())

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()  # type: ignore[no-any-return]

    def set_write_buffer_limits(
        self, high: int | None = None, low: int | None = None
    ) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return int(self._transport.get_write_buffer_size())

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()  # type: ignore[no-any-return]

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


class AddressTransport(ClientTransport):
    """A :class:`ClientTransport` for protocols that read only addresses from
    their transport, as uvicorn's do: its extra info is fixed when it is made
    (``peername`` the client, ``sockname`` the local ``(host, port)``, and
    ``realip``), and it has no ``socket``, so uvicorn's address helpers take
    their ``peername`` / ``sockname`` fallbacks. ``get_extra_info`` is then the
    bound ``get`` of a small dict: no Python call per lookup, and no socket view
    to build, on a path that runs once per connection. Any other name (there is
    no TLS behind the gate) gives the default, as a plain TCP transport does.
    """

    __slots__ = ("get_extra_info",)

    def __init__(self, transport: Any, info: ConnectionInfo) -> None:
        # ClientTransport.__init__, inlined (once per connection).
        self._transport = transport
        self._info = info
        self._socket = None
        self.write = transport.write  # type: ignore[method-assign]
        self.close = transport.close  # type: ignore[method-assign]
        self.is_closing = transport.is_closing  # type: ignore[method-assign]
        local = transport.get_extra_info("sockname")
        if type(local) is tuple and len(local) > 2:
            local = local[:2]  # AF_INET6's (host, port, flowinfo, scope_id)
        extras = {"peername": info.client, "sockname": local, EXTRA_KEY: info}
        self.get_extra_info = extras.get  # type: ignore[method-assign, assignment]
