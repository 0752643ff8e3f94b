"""Telling a PROXY header from a client's own bytes (spec section 2.2).

A v2 header starts with the 12-byte signature, a v1 header with ``PROXY``.
:func:`sniff` answers from as few bytes as possible, which is what a receiver
that accepts connections both with and without a header needs: it never waits
once the bytes seen so far rule a header out. :func:`not_a_header` is the
decoder's refusal of bytes that start no header.
"""

from __future__ import annotations

import enum
from typing import NoReturn

from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.proxyproto._constants import V1_PREFIX, V2_SIGNATURE
from realip.proxyproto._util import show

Buffer = bytes | bytearray | memoryview


class Sniff(enum.Enum):
    """What the first bytes of a connection say about a PROXY header."""

    V1 = "v1"
    V2 = "v2"
    #: The bytes so far start neither signature: this is the client's own data.
    NOT_PROXY = "not-proxy"
    #: Every byte so far matches the start of a signature; read more.
    NEED_MORE = "need-more"


def sniff(data: Buffer) -> Sniff:
    """Tell a v1 line, a v2 block and anything else apart from the first bytes.

    At most 12 bytes (v2) or 6 bytes (v1) are ever needed, and fewer when the bytes
    diverge from both signatures early (an HTTP request is told apart at its first
    byte, a TLS ClientHello too).
    """
    size = len(data)
    if size == 0:
        return Sniff.NEED_MORE
    first = data[0]
    if first == 0x0D:
        seen = min(size, 12)
        if data[:seen] != V2_SIGNATURE[:seen]:
            return Sniff.NOT_PROXY
        return Sniff.V2 if size >= 12 else Sniff.NEED_MORE
    if first == 0x50:  # "P"
        seen = min(size, 6)
        if data[:seen] != V1_PREFIX[:seen]:
            return Sniff.NOT_PROXY
        return Sniff.V1 if size >= 6 else Sniff.NEED_MORE
    return Sniff.NOT_PROXY


def not_a_header(data: bytes) -> NoReturn:
    """Raise for ``data`` that does not start with a whole signature: the
    incomplete-header error while every byte so far matches the start of one,
    the protocol error otherwise."""
    if sniff(data) is Sniff.NEED_MORE:
        raise IncompleteHeader(
            f"{len(data)} byte(s) so far, too few to tell a PROXY header: {show(data)}",
            needed=None,
        )
    raise ProxyProtocolError(
        f"not a PROXY protocol header: starts with {show(data)}", field="signature"
    )
