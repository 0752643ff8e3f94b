"""An asyncio protocol that runs the gate before the application protocol.

Theory of operation. :class:`GateProtocol` is what the event loop creates for
each accepted connection. It registers itself as *pending* (which also puts it
under the server's one header-timeout timer) and decides from the bytes that
arrive (:func:`~realip.policy.decide`, and a :class:`~realip.policy.Gate` when
they come in pieces). On a refusal it logs the reason (rate-limited)
and closes the connection without writing a byte. On acceptance it builds the
application protocol, hands the real transport over to it
(``transport.set_protocol``, so later reads go straight to the application with
no detour through this class), calls its ``connection_made`` with a
:class:`ClientTransport` that reports the real client, and delivers the bytes
that followed the header.

Everything that is the same for every connection of a server (the policy, the
pending set, how to build the application protocol) lives on a per-server
subclass made by :meth:`GateProtocol.serving`, so the loop can call that class
directly as its protocol factory and a connection allocates only what is its
own: the decision, its :class:`ConnectionInfo` and the transport view.

:data:`current_connection` holds the :class:`ConnectionInfo` while the
application protocol's ``connection_made`` runs, so tasks it creates (the
``asyncio.start_server`` callback, hypercorn's connection task) copy it into their
context.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from realip.policy import Action, Decision, Gate, Policy, decide, peer_address
from realip.servers._transport import (
    ClientTransport,
    ConnectionInfo,
    connection_info_of,
)

logger = logging.getLogger("realip.servers")

_DENY = Action.DENY  # a global: cheaper than the enum lookup, once per connection

#: The accepted connection whose application code is running (see module doc).
current_connection: contextvars.ContextVar[ConnectionInfo | None] = (
    contextvars.ContextVar("realip_connection", default=None)
)


class Pending(dict["GateProtocol", float]):
    """Connections of one server still waiting for a decision, oldest first,
    each mapped to its deadline (event-loop time).

    One timer serves them all instead of one per connection: every connection
    of a server has the same header timeout, so insertion order is deadline
    order, and only the oldest deadline needs a timer. That keeps the accept
    path to a dict insert and a dict delete (``pop``); ``len()`` is how many
    wait. A dict subclass, so both are C calls on the accept path.
    """

    #: Expire a little early rather than re-arm for a deadline a hair away
    #: (event-loop clocks round to the millisecond).
    _SLACK = 0.002

    def __init__(self) -> None:
        super().__init__()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def count(self) -> int:
        return len(self)

    def add(self, protocol: GateProtocol, timeout: float) -> None:
        loop = self._loop
        if self._timer is None or loop.is_closed():  # type: ignore[union-attr]
            # The loop is looked up only when arming the timer (also after the
            # loop that had it closed): get_running_loop() costs a getpid()
            # system call, and a server's connections all share its loop.
            loop = self._loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            self._timer = loop.call_at(deadline, self._sweep)
        else:
            deadline = loop.time() + timeout  # type: ignore[union-attr]
        self[protocol] = deadline

    def discard(self, protocol: GateProtocol) -> None:
        self.pop(protocol, None)

    def _sweep(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        limit = loop.time() + self._SLACK
        expired = []
        for protocol, deadline in self.items():
            if deadline > limit:
                self._timer = loop.call_at(deadline, self._sweep)
                break
            expired.append(protocol)
        for protocol in expired:
            protocol.expire()

    def __repr__(self) -> str:
        return f"<Pending {len(self)} connection(s)>"


class GateProtocol(asyncio.Protocol):
    """Applies the server's policy to one connection, then hands it over to
    the application protocol (:meth:`_hand_over`; by default the one that
    :meth:`make_inner` builds).

    Not used directly: :meth:`serving` makes the class for one server. A
    :class:`~realip.policy.Gate` is created only when the first bytes do not
    decide (a header split across reads, the peer's EOF, the timeout): the
    common case is one :func:`~realip.policy.decide` call.
    """

    __slots__ = ("_action", "_gate", "_peer", "_transport", "_waiting")

    #: Set on the per-server subclass by :meth:`serving`.
    policy: ClassVar[Policy]
    pending: ClassVar[Pending]
    #: Whether :data:`current_connection` is set around the application
    #: protocol's ``connection_made`` (for tasks created there).
    publish_context: ClassVar[bool] = True

    # No __init__: the loop calls connection_made first, which sets every slot
    # (and a subclass's __init__ takes what its server passes).
    _transport: Any
    _peer: tuple[str, int]
    _action: Action
    _gate: Gate | None
    _waiting: bool

    @classmethod
    def serving(cls, policy: Policy, **members: Any) -> type[GateProtocol]:
        """A subclass for one server: ``policy``, a fresh :class:`Pending`, and
        ``members`` (methods or class attributes, such as ``make_inner``)."""
        namespace = {"__slots__": (), "policy": policy, "pending": Pending()}
        namespace.update(members)
        return type(cls.__name__, (cls,), namespace)

    def make_inner(self, info: ConnectionInfo) -> asyncio.BaseProtocol:
        """The application protocol for an accepted connection."""
        raise NotImplementedError

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Runs for every connection, so calls are inlined where they are cheap
        # checks (a Python call costs as much as several lines here).
        self._transport = transport
        self._gate = None
        # The local address is looked up only if someone asks (ConnectionInfo).
        peer = transport.get_extra_info("peername")
        if type(peer) is not tuple or len(peer) != 2 or ":" in str(peer[0]):
            peer = peer_address(peer)  # not an AF_INET (host, port): normalise
        self._peer = peer
        policy = self.policy
        host = peer[0]
        action = policy.action_cache.get(host) or policy.action_for(host)
        self._action = action
        pending = self.pending
        if action is _DENY or len(pending) >= policy.max_pending:
            self._waiting = False
            gate = Gate(policy, peer)
            self._refuse(gate.at_connect() or gate.overloaded(len(pending)))
            return
        self._waiting = True
        loop = pending._loop
        if pending._timer is None or loop.is_closed():  # type: ignore[union-attr]
            pending.add(self, policy.header_timeout)  # also arms the timer
        else:
            pending[self] = loop.time() + policy.header_timeout  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if not self._waiting:
            return  # refused and closing: drop whatever is still in flight
        gate = self._gate
        if gate is None:
            decision = decide(self.policy, self._peer, self._action, data)
            if decision is None:
                # Not decided by the first bytes: a Gate keeps them from now on.
                gate = self._gate = Gate(self.policy, self._peer)
                gate.feed(data)
                return
        else:
            decision = gate.feed(data)
            if decision is None:
                return
        self._decide(decision)

    def eof_received(self) -> bool | None:
        if not self._waiting:
            return None
        return self._decide(self._the_gate().eof(), eof=True)

    def connection_lost(self, exc: Exception | None) -> None:
        # Only reached before a decision (afterwards the application protocol
        # owns the transport).
        self._settle()

    # -- decisions -----------------------------------------------------------------

    def expire(self) -> None:
        """The header timeout passed (called by :class:`Pending`)."""
        if self._waiting:
            self._decide(self._the_gate().expired())

    def _the_gate(self) -> Gate:
        gate = self._gate
        if gate is None:
            gate = self._gate = Gate(self.policy, self._peer)
        return gate

    def _settle(self) -> None:
        if self._waiting:
            self._waiting = False
            self.pending.pop(self, None)

    def _refuse(self, decision: Decision) -> None:
        self._settle()
        self.policy.refusals.refused(decision.reason or "refused")
        self._transport.close()

    def _decide(self, decision: Decision, *, eof: bool = False) -> bool | None:
        if not decision.accepted:
            self._refuse(decision)
            return None
        self._settle()
        transport = self._transport
        info = connection_info_of(decision, transport)
        return self._hand_over(transport, info, decision.remaining, eof)

    def _hand_over(
        self, transport: Any, info: ConnectionInfo, data: bytes, eof: bool
    ) -> bool | None:
        """Give the accepted connection to the application protocol: the real
        transport's reads, a :class:`ClientTransport`, then ``data`` (the bytes
        after the header) and the peer's EOF if it came with them."""
        inner = self.make_inner(info)
        transport.set_protocol(inner)
        if self.publish_context:
            token = current_connection.set(info)
            try:
                inner.connection_made(ClientTransport(transport, info))
            finally:
                current_connection.reset(token)
        else:
            inner.connection_made(ClientTransport(transport, info))
        if data:
            self.deliver(inner, data)
        if eof and isinstance(inner, asyncio.Protocol | asyncio.BufferedProtocol):
            return inner.eof_received()
        return None

    @staticmethod
    def deliver(inner: Any, data: bytes) -> None:
        """Give ``data`` to the application protocol as the loop would."""
        if isinstance(inner, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view:
                buffer = memoryview(inner.get_buffer(len(view)))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                inner.buffer_updated(size)
                view = view[size:]
        elif isinstance(inner, asyncio.Protocol):
            inner.data_received(data)


InnerFactory = Callable[[], asyncio.BaseProtocol]


def wrap_protocol_factory(
    factory: InnerFactory, policy: Policy
) -> Callable[[], GateProtocol]:
    """A protocol factory for ``loop.create_server`` that applies ``policy``
    before ``factory``'s protocols see a byte. The protocol's transport reports
    the real client as ``peername``; ``get_extra_info("realip")`` gives the
    :class:`ConnectionInfo` (header and TLVs included)."""

    def make_inner(self: GateProtocol, info: ConnectionInfo) -> asyncio.BaseProtocol:
        return factory()

    return GateProtocol.serving(policy, make_inner=make_inner)
