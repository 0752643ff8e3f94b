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

from typing import TypeGuard

from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.policy._rules import Action, Policy
from realip.proxyproto import ProxyHeader, Sniff, decode, sniff

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


class Decision:
    """The gate's verdict on one connection.

    ``accepted`` connections go to the application with ``client`` (the header's
    source, or the peer) and ``remaining`` (the bytes that followed the header).
    ``header`` is the header the policy used (``None`` when none was);
    ``ignored_header`` is one that came and was discarded under ``ignore`` (its
    fields are untrusted: for display only). At most one of the two is set.
    Refused ones must be closed without an answer; ``reason`` is the log line.
    """

    __slots__ = (
        "accepted",
        "action",
        "client",
        "header",
        "ignored_header",
        "peer",
        "reason",
        "remaining",
    )

    def __init__(
        self,
        accepted: bool,
        client: tuple[str, int],
        header: ProxyHeader | None,
        remaining: bytes,
        reason: str | None,
        action: Action,
        peer: tuple[str, int],
        ignored_header: ProxyHeader | None = None,
    ) -> None:
        self.accepted = accepted
        self.client = client
        self.header = header
        self.remaining = remaining
        self.reason = reason
        self.action = action
        self.peer = peer
        self.ignored_header = ignored_header

    def __repr__(self) -> str:
        if self.accepted:
            return (
                f"Decision(accepted, client={self.client!r}, "
                f"action={self.action.value}, header={self.header is not None}, "
                f"ignored_header={self.ignored_header is not None}, "
                f"remaining={len(self.remaining)})"
            )
        return f"Decision(refused, {self.reason!r})"


def _is_ipv4_peer(peer: object) -> TypeGuard[tuple[str, int]]:
    """An AF_INET socket's peername, the common case, usable as it is (an
    AF_INET6 one has four items and goes through :func:`_peer_tuple`)."""
    return (
        type(peer) is tuple
        and len(peer) == 2
        and type(peer[0]) is str
        and type(peer[1]) is int
        and ":" not in peer[0]
    )


def _peer_tuple(peer: object) -> tuple[str, int]:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]  # a dual-stack socket's IPv4 peer: report it as IPv4
        return (host, int(peer[1]))
    # A Unix socket peer (often ''): no address; the rules' default applies.
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
        self.peer = peer if _is_ipv4_peer(peer) else _peer_tuple(peer)
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
            host = self.peer[0]
            return self._refuse(
                f"connections from {host} are denied by the policy", b""
            )
        return None

    def feed(self, data: Buffer) -> Decision | None:
        """Add bytes; return the decision, or ``None`` while more are needed."""
        buffer = self._buffer
        if buffer is not None:
            buffer += data
            data = buffer
        action = self.action
        kind = sniff(data)
        if kind is _NOT_PROXY:
            if action is _REQUIRE:
                return self._refuse(_without_header_cause(data), data)
            if action is _DENY:
                return self.at_connect()
            # Client data from the first byte (the common case): _accept inlined.
            self._buffer = None
            peer = self.peer
            if type(data) is not bytes:
                data = bytes(data)
            return Decision(True, peer, None, data, None, action, peer)
        if kind is _NEED_MORE:
            self._keep(data)
            return None
        if action is _REJECT:
            return self._refuse(
                "PROXY header from {host}, which is not a trusted proxy: a spoofing "
                "attempt, or a proxy missing from the policy",
                data,
            )
        if action is _DENY:
            return self.at_connect()
        try:
            header = decode(data, max_size=self.policy.max_header_size)
        except IncompleteHeader:
            self._keep(data)
            return None
        except ProxyProtocolError as exc:
            return self._refuse("invalid PROXY header from {host}: " + str(exc), data)
        if action is _IGNORE:
            # Read and discarded: the peer stays the client (issue text: "read
            # and discard a header if one comes"); kept only for display.
            decision = self._accept(self.peer, None, data, header.length)
            decision.ignored_header = header
            return decision
        return self._accept(
            _client_from(header, self.peer), header, data, header.length
        )

    def eof(self) -> Decision:
        """The peer closed its side before a decision."""
        data = self._buffer or b""
        if not data:
            return self._refuse(
                "connection closed before any byte: a health check?", b""
            )
        if self.action is not _REQUIRE and sniff(data) is _NEED_MORE:
            # The bytes were a prefix of a signature, and no more will come: they
            # cannot be a header, so they are the client's own data.
            return self._accept(self.peer, None, data, 0)
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

    # -- helpers -----------------------------------------------------------------

    def _keep(self, data: Buffer) -> None:
        # Bounded without a check here: sniff decides within 12 bytes, and decode
        # refuses a v1 line past 107 bytes and a v2 block over max_header_size.
        if self._buffer is None:
            self._buffer = bytearray(data)

    def _accept(
        self,
        client: tuple[str, int],
        header: ProxyHeader | None,
        data: Buffer,
        offset: int,
    ) -> Decision:
        if offset == 0:
            remaining = data if type(data) is bytes else bytes(data)
        else:
            remaining = bytes(memoryview(data)[offset:])
        self._buffer = None
        return Decision(True, client, header, remaining, None, self.action, self.peer)

    def _refuse(self, cause: str, data: Buffer) -> Decision:
        host, port = self.peer
        cause = cause.replace("{host}", host)
        arrived = f"{len(data)} byte(s) {_show(data)}" if data else "no bytes"
        reason = (
            f"refused connection from {host}:{port} (action {self.action.value}, "
            f"{arrived}): {cause}"
        )
        self._buffer = None
        return Decision(False, self.peer, None, b"", reason, self.action, self.peer)
