"""``realip serve`` on an IPv6 listener: addresses as uvicorn reports them."""

from __future__ import annotations

import socket

import pytest

from realip.proxyproto import Command, build_v2
from tests.servers.serving import answer_json, read_all, realip_serve, request

pytestmark = pytest.mark.peers


def _exchange6(port: int, payload: bytes) -> bytes:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(("::1", port))
        sock.sendall(payload)
        return read_all(sock)


def test_ipv6_peer_and_server_addresses() -> None:
    args = ["--bind", "[::1]:0", "--proxy-protocol", "optional=::1"]
    with realip_serve(args) as served:
        plain = answer_json(_exchange6(served.port, request()))
        assert plain["client"][0] == "::1"
        assert plain["server"] == ["::1", served.port]  # (host, port), not 4 items
        header = build_v2(Command.PROXY, ("2001:db8::7", 4000), ("::1", 80))
        proxied = answer_json(_exchange6(served.port, header + request()))
        assert proxied["client"] == ["2001:db8::7", 4000]
        assert proxied["peer"][0] == "::1"
