"""Small helpers shared by the codec's modules."""

from __future__ import annotations

from typing import NoReturn

from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.proxyproto._constants import V1_PREFIX, V2_SIGNATURE

_SHOW_LIMIT = 40


def show(data: bytes | bytearray | memoryview, limit: int = _SHOW_LIMIT) -> str:
    """Bytes as a short, escaped, quoted string for error messages and logs."""
    raw = bytes(data[:limit])
    text = repr(raw)[1:]  # b'...' -> '...'
    return text + ("..." if len(data) > limit else "")


def not_a_header(data: bytes) -> NoReturn:
    """Raise for ``data`` that does not start with a whole signature: the
    incomplete-header error while every byte so far matches the start of one
    (section 2.2's detection), the protocol error otherwise."""
    size = len(data)
    if (size < 12 and V2_SIGNATURE.startswith(data)) or (
        size < 6 and V1_PREFIX.startswith(data)
    ):
        raise IncompleteHeader(
            f"{size} byte(s) so far, too few to tell a PROXY header: {show(data)}",
            needed=None,
        )
    raise ProxyProtocolError(
        f"not a PROXY protocol header: starts with {show(data)}", field="signature"
    )
