"""Parsing the ``HOST:PORT`` and ``IP`` arguments the diagnostics take.

IPv6 literals are written in brackets (``[::1]:8080``), as in URLs (RFC 3986
section 3.2.2), because the colons of the address would otherwise be ambiguous.
"""

from __future__ import annotations

import ipaddress

from realip.errors import ConfigError


def parse_endpoint(text: str, *, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT`` to ``(host, port)``; the host may be a name."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what} must be HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        _check_ip(host, text, what)
    elif ":" in host:
        raise ConfigError(
            f"{what} {text!r}: write an IPv6 address in brackets, e.g. [::1]:8080"
        )
    return host, parse_port(port_text, what=f"{what} {text!r}")


def parse_ip_endpoint(text: str, *, what: str = "address") -> tuple[str, int]:
    """Like :func:`parse_endpoint`, but the host must be an IP literal (a PROXY
    header carries addresses, never names); returned in canonical form."""
    host, port = parse_endpoint(text, what=what)
    return _check_ip(host, text, what), port


def parse_ip(text: str, *, what: str = "address") -> str:
    """An IPv4 or IPv6 literal (no brackets, no port), in canonical form."""
    return _check_ip(text, text, what)


def parse_port(text: str, *, what: str = "port") -> int:
    if not text.isdigit():
        raise ConfigError(f"{what}: port must be a number 0-65535, got {text!r}")
    port = int(text)
    if port > 65535:
        raise ConfigError(f"{what}: port must be 0-65535, got {port}")
    return port


def format_endpoint(host: str, port: int) -> str:
    """The inverse of :func:`parse_endpoint`: brackets around IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_ip(host: str, text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise ConfigError(f"{what} must be an IP address, got {text!r}") from None
