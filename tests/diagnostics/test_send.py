"""``realip send`` against nginx, a TCP echo, and with bad input."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.diagnostics.conftest import PyServer, echo, nginx
from tests.support.net import free_port

from realip.cli._exit import ExitStatus

pytestmark = pytest.mark.peers


def send(*args: str, data: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "realip", "send", *args],
        input=data,
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_http_to_nginx_with_proxy_protocol(tmp_path: Path) -> None:
    with nginx(tmp_path, proxy_protocol=True) as port:
        claimed = send(
            f"127.0.0.1:{port}", "--source", "198.51.100.7:5555", "--http", "/x"
        )
        plain = send(f"127.0.0.1:{port}", "--proxy", "none", "--http", "/x")
    assert claimed.returncode == 0, claimed.stderr
    assert claimed.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert claimed.stdout.endswith(b"client 198.51.100.7\n")
    assert b"PROXY TCP4 198.51.100.7 127.0.0.1 5555" in claimed.stderr
    # Without a header nginx closes: nothing printed, the summary says so.
    assert plain.returncode == 0
    assert plain.stdout == b""
    assert b"no answer" in plain.stderr


def test_hexdump_shows_both_directions(tmp_path: Path) -> None:
    with nginx(tmp_path, proxy_protocol=False) as port:
        done = send(f"127.0.0.1:{port}", "--http", "/", "--hexdump")
    out = done.stdout.decode()
    assert out.startswith("> sent ")
    assert "50 52 4f 58 59 20 54 43" in out  # "PROXY TC"
    assert "|PROXY TCP4 127.0|" in out
    assert "< received " in out
    assert "|HTTP/1.1 400 Bad|" in out  # nginx without proxy_protocol


def test_stdin_payload_and_escapes(pyserver: Callable[..., PyServer]) -> None:
    server = pyserver(echo)
    piped = send(server.address, "--proxy", "none", "--timeout", "0.5", data=b"hi\n")
    typed = send(server.address, "--data", r"a\r\n\x00b", "--timeout", "0.5")
    assert piped.stdout == b"hi\n"
    assert typed.stdout.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ")
    assert typed.stdout.endswith(b"\r\na\r\n\x00b")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["127.0.0.1"], "target must be HOST:PORT"),
        (["127.0.0.1:99999"], "port must be 0-65535"),
        (["127.0.0.1:80", "--local", "--proxy", "v1"], "--local need --proxy v2"),
        (["127.0.0.1:80", "--tlv", "nonsense=1"], "--tlv 'nonsense=1'"),
        (["127.0.0.1:80", "--tlv", "alpn=hex:abc"], "not hexadecimal bytes"),
        (["127.0.0.1:80", "--source", "example.com:1"], "--source must be an IP"),
        (["127.0.0.1:80", "--bind-source", "x"], "--bind-source must be an IP"),
        (["127.0.0.1:80", "--timeout", "0"], "--timeout must be more than 0"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    done = send(*args)
    assert done.returncode == ExitStatus.ERROR
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("realip: error: ")
    assert message in lines[0]


def test_unreachable_exits_3() -> None:
    done = send(f"127.0.0.1:{free_port()}", "--timeout", "1")
    assert done.returncode == ExitStatus.UNREACHABLE
    assert b"could not connect" in done.stderr


def test_bind_source_not_on_this_machine_is_an_error() -> None:
    # 192.0.2.1 (TEST-NET-1) is bound to no interface here; nothing is sent.
    done = send("127.0.0.1:9", "--bind-source", "192.0.2.1")
    assert done.returncode == ExitStatus.ERROR
    assert b"cannot use source address 192.0.2.1" in done.stderr
