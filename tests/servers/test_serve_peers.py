"""``realip serve`` with real peers: HAProxy, curl, raw sockets from several
loopback sources, and the spoofing corpus.

Sources are told apart by their loopback address:

- 127.0.0.3: the load balancer (HAProxy's ``source``): ``require``
- 127.0.0.4: an end client, only ever in front of HAProxy
- 127.0.0.5: a trusted host that may skip the balancer: ``optional``
- 127.0.0.6: an untrusted network: ``reject``
- 127.0.0.7: HAProxy's first HTTP hop, a trusted forwarding proxy
- 127.0.0.8: ``ignore``; 127.0.0.9: ``deny``; anything else: ``require``
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from realip.proxyproto import TLV, Command, build_v1, build_v2
from tests.servers.serving import (
    Served,
    answer_json,
    connect,
    exchange,
    read_all,
    realip_serve,
    request,
)
from tests.support.net import free_port
from tests.support.peers import require_binary, run_peer

pytestmark = pytest.mark.peers

POLICY = [
    "--proxy-protocol=require=127.0.0.3",
    "--proxy-protocol=optional=127.0.0.5",
    "--proxy-protocol=reject=127.0.0.6",
    "--proxy-protocol=ignore=127.0.0.8",
    "--proxy-protocol=deny=127.0.0.9",
    "--proxy-protocol=require",
    "--forwarded-trust=127.0.0.7",
    "--forwarded-scheme",
]

SPOOFED = ("203.0.113.5", 4444)

HAPROXY_CFG = """
global
    maxconn 500
defaults
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend tcp_in
    mode tcp
    bind 127.0.0.1:{tcp}
    unique-id-format %{{+X}}o%ci-%cp
    default_backend be_tcp
backend be_tcp
    mode tcp
    server realip 127.0.0.1:{realip} send-proxy-v2 source 127.0.0.3 {v2_options}
frontend http_a
    mode http
    bind 127.0.0.1:{a}
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    default_backend be_a
backend be_a
    mode http
    server b 127.0.0.1:{b} source 127.0.0.7
frontend http_b
    mode http
    bind 127.0.0.1:{b}
    option forwardfor
    default_backend be_b
backend be_b
    mode http
    server realip 127.0.0.1:{realip} send-proxy-v2 source 127.0.0.3
