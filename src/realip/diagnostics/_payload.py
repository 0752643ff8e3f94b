"""What ``realip send`` and ``realip probe`` put on the wire after the header:
``--tlv TYPE=VALUE`` entries, ``--data`` text with escapes, an HTTP request."""

from __future__ import annotations

import re

from realip import __version__
from realip.diagnostics._endpoint import format_endpoint
from realip.errors import ConfigError
from realip.proxyproto import TLV, TLVType

# Names accepted for --tlv, in lower case, with "-" and "_" both allowed.
_TLV_NAMES = {member.name.lower(): int(member) for member in TLVType}

_ESCAPE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|[\\rnt0])")
_SIMPLE_ESCAPES = {b"\\": b"\\", b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0"}


def parse_tlv(text: str) -> TLV:
    """``TYPE=VALUE`` to a :class:`~realip.proxyproto.TLV`.

    TYPE is a registered name (``alpn``, ``authority``, ``unique_id``, ``netns``,
    ``aws``...) or a number 0-255 (``0xEA``, ``234``). VALUE is UTF-8 text, or
    ``hex:`` followed by the bytes in hex (``hex:01766`` is refused: odd length).
    """
    name, sep, value = text.partition("=")
    if not sep:
        raise ConfigError(f"--tlv must be TYPE=VALUE, got {text!r}")
    return TLV(_tlv_type(name.strip(), text), _tlv_value(value, text))


def _tlv_type(name: str, text: str) -> int:
    known = _TLV_NAMES.get(name.lower().replace("-", "_"))
    if known is not None:
        return known
    try:
        number = int(name, 0)
    except ValueError:
        names = ", ".join(sorted(_TLV_NAMES))
        raise ConfigError(
            f"--tlv {text!r}: type must be a number 0-255 or one of {names}"
        ) from None
    if not 0 <= number <= 0xFF:
        raise ConfigError(f"--tlv {text!r}: type must be 0-255, got {number}")
    return number


def _tlv_value(value: str, text: str) -> bytes:
    if not value.startswith("hex:"):
        return value.encode("utf-8")
    try:
        return bytes.fromhex(value[4:])
    except ValueError:
        raise ConfigError(
            f"--tlv {text!r}: {value[4:]!r} is not hexadecimal bytes (pairs of hex "
            "digits)"
        ) from None


def unescape(text: str) -> bytes:
    r"""``--data`` text to bytes: UTF-8, with ``\r \n \t \0 \\ \xNN`` understood so
    that a line ending or a binary byte can be typed on a command line."""

    def replace(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1] == b"x":
            return bytes((int(code[1:], 16),))
        return _SIMPLE_ESCAPES[code]

    return _ESCAPE.sub(replace, text.encode("utf-8"))


def http_request(
    host: str, port: int, path: str = "/", *, agent: str = "send", accept: str = "*/*"
) -> bytes:
    """A minimal HTTP/1.1 GET with a Host header (RFC 9112 section 3.2) that asks
    the server to close afterwards, so the response ends with the connection."""
    if not path.startswith("/") and path != "*":
        path = "/" + path
    if any(ch in path for ch in " \r\n"):
        raise ConfigError(
            f"--http path must not contain spaces or line breaks: {path!r}"
        )
    authority = format_endpoint(host, port)
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {authority}\r\n"
        f"User-Agent: realip-{agent}/{__version__}\r\n"
        f"Accept: {accept}\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode()
