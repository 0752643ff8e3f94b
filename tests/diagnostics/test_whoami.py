"""``realip whoami`` answering curl, ``realip send`` and raw sockets."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from tests.diagnostics.conftest import Whoami
from tests.support.peers import require_binary

pytestmark = pytest.mark.peers


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("curl"), "-sS", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def send(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "realip", "send", *args],
        input=data if data is not None else b"",
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_curl_haproxy_protocol_json(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--http")  # require: the default policy
    done = curl(
        "--haproxy-protocol",
        "-H",
        "Accept: application/json",
        "-H",
        "X-Forwarded-For: 198.51.100.9",
        f"http://{server.address}/some/path?q=1",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    header = report["proxy_header"]
    assert header["version"] == 1
    assert header["command"] == "PROXY"
    assert header["source"]["address"] == "127.0.0.1"
    assert header["destination"]["port"] == server.port
    assert report["action"] == "require"
    assert report["client"]["from"] == "proxy-header"
    assert report["client"]["port"] == header["source"]["port"]
    assert report["http"]["request_line"] == "GET /some/path?q=1 HTTP/1.1"
    assert report["http"]["forwarded_headers"] == [
        {"name": "X-Forwarded-For", "value": "198.51.100.9"}
    ]


def test_plain_curl_refused_under_require(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--http")
    done = curl(f"http://{server.address}/")
    assert done.returncode != 0  # closed without an answer (curl: empty reply)
    assert done.stdout == ""


def test_keep_alive_answers_every_request(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--http", "--proxy-protocol", "optional")
    url = f"http://{server.address}"
    done = curl("--haproxy-protocol", f"{url}/one", f"{url}/two", f"{url}/three")
    assert done.returncode == 0, done.stderr
    lines = re.findall(r"request: +(.*)", done.stdout)
    assert lines == ["GET /one HTTP/1.1", "GET /two HTTP/1.1", "GET /three HTTP/1.1"]
    # One connection: the same peer port each time.
    peers = set(re.findall(r"peer: +(\S+)", done.stdout))
    assert len(peers) == 1


def test_forwarded_headers_resolve_the_client(whoami: Callable[..., Whoami]) -> None:
    server = whoami(
        "--http", "--json", "--proxy-protocol", "optional",
        "--forwarded-trust", "127.0.0.1/32",
    )  # fmt: skip
    done = curl("-H", "X-Forwarded-For: 198.51.100.9", f"http://{server.address}/")
    report = json.loads(done.stdout)
    assert report["proxy_header"] is None
    assert report["client"]["address"] == "198.51.100.9"
    assert report["client"]["from"].startswith("forwarded-header")


def test_text_answer_is_default(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--http", "--proxy-protocol", "optional")
    done = curl(f"http://{server.address}/")
    assert "header:       none" in done.stdout
    assert re.search(
        r"^client: +127\.0\.0\.1:\d+ \(from the peer\)$", done.stdout, re.M
    )


def tcp_json(server: Whoami, *args: str) -> dict[str, Any]:
    done = send(server.address, "--data", "hello", "--timeout", "5", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_tcp_send_v2_with_tlvs(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--json")
    report = tcp_json(
        server,
        "--proxy", "v2",
        "--source", "198.51.100.4:4000",
        "--destination", "192.0.2.1:443",
        "--tlv", "authority=example.com",
        "--tlv", "unique_id=abc-123",
        "--tlv", "0xE1=hex:0102ff",
        "--crc32c",
    )  # fmt: skip
    header = report["proxy_header"]
    assert header["version"] == 2
    assert header["source"] == {"address": "198.51.100.4", "port": 4000}
    assert header["destination"] == {"address": "192.0.2.1", "port": 443}
    tlvs = {tlv["type"]: tlv for tlv in header["tlvs"]}
    assert tlvs[0x02]["authority"] == "example.com"
    assert tlvs[0x05]["unique_id"] == "abc-123"
    assert tlvs[0xE1]["value"] == "0102ff"
    assert 0x03 in tlvs  # CRC32C, verified by the receiver
    assert report["client"] == {
        "address": "198.51.100.4",
        "port": 4000,
        "from": "proxy-header",
    }


def test_tcp_send_default_header_tells_the_truth(
    whoami: Callable[..., Whoami],
) -> None:
    server = whoami("--json")
    report = tcp_json(server)
    header = report["proxy_header"]
    assert header["version"] == 1
    # Like a health check: our own socket's address, and the peer as destination.
    assert header["source"] == report["peer"]
    assert header["destination"] == report["local"]


def test_tcp_send_local_uses_the_peer(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--json")
    report = tcp_json(server, "--local")
    assert report["proxy_header"]["command"] == "LOCAL"
    assert report["client"]["from"] == "peer"


def test_ignore_drops_the_header(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--json", "--proxy-protocol", "ignore")
    report = tcp_json(server, "--source", "203.0.113.7:1")
    assert report["action"] == "ignore"
    assert report["client"] == {**report["peer"], "from": "peer"}
    # The header that came is shown in full, apart from any used header.
    assert report["proxy_header"] is None
    ignored = report["ignored_proxy_header"]
    assert ignored["version"] == 1
    assert ignored["source"] == {"address": "203.0.113.7", "port": 1}
    assert ignored["destination"] == report["local"]


def test_ignore_shows_tlvs_of_the_ignored_header_in_text(
    whoami: Callable[..., Whoami],
) -> None:
    server = whoami("--http", "--proxy-protocol", "ignore")
    done = send(
        server.address,
        "--proxy", "v2",
        "--source", "198.51.100.4:4000",
        "--tlv", "authority=example.com",
        "--http", "/ignored",
        "--timeout", "5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert re.search(
        r"^header: +v2 PROXY INET STREAM, \d+ bytes, IGNORED \(action ignore: "
        r"read and discarded\)$",
        text,
        re.M,
    ), text
    assert re.search(r"^  source: +198\.51\.100\.4:4000$", text, re.M), text
    assert re.search(r"^  tlv 0x02: +AUTHORITY authority=example\.com$", text, re.M)
    assert re.search(r"^client: +127\.0\.0\.1:\d+ \(from the peer\)$", text, re.M)
    assert "GET /ignored HTTP/1.1" in text


def test_no_header_under_ignore_says_none(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--json", "--proxy-protocol", "ignore")
    report = tcp_json(server, "--proxy", "none")
    assert report["proxy_header"] is None
    assert report["ignored_proxy_header"] is None
    assert report["client"]["from"] == "peer"


def test_survives_bad_requests(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--http", "--proxy-protocol", "optional")
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=5) as sock:
        sock.sendall(b"\x00\x01 this is not HTTP\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 70000)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431 ")
    done = curl(f"http://{server.address}/after")
    assert "GET /after HTTP/1.1" in done.stdout
    assert not any("Traceback" in line for line in server.lines)


def test_sigterm_stops_cleanly(whoami: Callable[..., Whoami]) -> None:
    server = whoami("--http")
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0


def test_bad_listen_is_one_line(whoami: Callable[..., Whoami]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "realip", "whoami", "--listen", "nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("realip: error: --listen")
    assert len(done.stderr.strip().splitlines()) == 1
