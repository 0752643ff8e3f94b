"""One client connection, done the way an ``nc`` experiment would: connect, send a
header and a payload at once, then read until the answer is complete, the peer
closes or resets, or time runs out.

Blocking sockets on purpose: the diagnostics run one connection at a time from a
command line, and a plain ``recv`` with a timeout reports a close, a reset and a
silence exactly as the kernel saw them. What "complete" means depends on what was
sent, so a *framing* object decides it: a quiet gap after the first bytes (raw TCP),
the end of an HTTP response, or the end of a TLS handshake.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httptools

from realip.errors import ConfigError

log = logging.getLogger("realip.diagnostics")

#: The most response bytes kept per connection; the rest is read and dropped.
MAX_KEEP = 1 << 20


class Outcome(enum.Enum):
    """How the endpoint first answered a connection."""

    RESPONSE = "response"  # bytes came back
    CLOSE = "close"  # an orderly close (FIN) before any byte
    RESET = "reset"  # a reset (RST) before any byte
    TIMEOUT = "timeout"  # nothing within the time limit
    UNREACHABLE = "unreachable"  # the connection could not be made
    SKIPPED = "skipped"  # not tried: the overall time limit was spent


class Ending(enum.Enum):
    """How reading stopped after the first bytes of a response."""

    COMPLETE = "complete"  # the framing saw a whole answer
    CLOSE = "close"
    RESET = "reset"
    QUIET = "quiet"  # no more bytes for a while (raw TCP)
    TIMEOUT = "timeout"


class Framing(Protocol):
    """Decides what follows the header and when the answer is complete."""

    def first(self) -> bytes:
        """The payload sent right after the header."""

    def feed(self, data: bytes) -> tuple[bool, bytes]:
        """Take received bytes; return (answer complete, bytes to send back)."""

    def eof(self) -> None:
        """The peer closed its side."""

    @property
    def quiet(self) -> float | None:
        """Seconds of silence after some bytes that end the answer, or None."""


class RawFraming:
    """Any bytes: the answer ends with the connection, or after ``quiet`` seconds
    without new bytes (a service that answers and waits for more)."""

    __slots__ = ("_payload", "quiet")

    def __init__(self, payload: bytes = b"", *, quiet: float | None = None) -> None:
        self._payload = payload
        self.quiet = quiet

    def first(self) -> bytes:
        return self._payload

    def feed(self, data: bytes) -> tuple[bool, bytes]:
        return False, b""

    def eof(self) -> None:
        return None


class HttpFraming:
    """An HTTP/1.1 request; the answer is complete at the end of the response.

    Bytes that are not an HTTP response fall back to the raw rule (``quiet``).
    """

    def __init__(self, request: bytes, *, quiet: float | None = None) -> None:
        self._request = request
        self._fallback_quiet = quiet
        self._parser = httptools.HttpResponseParser(self)
        self.status: int | None = None
        self.body = bytearray()
        self.complete = False
        self.error: str | None = None

    def first(self) -> bytes:
        return self._request

    def feed(self, data: bytes) -> tuple[bool, bytes]:
        if self.error is None and not self.complete:
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserError as exc:
                self.error = str(exc) or type(exc).__name__
        return self.complete, b""

    def eof(self) -> None:
        return None

    @property
    def quiet(self) -> float | None:
        return self._fallback_quiet if self.error is not None else None

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if len(self.body) < MAX_KEEP:
            self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


class TlsFraming:
    """A TLS ClientHello from :mod:`ssl` over memory buffers; the answer is complete
    when the handshake completes or fails. Certificates are not checked: the point
    is whether the endpoint speaks TLS on these bytes, not whom it claims to be."""

    quiet = None

    def __init__(self, server_name: str | None) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_name
        )
        self.completed = False
        self.error: str | None = None
        self.version: str | None = None
        self.cipher: str | None = None

    def first(self) -> bytes:
        self._step()
        return self._outgoing.read()

    def feed(self, data: bytes) -> tuple[bool, bytes]:
        self._incoming.write(data)
        done = self._step()
        return done, self._outgoing.read()

    def eof(self) -> None:
        self._incoming.write_eof()

    def _step(self) -> bool:
        if self.completed or self.error is not None:
            return True
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as exc:
            self.error = exc.reason or str(exc)
            return True
        self.completed = True
        self.version = self._tls.version()
        cipher = self._tls.cipher()
        self.cipher = None if cipher is None else cipher[0]
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "handshake": "complete"
            if self.completed
            else "failed"
            if self.error
            else "incomplete",
            "version": self.version,
            "cipher": self.cipher,
            "error": self.error,
        }


HostPort = tuple[str, int]
#: Builds the bytes sent before the payload from the connection's own addresses
#: (local, peer), which are known only once connected.
HeaderBuilder = Callable[[HostPort, HostPort], bytes]


@dataclass(slots=True)
class Exchange:
    """What happened on one connection. Times are seconds since the start."""

    target: HostPort
    outcome: Outcome
    local: HostPort | None = None
    peer: HostPort | None = None
    header: bytes = b""
    sent: bytes = b""
    received: bytes = b""
    ending: Ending | None = None
    error: str | None = None
    connect_s: float | None = None
    first_byte_s: float | None = None
    elapsed_s: float = 0.0


class _Unreachable(Exception):
    pass


def exchange(
    target: HostPort,
    header: HeaderBuilder | None,
    framing: Framing,
    *,
    connect_timeout: float,
    deadline: float | None = None,
    idle: float | None = None,
    bind: str | None = None,
) -> Exchange:
    """Connect to ``target``, send ``header(local, peer)`` and ``framing.first()``
    in one write, and read the answer.

    ``deadline`` (a :func:`time.monotonic` value) bounds the whole exchange;
    ``idle`` bounds each wait for the next bytes. ``bind`` chooses the local
    address. Raises :class:`~realip.errors.ConfigError` when ``bind`` cannot be
    used, or whatever ``header`` raises; every network failure is in the result.
    """
    started = time.monotonic()
    if deadline is not None:
        connect_timeout = max(min(connect_timeout, deadline - started), 0.001)
    try:
        sock = _connect(target, connect_timeout, bind)
    except _Unreachable as exc:
        return Exchange(
            target,
            Outcome.UNREACHABLE,
            error=str(exc),
            elapsed_s=time.monotonic() - started,
        )

    with sock:
        result = Exchange(target, Outcome.TIMEOUT)
        result.connect_s = time.monotonic() - started
        result.local = _host_port(sock.getsockname())
        result.peer = _host_port(sock.getpeername())
        if header is not None:
            result.header = header(result.local, result.peer)
        result.sent = result.header + framing.first()
        log.debug(
            "exchange target=%s local=%s sent=%d",
            target,
            result.local,
            len(result.sent),
        )
        _converse(sock, result, framing, started, deadline, idle)
    result.elapsed_s = time.monotonic() - started
    return result


def _converse(
    sock: socket.socket,
    result: Exchange,
    framing: Framing,
    started: float,
    deadline: float | None,
    idle: float | None,
) -> None:
    try:
        sock.sendall(result.sent)
    except OSError as exc:
        # The peer may have answered and closed before our bytes went out; what it
        # sent is still worth reading, so carry on.
        result.error = f"send failed: {exc.strerror or exc}"

    received = bytearray()
    ending = Ending.TIMEOUT
    while True:
        limit = _wait_limit(deadline, idle, framing.quiet if received else None)
        if limit is not None and limit <= 0:
            break
        sock.settimeout(limit)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            ending = Ending.QUIET if received and framing.quiet else Ending.TIMEOUT
            break
        except ConnectionResetError:
            ending = Ending.RESET
            break
        except OSError as exc:
            result.error = exc.strerror or str(exc)
            ending = Ending.RESET
            break
        if not data:
            framing.eof()
            ending = Ending.CLOSE
            break
        if result.first_byte_s is None:
            result.first_byte_s = time.monotonic() - started
        if len(received) < MAX_KEEP:
            received += data
        done, reply = framing.feed(data)
        if reply:
            # A failure here shows up in the read that follows (close or reset).
            with contextlib.suppress(OSError):
                sock.sendall(reply)
        if done:
            ending = Ending.COMPLETE
            break

    result.received = bytes(received)
    if received:
        result.outcome = Outcome.RESPONSE
        result.ending = ending
    else:
        result.outcome = _NO_BYTES[ending]


_NO_BYTES = {
    Ending.CLOSE: Outcome.CLOSE,
    Ending.RESET: Outcome.RESET,
    Ending.TIMEOUT: Outcome.TIMEOUT,
    Ending.QUIET: Outcome.TIMEOUT,
    Ending.COMPLETE: Outcome.CLOSE,
}


def _wait_limit(
    deadline: float | None, idle: float | None, quiet: float | None
) -> float | None:
    limits = [value for value in (idle, quiet) if value is not None]
    if deadline is not None:
        limits.append(deadline - time.monotonic())
    return min(limits) if limits else None


def _connect(target: HostPort, timeout: float, bind: str | None) -> socket.socket:
    host, port = target
    family = socket.AF_UNSPEC
    if bind is not None:
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _Unreachable(f"cannot resolve {host!r}: {exc.strerror}") from None

    problem = f"no address of {host!r} to connect to"
    for af, kind, proto, _, address in infos:
        sock = socket.socket(af, kind, proto)
        try:
            if bind is not None:
                _bind(sock, bind)
            sock.settimeout(timeout)
            sock.connect(address)
        except TimeoutError:
            sock.close()
            problem = f"connect to {_show(address)} timed out after {timeout:g}s"
        except ConfigError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            problem = f"connect to {_show(address)}: {exc.strerror or exc}"
        else:
            return sock
    raise _Unreachable(problem)


def _bind(sock: socket.socket, source: str) -> None:
    try:
        sock.bind((source, 0))
    except OSError as exc:
        raise ConfigError(
            f"cannot use source address {source}: {exc.strerror or exc}"
        ) from None


def _host_port(address: Any) -> HostPort:
    return str(address[0]), int(address[1])


def _show(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
