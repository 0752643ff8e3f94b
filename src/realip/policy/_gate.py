"""The per-connection gate, sans-IO: bytes in, one :class:`Decision` out.

Theory of operation. A server creates one :class:`Gate` per accepted connection
and feeds it what arrives until it returns a decision, or tells it the peer
closed (:meth:`Gate.eof`) or the header timeout fired (:meth:`Gate.expired`). The
gate never does I/O and never waits longer than the bytes require:

- ``require``: the first bytes must be a complete, valid header (spec section 2:
  "MUST NOT start processing the connection before it receives a complete and
  valid PROXY protocol header").
- ``optional``, ``ignore``, ``reject``: :func:`~realip.proxyproto.sniff` decides
  from the first bytes. It asks for more only while every byte so far matches the
  start of the v2 signature or of ``PROXY ``; a first byte other than ``\\r`` or
  ``P`` (an HTTP method, a TLS record) rules a header out at once, so a client
  that speaks first is never delayed and its bytes are never taken for a header.
- ``deny``: refused before any byte.

An accepted decision carries the client address to use, the header (TLVs
included) and ``remaining``: the bytes after the header, untouched, which belong
to the application. Under ``ignore`` a header that came is read and discarded:
it is kept apart as ``ignored_header`` (for diagnostics), never as ``header``,
so that nothing downstream can mistake it for a header it may trust. A refused
decision carries ``reason``, one log line naming the source, the action, the
first bytes and the likely cause.
"""

from __future__ import annotations

from typing import NamedTuple, TypeGuard

from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.policy._rules import Action, Policy
from realip.proxyproto import V2_SIGNATURE, ProxyHeader, Sniff, decode, sniff

Buffer = bytes | bytearray | memoryview

_SHOW_LIMIT = 32

# Enum members as module globals: on Python 3.11 ``Action.REQUIRE`` is a class
# attribute lookup through the enum machinery, several times dearer than a
# global, and the gate checks a few of them on every connection.
_REQUIRE = Action.REQUIRE
_IGNORE = Action.IGNORE
_REJECT = Action.REJECT
_DENY = Action.DENY
_NOT_PROXY = Sniff.NOT_PROXY
_NEED_MORE = Sniff.NEED_MORE

#: The first byte of each header kind: ``\r`` opens the v2 signature (spec
#: section 2.2), ``P`` the v1 line's ``PROXY `` (section 2.1). Any other first
#: byte rules a header out at once, without the codec's sniff().
_V2_FIRST = V2_SIGNATURE[0]
_V1_FIRST = ord("P")

