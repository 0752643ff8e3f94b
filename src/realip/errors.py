"""The one exception tree of realip.

Every error realip raises on purpose derives from :class:`RealipError`. Errors about
bytes that came from the network (a bad PROXY header) are kept apart from errors in
local configuration (a bad CIDR on the command line), and both subclass
``ValueError`` so that callers who only know the standard library still catch them.
Backend failures (Redis, sockets) are re-raised as :class:`BackendError` subclasses
with the original exception chained.
"""

from __future__ import annotations


class RealipError(Exception):
    """Base class of every error realip raises on purpose."""


# -- bytes from the wire ---------------------------------------------------------


class ProxyProtocolError(RealipError, ValueError):
    """A PROXY protocol header is invalid.

    ``field`` names the part of the header that was wrong (``"port"``,
    ``"signature"``, ``"tlv 0x03"``...) when one can be named.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class IncompleteHeader(ProxyProtocolError):
    """The bytes so far are a valid start of a header, but more are needed.

    ``needed`` is the number of further bytes known to be required, or ``None``
    when it cannot be known yet (a v1 line before its CRLF).
    """

    def __init__(self, message: str, *, needed: int | None = None) -> None:
        super().__init__(message, field=None)
        self.needed = needed


class ChecksumError(ProxyProtocolError):
    """The CRC32C TLV of a v2 header does not match the header's bytes."""


# -- local configuration ---------------------------------------------------------


class ConfigError(RealipError, ValueError):
    """A setting given by the user is invalid. The message names the value and,
    where there is one, the file and key it came from."""


# -- policy decisions --------------------------------------------------------------


class ConnectionRefused(RealipError):
    """The trust policy refused a connection. ``reason`` is one log-ready line
    naming the source, what arrived and the likely cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- backends (Redis, sockets, subprocesses) ----------------------------------------


class BackendError(RealipError, ConnectionError):
    """A backend the library depends on failed; the cause is chained."""


class StoreUnavailable(BackendError):
    """The rate-limit store (Redis/Valkey) cannot be reached."""
