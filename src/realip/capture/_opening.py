"""Tell what a stream opens with: a PROXY header (by the codec) and then, or
instead, the client's own protocol.

:func:`classify_stream` is called as a connection's first bytes arrive. It answers
with an :class:`~realip.capture._model.Opening` once the answer cannot change, or
with the buffer size at which asking again is worth it. With ``final=True`` (the
client closed, or enough bytes were seen) it always answers, with what is there.
"""

from __future__ import annotations

import re

from realip.capture._model import (
    EMPTY,
    HEADER,
    HTTP,
    HTTP2,
    INVALID,
    NO_HEADER,
    SSH,
    TLS,
    UNKNOWN,
    Opening,
    Payload,
)
from realip.capture._tls import ClientHello, looks_like_tls, parse_client_hello
from realip.errors import IncompleteHeader, ProxyProtocolError
from realip.proxyproto import Sniff, decode, decode_datagram, sniff

#: How much of the client's own data is looked at for a line-based protocol (an
#: HTTP request line, an SSH banner: RFC 4253 section 4.2 allows 255 bytes).
LINE_LIMIT = 2048
#: How many bytes of unrecognised data are shown, escaped.
SHOW_BYTES = 32

_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# RFC 9112 section 3: method SP request-target SP HTTP-version.
_REQUEST_LINE = re.compile(rb"([A-Z][A-Z_-]{0,19}) (\S{1,2000}) (HTTP/\d(?:\.\d)?)\r?$")
_METHOD_PREFIX = re.compile(rb"[A-Z][A-Z_-]{0,19}( |$)")
_HOST = re.compile(rb"\r\nHost:[ \t]*([^\r\n]{1,255})", re.IGNORECASE)


def classify_stream(data: bytes | bytearray, *, final: bool) -> Opening | int:
    """What the stream ``data`` opens with, or the buffer size to wait for."""
    kind = sniff(data)
    if kind is Sniff.NOT_PROXY:
        payload = describe_payload(data, final=final)
        if isinstance(payload, int):
            return payload
        return Opening(NO_HEADER, payload=payload)
    if kind is Sniff.NEED_MORE and not data:
        return Opening(NO_HEADER, payload=Payload(EMPTY)) if final else 1
    try:
        header = decode(data)
    except IncompleteHeader as exc:
        if not final:
            return len(data) + (exc.needed or 1)
        return Opening(
            INVALID,
            error=f"header incomplete after the first {len(data)} bytes: {exc}",
        )
    except ProxyProtocolError as exc:
        return Opening(INVALID, error=str(exc))
    rest = data[header.length :]
    payload = describe_payload(rest, final=final)
    if isinstance(payload, int):
        return header.length + payload
    return Opening(HEADER, header=header, payload=payload)


def classify_datagram(datagram: bytes) -> Opening:
    """A UDP datagram on its own: the 2026 spec's rule that header and payload
    share one datagram makes a cut header invalid, never incomplete."""
    if sniff(datagram) in (Sniff.NOT_PROXY, Sniff.NEED_MORE):
        # Too short for a signature: whatever it is, it holds no header.
        return Opening(NO_HEADER, payload=_final_payload(datagram))
    try:
        header, rest = decode_datagram(datagram)
    except ProxyProtocolError as exc:
        return Opening(INVALID, error=str(exc))
    return Opening(HEADER, header=header, payload=_final_payload(bytes(rest)))


def _final_payload(data: bytes) -> Payload:
    payload = describe_payload(data, final=True)
    if isinstance(payload, int):  # final=True always answers; this keeps mypy sure
        return Payload(UNKNOWN, escape(data[:SHOW_BYTES]) + _more(data, SHOW_BYTES))
    return payload


def describe_payload(data: bytes | bytearray, *, final: bool) -> Payload | int:
    """Name the protocol the client's own bytes start with, or the buffer size to
    wait for before it can be told."""
    if not data:
        return Payload(EMPTY) if final else 1
    if looks_like_tls(data):
        return _tls(data, final)
    if data.startswith(b"SSH-") or (not final and b"SSH-".startswith(data)):
        return _line(data, final, SSH)
    if data.startswith(_HTTP2_PREFACE[:16]):
        return Payload(HTTP2, "HTTP/2 connection preface (prior knowledge)")
    if _METHOD_PREFIX.match(data):
        return _line(data, final, HTTP)
    return Payload(UNKNOWN, escape(data[:SHOW_BYTES]) + _more(data, SHOW_BYTES))


def _tls(data: bytes | bytearray, final: bool) -> Payload | int:
    hello = parse_client_hello(data)
    if isinstance(hello, int):
        if not final:
            return hello
        return Payload(TLS, f"TLS record cut after {len(data)} bytes: no SNI seen")
    if isinstance(hello, str):
        return Payload(TLS, hello)
    return _hello_payload(hello)


def _hello_payload(hello: ClientHello) -> Payload:
    fields = {"tls_version": hello.version}
    if hello.sni is not None:
        fields["sni"] = hello.sni
    if hello.alpn:
        fields["alpn"] = ",".join(hello.alpn)
    sni = f"SNI {hello.sni}" if hello.sni is not None else "no SNI"
    return Payload(TLS, f"ClientHello, {sni}", fields)


def _line(data: bytes | bytearray, final: bool, kind: str) -> Payload | int:
    end = data.find(b"\n", 0, LINE_LIMIT)
    if end < 0:
        if not final and len(data) < LINE_LIMIT:
            return len(data) + 1
        if kind == HTTP:
            return Payload(UNKNOWN, escape(data[:SHOW_BYTES]) + _more(data, SHOW_BYTES))
        end = min(len(data), LINE_LIMIT)
    line = bytes(data[:end]).rstrip(b"\r")
    if kind == SSH:
        return Payload(SSH, escape(line[:255]))
    match = _REQUEST_LINE.match(bytes(data[: end + 1]).rstrip(b"\n"))
    if match is None:
        return Payload(UNKNOWN, escape(line[:SHOW_BYTES]) + _more(line, SHOW_BYTES))
    fields = {
        "method": match[1].decode("ascii"),
        "target": escape(match[2][:200]),
        "version": match[3].decode("ascii"),
    }
    host = _HOST.search(data, end - 1, LINE_LIMIT)
    if host is not None:
        fields["host"] = escape(host[1].strip())
    return Payload(HTTP, escape(line[:200]), fields)


def escape(data: bytes | bytearray) -> str:
    """Bytes as printable text: ASCII as is, everything else as ``\\xNN``."""
    return repr(bytes(data))[2:-1]


def _more(data: bytes | bytearray, shown: int) -> str:
    return "..." if len(data) > shown else ""