#: Well-known first bytes of traffic that is not a PROXY header, and what it
#: usually means when a header was required. Checked in order, only on refusal.
_HTTP_METHODS = (
    *(
        method + b" "
        for method in (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS")
    ),
    *(method + b" " for method in (b"PATCH", b"CONNECT", b"TRACE")),
    b"PRI * HTTP/2.0",  # the HTTP/2 connection preface (RFC 9113 section 3.4)
)
_PLAIN_HTTP = (
    "plain HTTP from {host} where a PROXY header is required: traffic that "
    "bypassed the load balancer (Kubernetes hairpin?)"
)
_TLS = (
    "TLS ClientHello from {host} where a PROXY header is required: TLS traffic that "
    "bypassed the load balancer, or a load balancer that does not send PROXY"
)
_SSH = "SSH banner from {host} where a PROXY header is required: an SSH client?"
_OTHER = "data from {host} that is not a PROXY header where one is required"


def _show(data: Buffer) -> str:
    raw = bytes(data[:_SHOW_LIMIT])
    return repr(raw)[1:] + ("..." if len(data) > _SHOW_LIMIT else "")


def _without_header_cause(data: Buffer) -> str:
    """Name what arrived instead of a required header (only runs on refusal)."""
    head = bytes(data[:16])
    if head.startswith(_HTTP_METHODS):
        return _PLAIN_HTTP
    if len(head) >= 2 and head[0] == 0x16 and head[1] == 0x03:
        return _TLS
    if head.startswith(b"SSH-"):
        return _SSH
    return _OTHER


class Decision(NamedTuple):
    """The gate's verdict on one connection (immutable).

    ``accepted`` connections go to the application with ``client`` (the header's
    source, or the peer) and ``remaining`` (the bytes that followed the header).
    ``header`` is the header the policy used (``None`` when none was);
    ``ignored_header`` is one that came and was discarded under ``ignore`` (its
    fields are untrusted: for display only). At most one of the two is set.
    Refused ones must be closed without an answer; ``reason`` is the log line.
    """

    accepted: bool
    client: tuple[str, int]
    header: ProxyHeader | None
    remaining: bytes
    reason: str | None
    action: Action
    peer: tuple[str, int]
    ignored_header: ProxyHeader | None = None

    def __repr__(self) -> str:
        if self.accepted:
            return (
                f"Decision(accepted, client={self.client!r}, "
                f"action={self.action.value}, header={self.header is not None}, "
                f"ignored_header={self.ignored_header is not None}, "
                f"remaining={len(self.remaining)})"
            )
        return f"Decision(refused, {self.reason!r})"


# Decisions are made with tuple.__new__ directly: one C call, where calling the
# class runs the generated Python __new__ (this happens once per connection).
_new = tuple.__new__


def _is_ipv4_peer(peer: object) -> TypeGuard[tuple[str, int]]:
    """An AF_INET socket's peername, the common case, usable as it is (an
    AF_INET6 one has four items and goes through :func:`peer_address`)."""
    return (
        type(peer) is tuple
        and len(peer) == 2
        and type(peer[0]) is str
        and type(peer[1]) is int
        and ":" not in peer[0]
    )


def peer_address(peer: object) -> tuple[str, int]:
    """A socket's peername as the ``(host, port)`` the policy and the logs use:
    a dual-stack socket's IPv4-mapped peer as IPv4, a Unix socket peer as
    ``("unix", 0)`` (or its path), which the rules' default covers."""
    if _is_ipv4_peer(peer):
        return peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]  # a dual-stack socket's IPv4 peer: report it as IPv4
        return (host, int(peer[1]))
    return (str(peer or "unix"), 0)


def _client_from(header: ProxyHeader, peer: tuple[str, int]) -> tuple[str, int]:
    """The header's source for PROXY over INET/INET6; the real endpoints for
    LOCAL (section 2.2: "must use the real connection endpoints"), UNKNOWN and
    UNSPEC (section 2.1: "use the real connection's parameters") and UNIX."""
    source = header.source
    if type(source) is not tuple:
        return peer
    host = source[0]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]  # IPv4-mapped: the same IPv4 client as everywhere else
    return (host, source[1])


def _refusal(
    peer: tuple[str, int], action: Action, cause: str, data: Buffer
) -> Decision:
    """A refused decision whose reason names the source, the action, what
    arrived (escaped, cut short) and ``cause`` (``{host}`` is replaced)."""
    host, port = peer
    cause = cause.replace("{host}", host)
    arrived = f"{len(data)} byte(s) {_show(data)}" if data else "no bytes"
    reason = (
        f"refused connection from {host}:{port} (action {action.value}, "
        f"{arrived}): {cause}"
    )
    return _new(Decision, (False, peer, None, b"", reason, action, peer, None))


def decide(
    policy: Policy, peer: tuple[str, int], action: Action, data: Buffer
) -> Decision | None:
    """The decision on a connection whose bytes so far are ``data``, or ``None``
    while more are needed. The stateless core of :meth:`Gate.feed`, for servers
    that keep the per-connection state themselves (``peer`` as
    :func:`peer_address` gives it, ``action`` as ``policy.action_for`` does) and
    create a :class:`Gate` only when the first bytes do not decide."""
    if data:
        first = data[0]
        if first != _V2_FIRST and first != _V1_FIRST:
            # Client data from its first byte, the common case: accepted right
            # here unless the action refuses it.
            if action is _REQUIRE or action is _DENY or type(data) is not bytes:
                return _decide_plain(peer, action, data)
            return _new(Decision, (True, peer, None, data, None, action, peer, None))
    kind = sniff(data)
    if kind is _NEED_MORE:
        return None
    if kind is _NOT_PROXY:
        return _decide_plain(peer, action, data)
    if action is _REJECT:
        return _refusal(
            peer,
            action,
            "PROXY header from {host}, which is not a trusted proxy: a spoofing "
            "attempt, or a proxy missing from the policy",
            data,
        )
    if action is _DENY:
        return _denied(peer)
    try:
        header = decode(data, max_size=policy.max_header_size)
    except IncompleteHeader:
        return None
    except ProxyProtocolError as exc:
        return _refusal(
            peer, action, "invalid PROXY header from {host}: " + str(exc), data
        )
    remaining = bytes(memoryview(data)[header.length :])
    if action is _IGNORE:
        # Read and discarded: the peer stays the client (the action's meaning:
        # "read and discard a header if one comes"); kept only for display.
        return _new(Decision, (True, peer, None, remaining, None, action, peer, header))
    client = _client_from(header, peer)
    return _new(Decision, (True, client, header, remaining, None, action, peer, None))