"""


@dataclass
class Setup:
    served: Served
    tcp: int  # HAProxy mode tcp, send-proxy-v2
    chain: int  # HAProxy http -> http (XFF) -> send-proxy-v2

    @property
    def port(self) -> int:
        return self.served.port


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    haproxy = require_binary("haproxy")
    with realip_serve(POLICY) as served:
        ports = {"tcp": free_port(), "a": free_port(), "b": free_port()}
        cfg = Path(tmp_path_factory.mktemp("haproxy")) / "haproxy.cfg"
        text = HAPROXY_CFG.format(
            realip=served.port, v2_options="proxy-v2-options unique-id", **ports
        )
        cfg.write_text(text)
        with run_peer(
            [haproxy, "-db", "-f", str(cfg)], ready_port=("127.0.0.1", ports["a"])
        ):
            yield Setup(served, ports["tcp"], ports["a"])


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    argv = [require_binary("curl"), "-s", "--max-time", "10", *args]
    return subprocess.run(argv, capture_output=True, timeout=20, check=False)


#: curl's exit codes for "closed without an HTTP answer": empty reply (FIN) or
#: a reset (the server closed with the request still unread).
NO_ANSWER = (52, 56)


def curl_json(*args: str) -> dict[str, object]:
    done = curl("-i", *args)
    assert done.returncode == 0, done
    return answer_json(done.stdout)


def v2(source: tuple[str, int] = SPOOFED, **kw: object) -> bytes:
    return build_v2(Command.PROXY, source, ("127.0.0.1", 80), **kw)  # type: ignore[arg-type]


# -- real peers in front ----------------------------------------------------------


def test_haproxy_send_proxy_v2_gives_the_real_client(setup: Setup) -> None:
    answer = curl_json("--interface", "127.0.0.4", f"http://127.0.0.1:{setup.tcp}/")
    assert answer["client"][0] == "127.0.0.4"  # type: ignore[index]
    assert answer["peer"][0] == "127.0.0.3"  # type: ignore[index]
    assert answer["version"] == 2
    assert answer["action"] == "require"
    assert answer["unique_id"]  # a TLV (0x05), reachable from the scope


def test_curl_haproxy_protocol_from_the_balancer(setup: Setup) -> None:
    url = f"http://127.0.0.1:{setup.port}/"
    answer = curl_json("--haproxy-protocol", "--interface", "127.0.0.3", url)
    assert answer["client"][0] == "127.0.0.3"  # type: ignore[index]
    assert answer["version"] == 1


def test_plain_http_where_required_is_closed_and_logged(setup: Setup) -> None:
    done = curl("--interface", "127.0.0.3", f"http://127.0.0.1:{setup.port}/")
    assert done.returncode in NO_ANSWER and done.stdout == b""
    setup.served.wait_log("plain HTTP from 127.0.0.3 where a PROXY header is required")
    assert "Kubernetes hairpin?" in setup.served.log


# -- the spoofing corpus ------------------------------------------------------------


def test_header_from_an_untrusted_source_is_refused(setup: Setup) -> None:
    assert exchange(setup.port, v2() + request(), source="127.0.0.6") == b""
    url = f"http://127.0.0.1:{setup.port}/"
    done = curl("--haproxy-protocol", "--interface", "127.0.0.6", url)
    assert done.returncode in NO_ANSWER and done.stdout == b""
    setup.served.wait_log("PROXY header from 127.0.0.6, which is not a trusted proxy")
    # The same source without a header is an ordinary client.
    answer = answer_json(exchange(setup.port, request(), source="127.0.0.6"))
    assert answer["client"][0] == "127.0.0.6"  # type: ignore[index]


@pytest.mark.parametrize("header", [v2(), build_v1(SPOOFED, ("127.0.0.1", 80))])
def test_header_split_into_one_byte_packets(setup: Setup, header: bytes) -> None:
    with connect(setup.port, "127.0.0.3", nodelay=True) as sock:
        for index in range(len(header)):
            sock.sendall(header[index : index + 1])
        sock.sendall(request())
        answer = answer_json(read_all(sock))
    assert answer["client"] == list(SPOOFED)


def test_header_sent_together_with_the_request_and_its_tlvs(setup: Setup) -> None:
    header = v2(tlvs=[TLV(0x02, b"shop.example"), TLV(0x05, b"\x01\x02")])
    answer = answer_json(exchange(setup.port, header + request(), "127.0.0.3"))
    assert answer["client"] == list(SPOOFED)
    assert answer["authority"] == "shop.example"
    assert answer["unique_id"] == "0102"


@pytest.mark.parametrize("source", ["127.0.0.3", "127.0.0.5"])
def test_a_second_header_is_data_never_a_header(setup: Setup, source: str) -> None:
    second = v2(("198.51.100.66", 1))
    raw = exchange(setup.port, v2() + second + request(), source)
    assert b"198.51.100.66" not in raw
    assert not raw.startswith(b"HTTP/1.1 200")  # HTTP garbage: 400 or closed
    raw = exchange(setup.port, v2() + build_v1(("198.51.100.66", 1), SPOOFED), source)
    assert b"198.51.100.66" not in raw


def test_forwarded_headers_from_an_untrusted_client_are_ignored(setup: Setup) -> None:
    injected = [
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", "for=1.2.3.4;proto=https"),
        ("X-Real-IP", "1.2.3.4"),
    ]
    answer = answer_json(exchange(setup.port, request(headers=injected), "127.0.0.5"))
    assert answer["client"][0] == "127.0.0.5"  # type: ignore[index]
    assert answer["scheme"] == "http"
    headers = [arg for name, value in injected for arg in ("-H", f"{name}: {value}")]
    url = f"http://127.0.0.1:{setup.tcp}/"
    answer = curl_json("--interface", "127.0.0.4", *headers, url)
    assert answer["client"][0] == "127.0.0.4"  # type: ignore[index]
    assert answer["scheme"] == "http"


def test_trusted_chain_of_proxies(setup: Setup) -> None:
    url = f"http://127.0.0.1:{setup.chain}/"
    answer = curl_json(
        "--interface", "127.0.0.4", "-H", "X-Forwarded-For: 6.6.6.6", url
    )
    # curl -> A (127.0.0.7, trusted, XFF) -> B (XFF, PROXY v2 from 127.0.0.3).
    assert answer["client"][0] == "127.0.0.4"  # type: ignore[index]
    assert answer["peer"][0] == "127.0.0.3"  # type: ignore[index]
    assert answer["scheme"] == "https"  # asked for with --forwarded-scheme


def test_optional_source_with_and_without_a_header(setup: Setup) -> None:
    with_header = answer_json(exchange(setup.port, v2() + request(), "127.0.0.5"))
    assert with_header["client"] == list(SPOOFED)
    without = answer_json(exchange(setup.port, request(), "127.0.0.5"))
    assert without["client"][0] == "127.0.0.5"  # type: ignore[index]
    # scope["server"] is the listening side in both cases (uvicorn's sockname).
    assert with_header["server"] == without["server"] == ["127.0.0.1", setup.port]


def test_ignore_deny_and_local(setup: Setup) -> None:
    ignored = answer_json(exchange(setup.port, v2() + request(), "127.0.0.8"))
    assert ignored["client"][0] == "127.0.0.8"  # type: ignore[index]
    assert ignored["version"] is None
    assert ignored["ignored_source"] == list(SPOOFED)  # read, shown, not used
    assert exchange(setup.port, request(), "127.0.0.9") == b""
    setup.served.wait_log("connections from 127.0.0.9 are denied")
    local = build_v2(Command.LOCAL, None, None)
    answer = answer_json(exchange(setup.port, local + request(), "127.0.0.3"))
    assert answer["client"][0] == "127.0.0.3"  # type: ignore[index]


def test_refusal_causes_are_named(setup: Setup) -> None:
    client_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40
    assert exchange(setup.port, client_hello, "127.0.0.3") == b""
    setup.served.wait_log("TLS ClientHello from 127.0.0.3")
    with connect(setup.port, "127.0.0.3"):
        pass
    setup.served.wait_log("closed before any byte: a health check?")
    bad = b"PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n"
    assert exchange(setup.port, bad + request(), "127.0.0.3") == b""
    setup.served.wait_log("invalid PROXY header from 127.0.0.3")