def _decide_plain(peer: tuple[str, int], action: Action, data: Buffer) -> Decision:
    """The decision when ``data`` is known not to be a header."""
    if action is _REQUIRE:
        return _refusal(peer, action, _without_header_cause(data), data)
    if action is _DENY:
        return _denied(peer)
    if type(data) is not bytes:
        data = bytes(data)
    return _new(Decision, (True, peer, None, data, None, action, peer, None))


def _denied(peer: tuple[str, int]) -> Decision:
    return _refusal(
        peer, _DENY, f"connections from {peer[0]} are denied by the policy", b""
    )


class Gate:
    """Decides one connection; see the module docstring. Not thread-safe, and
    not reusable: once a decision is returned, the gate is done."""

    __slots__ = ("_buffer", "action", "local", "peer", "policy")

    def __init__(
        self,
        policy: Policy,
        peer: tuple[str, int] | None,
        local: tuple[str, int] | None = None,
    ) -> None:
        self.policy = policy
        self.peer = peer_address(peer)
        self.local = local
        self.action: Action = policy.action_for(self.peer[0])
        self._buffer: bytearray | None = None

    @property
    def buffered(self) -> int:
        """How many bytes arrived without a decision yet."""
        return 0 if self._buffer is None else len(self._buffer)

    def at_connect(self) -> Decision | None:
        """A decision before any byte: only ``deny`` has one."""
        if self.action is _DENY:
            return _denied(self.peer)
        return None

    def feed(self, data: Buffer) -> Decision | None:
        """Add bytes; return the decision, or ``None`` while more are needed."""
        buffer = self._buffer
        if buffer is not None:
            buffer += data
            data = buffer
        decision = decide(self.policy, self.peer, self.action, data)
        if decision is None:
            # Bounded without a check here: sniff decides within 12 bytes, and
            # decode refuses a v1 line past 107 bytes and a v2 block over
            # max_header_size.
            if buffer is None:
                self._buffer = bytearray(data)
        else:
            self._buffer = None
        return decision

    def eof(self) -> Decision:
        """The peer closed its side before a decision."""
        data = self._buffer or b""
        self._buffer = None
        if not data:
            return self._refuse(
                "connection closed before any byte: a health check?", b""
            )
        if self.action is not _REQUIRE and sniff(data) is _NEED_MORE:
            # The bytes were a prefix of a signature, and no more will come: they
            # cannot be a header, so they are the client's own data.
            return _decide_plain(self.peer, self.action, data)
        return self._refuse(
            f"connection closed after {len(data)} byte(s), inside a PROXY header: "
            "a truncated header (the spec asks senders to send it at once)",
            data,
        )

    def expired(self) -> Decision:
        """The header timeout fired before a decision."""
        data = self._buffer or b""
        seconds = f"{self.policy.header_timeout:g} s"
        if not data:
            cause = (
                f"sent nothing for {seconds}: a client that waits for the server to "
                "speak first, or an idle probe?"
            )
        else:
            cause = (
                f"sent {len(data)} byte(s) then nothing for {seconds}: a slow client "
                "or a sender that waits for the server to speak first?"
            )
        return self._refuse(cause, data)

    def overloaded(self, pending: int) -> Decision:
        """Too many connections of this server are still waiting for a header."""
        return self._refuse(
            f"{pending} connections already waiting for their PROXY header "
            f"(limit {self.policy.max_pending}): a flood of silent connections?",
            b"",
        )

    def _refuse(self, cause: str, data: Buffer) -> Decision:
        self._buffer = None
        return _refusal(self.peer, self.action, cause, data)
