"""Capture real loopback traffic with tcpdump and check every flow realip reports.

One capture holds every case: HAProxy ``send-proxy-v2`` and ``send-proxy`` in
front of a recording server, curl ``--haproxy-protocol``, plain clients, a header
split byte by byte, a malformed header, TLS, SSH, an empty connection, a LOCAL
health check, IPv6, and UDP datagrams. The same traffic is captured twice at
once: on ``lo`` (Ethernet framing) and on ``any`` (Linux cooked SLL2).
"""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from realip.proxyproto import (
    Command,
    Family,
    Protocol,
    ProxyHeader,
    build_v2,
    decode,
    encode,
)
from tests.capture._support import (
    RecordingServer,
    capture_json,
    run_capture,
    tcpdump,
    wait_in_file,
)
from tests.support.net import free_port, wait_until
from tests.support.peers import require_binary, run_peer

pytestmark = pytest.mark.peers

_HAPROXY = """
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend ready
    mode http
    bind 127.0.0.1:{ready}
    monitor-uri /ready
frontend fe_v2
    bind 127.0.0.1:{fe_v2}
    default_backend be_v2
backend be_v2
    server app 127.0.0.1:{backend} send-proxy-v2
frontend fe_v1
    bind 127.0.0.1:{fe_v1}
    default_backend be_v1
backend be_v1
    server app 127.0.0.1:{backend} send-proxy
"""


@dataclass
class Expect:
    """One flow the test caused, and how to recognise it in the report."""

    label: str
    match: Callable[[dict[str, Any]], bool]
    check: Callable[[dict[str, Any]], None]
    found: list[dict[str, Any]] = field(default_factory=list)


def _client_hello(server_name: str) -> bytes:
    """The ClientHello OpenSSL really sends, taken from a memory BIO."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def _send(port: int, data: bytes, host: str = "127.0.0.1") -> int:
    """Connect, send ``data`` in one write, half-close; return the client port."""
    with socket.create_connection((host, port)) as sock:
        if data:
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        client_port = int(sock.getsockname()[1])
        sock.settimeout(5)
        while sock.recv(4096):
            pass
    return client_port


def _ends(flow: dict[str, Any], port: int) -> bool:
    return bool(flow["client"]["port"] == port)


class Traffic:
    """Runs every case against the servers and notes what each flow must show."""

    def __init__(self, servers: dict[str, int], backend: RecordingServer) -> None:
        self.servers = servers
        self.backend = backend
        self.expected: list[Expect] = []
        self.dropped: dict[Path, int] = {}

    def expect(
        self,
        label: str,
        match: Callable[[dict[str, Any]], bool],
        check: Callable[[dict[str, Any]], None],
    ) -> None:
        self.expected.append(Expect(label, match, check))

    def through_haproxy(self, version: int) -> None:
        frontend = self.servers[f"fe_v{version}"]
        path = f"/via-v{version}"
        request = f"GET {path} HTTP/1.1\r\nHost: shop\r\n\r\n".encode()
        client_port = _send(frontend, request)

        def client_leg(flow: dict[str, Any]) -> None:
            assert flow["status"] == "none"
            assert flow["opens_with"]["target"] == path
            assert flow["server"]["port"] == frontend

        def proxy_leg(flow: dict[str, Any]) -> None:
            header = flow["header"]
            assert flow["status"] == "header"
            assert header["version"] == version
            assert header["command"] == "PROXY"
            assert header["source"] == {"address": "127.0.0.1", "port": client_port}
            assert header["destination"] == {"address": "127.0.0.1", "port": frontend}
            assert flow["server"]["port"] == self.servers["backend"]
            assert flow["opens_with"]["target"] == path

        self.expect(
            f"client to fe_v{version}", lambda f: _ends(f, client_port), client_leg
        )
        self.expect(
            f"haproxy v{version} to backend",
            lambda f: (
                ((f["header"] or {}).get("source") or {}).get("port") == client_port
            ),
            proxy_leg,
        )

    def curl(self) -> None:
        curl = require_binary("curl")
        url = f"http://127.0.0.1:{self.servers['backend']}/curl-v1"
        subprocess.run(
            [curl, "-sS", "--max-time", "10", "--haproxy-protocol", "-o", "/dev/null",
             url],
            check=True,
        )  # fmt: skip

        def check(flow: dict[str, Any]) -> None:
            assert flow["status"] == "header"
            assert flow["header"]["version"] == 1
            # curl claims its own connection's addresses.
            assert flow["header"]["source"] == flow["client"]
            assert flow["header"]["destination"] == flow["server"]
            assert flow["opens_with"]["kind"] == "http"

        self.expect(
            "curl --haproxy-protocol",
            lambda f: (f["opens_with"] or {}).get("target") == "/curl-v1",
            check,
        )

    def plain(self) -> None:
        port = _send(self.servers["backend"], b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")

        def check(flow: dict[str, Any]) -> None:
            assert flow["status"] == "none"
            assert flow["header"] is None
            assert flow["opens_with"]["detail"] == "GET /plain HTTP/1.1"
            assert flow["opens_with"]["host"] == "a"

        self.expect("plain HTTP", lambda f: _ends(f, port), check)

    def split_byte_by_byte(self) -> None:
        header = build_v2(Command.PROXY, ("203.0.113.9", 4444), ("198.51.100.1", 443))
        data = header + b"GET /split HTTP/1.1\r\n\r\n"
        backend = self.backend
        with socket.create_connection(("127.0.0.1", backend.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            port = int(sock.getsockname()[1])
            for index in range(len(header)):
                sock.send(header[index : index + 1])
                # One segment per byte: the next waits until this one arrived.
                wait_until(lambda i=index: backend.got(port) > i, timeout=5)
            sock.sendall(data[len(header) :])
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            while sock.recv(4096):
                pass

        def check(flow: dict[str, Any]) -> None:
            assert flow["status"] == "header"
            assert flow["header"]["source"] == {"address": "203.0.113.9", "port": 4444}
            assert flow["opens_with"]["target"] == "/split"
            assert f"header split over {len(header)} segments" in flow["notes"]

        self.expect("split header", lambda f: _ends(f, port), check)

    def malformed(self) -> None:
        data = b"PROXY TCP4 1.2.3.999 5.6.7.8 1111 2222\r\nGET /bad HTTP/1.1\r\n\r\n"
        port = _send(self.servers["backend"], data)
        with pytest.raises(ValueError) as codec:
            decode(data)

        def check(flow: dict[str, Any]) -> None:
            assert flow["status"] == "invalid"
            assert flow["header"] is None
            assert flow["error"] == str(codec.value)

        self.expect("malformed header", lambda f: _ends(f, port), check)

    def tls(self) -> None:
        hello = _client_hello("capture-test.example")
        port = _send(self.servers["backend"], hello)

        def check(flow: dict[str, Any]) -> None:
            assert flow["status"] == "none"
            assert flow["opens_with"]["kind"] == "tls"
            assert flow["opens_with"]["sni"] == "capture-test.example"
            assert flow["opens_with"]["alpn"] == "h2,http/1.1"

        self.expect("TLS ClientHello", lambda f: _ends(f, port), check)

    def ssh(self) -> None:
        port = _send(self.servers["backend"], b"SSH-2.0-realipTest_1.0\r\n")

        def check(flow: dict[str, Any]) -> None:
            assert flow["opens_with"] == {
                "kind": "ssh",
                "detail": "SSH-2.0-realipTest_1.0",
            }

        self.expect("SSH banner", lambda f: _ends(f, port), check)

    def empty(self) -> None:
        port = _send(self.servers["backend"], b"")
        wait_until(lambda: self.backend.done(port))

        def check(flow: dict[str, Any]) -> None:
            assert flow["status"] == "none"
            assert flow["opens_with"]["kind"] == "empty"
            assert flow["client_bytes"] == 0

        self.expect("empty connection", lambda f: _ends(f, port), check)

    def local_health_check(self) -> None:
        local = encode(
            ProxyHeader(2, Command.LOCAL, Family.UNSPEC, Protocol.UNSPEC, None, None)
        )
        port = _send(self.servers["backend"], local)

        def check(flow: dict[str, Any]) -> None:
            assert flow["header"]["command"] == "LOCAL"
            assert flow["opens_with"]["kind"] == "empty"

        self.expect("LOCAL header", lambda f: _ends(f, port), check)

    def ipv6(self) -> None:
        header = build_v2(Command.PROXY, ("2001:db8::7", 5555), ("2001:db8::1", 443))
        port = _send(
            self.servers["backend6"], header + b"GET /v6 HTTP/1.1\r\n\r\n", "::1"
        )

        def check(flow: dict[str, Any]) -> None:
            assert flow["client"]["address"] == "::1"
            assert flow["header"]["family"] == "INET6"
            assert flow["header"]["source"] == {"address": "2001:db8::7", "port": 5555}
            assert flow["opens_with"]["target"] == "/v6"

        self.expect("IPv6 with v2", lambda f: _ends(f, port), check)

    def udp(self, marker: bytes) -> None:
        udp_port = self.servers["udp"]
        header = build_v2(
            Command.PROXY,
            ("192.0.2.50", 5353),
            ("192.0.2.1", 53),
            protocol=Protocol.DGRAM,
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            for payload in (header + b"ping", header + b"pong", b"no header"):
                sock.sendto(payload, ("127.0.0.1", udp_port))

        def check(flow: dict[str, Any]) -> None:
            assert flow["transport"] == "udp"
            assert flow["header"]["protocol"] == "DGRAM"
            assert flow["datagrams"] == {"total": 3, "with_header": 2, "invalid": 0}

        self.expect("UDP datagrams", lambda f: _ends(f, port), check)
        # Last: once this datagram is in the file, every packet before it is too.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sentinel_port = int(sock.getsockname()[1])
            sock.sendto(marker, ("127.0.0.1", udp_port))

        def sentinel(flow: dict[str, Any]) -> None:
            assert flow["status"] == "none"
            assert flow["opens_with"]["kind"] == "unknown"

        self.expect("sentinel", lambda f: _ends(f, sentinel_port), sentinel)


@pytest.fixture(scope="module")
def captured(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, Path, Traffic]]:
    """Run all the traffic once, captured on lo and on any; yield both files."""
    haproxy = require_binary("haproxy")
    workdir = tmp_path_factory.mktemp("capture")
    backend = RecordingServer("127.0.0.1")
    backend6 = RecordingServer("::1")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    servers = {
        "backend": backend.port,
        "backend6": backend6.port,
        "udp": int(udp.getsockname()[1]),
        "fe_v2": free_port(),
        "fe_v1": free_port(),
        "ready": free_port(),
    }
    config = workdir / "haproxy.cfg"
    config.write_text(_HAPROXY.format(**servers))
    lo_file, any_file = workdir / "lo.pcap", workdir / "any.pcap"
    ports = [servers[k] for k in ("backend", "backend6", "udp", "fe_v2", "fe_v1")]
    marker = f"capture-sentinel-{uuid.uuid4().hex}".encode()
    traffic = Traffic(servers, backend)
    ready = ("127.0.0.1", servers["ready"])
    try:
        with (
            run_peer([haproxy, "-db", "-f", str(config)], ready_port=ready),
            tcpdump(lo_file, ports) as lo_dump,
            tcpdump(any_file, ports, interface="any") as any_dump,
        ):  # fmt: skip
            traffic.through_haproxy(2)
            traffic.through_haproxy(1)
            traffic.curl()
            traffic.plain()
            traffic.split_byte_by_byte()
            traffic.malformed()
            traffic.tls()
            traffic.ssh()
            traffic.empty()
            traffic.local_health_check()
            traffic.ipv6()
            traffic.udp(marker)
            wait_in_file(lo_file, marker)
            wait_in_file(any_file, marker)
        traffic.dropped = {lo_file: lo_dump.dropped, any_file: any_dump.dropped}
        yield lo_file, any_file, traffic
    finally:
        backend.stop()
        backend6.stop()
        udp.close()


def _check_every_flow(document: dict[str, Any], traffic: Traffic) -> None:
    for expect in traffic.expected:
        expect.found.clear()
    for flow in document["connections"]:
        owners = [e for e in traffic.expected if e.match(flow)]
        assert len(owners) == 1, f"flow matches {len(owners)} cases: {flow}"
        owners[0].found.append(flow)
    for expect in traffic.expected:
        assert len(expect.found) == 1, f"{expect.label}: {len(expect.found)} flows"
        flow = expect.found[0]
        try:
            expect.check(flow)
        except AssertionError as exc:
            raise AssertionError(f"{expect.label}: {exc}\n{flow}") from exc
        assert flow["start_seen"] is True
        if flow["transport"] == "tcp":
            assert flow["client_by"] == "syn"


def _check_what_survived(document: dict[str, Any], traffic: Traffic) -> None:
    """With packets dropped by the kernel, a flow may lack the very bytes that
    name its case; still, no flow belongs to two cases, nor a case to two flows,
    and the flows read are those of the test."""
    for expect in traffic.expected:
        expect.found.clear()
    for flow in document["connections"]:
        owners = [e for e in traffic.expected if e.match(flow)]
        assert len(owners) <= 1, f"flow matches {len(owners)} cases: {flow}"
        assert flow["server"]["port"] in traffic.servers.values()
        if owners:
            owners[0].found.append(flow)
    assert all(len(expect.found) <= 1 for expect in traffic.expected)
    assert any(expect.found for expect in traffic.expected)


@pytest.mark.parametrize("interface", ["lo", "any"])
def test_every_flow_matches_what_was_sent(
    captured: tuple[Path, Path, Traffic],
    interface: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lo_file, any_file, traffic = captured
    path = lo_file if interface == "lo" else any_file
    document = capture_json(capsys, str(path))
    assert document["format"] == "pcap" and document["packets"]["skipped"] == {}
    if traffic.dropped[path]:
        _check_what_survived(document, traffic)
        return
    _check_every_flow(document, traffic)
    assert document["error"] is None
    assert document["packets"]["skipped"] == {}
    summary = {n["label"]: n for n in document["summary"]["networks"]}
    v4 = summary["127.0.0.1"]
    # v1: haproxy send-proxy and curl; v2: send-proxy-v2, the split header and the
    # UDP flow; one LOCAL, one malformed; the rest carry none.
    assert (v4["v1"], v4["v2"], v4["local"], v4["invalid"]) == (2, 3, 1, 1)
    assert v4["without_header"] == {
        "empty": 1, "http": 3, "ssh": 1, "tls": 1, "unknown": 1,
    }  # fmt: skip
    assert summary["::1"]["v2"] == 1
    readings = document["summary"]["readings"]
    assert any(r.startswith("health checks likely: 127.0.0.1") for r in readings)
    assert any(r.startswith("invalid headers: 1 from 127.0.0.1") for r in readings)


def test_filters_on_a_real_capture(
    captured: tuple[Path, Path, Traffic], capsys: pytest.CaptureFixture[str]
) -> None:
    lo_file, _, traffic = captured
    backend = traffic.servers["backend"]
    document = capture_json(capsys, str(lo_file), "--server", f"127.0.0.1:{backend}")
    flows = document["connections"]
    assert flows and all(f["server"]["port"] == backend for f in flows)
    fe_v2 = traffic.servers["fe_v2"]
    document = capture_json(capsys, str(lo_file), "--port", str(fe_v2))
    assert [f["server"]["port"] for f in document["connections"]] == [fe_v2]
    assert document["packets"]["filtered_out"] > 0
    everything = capture_json(capsys, str(lo_file))["connections"]
    starts = sorted(f["start_epoch"] for f in everything)
    cut = starts[len(starts) // 2]
    before = capture_json(capsys, str(lo_file), "--until", str(cut))["connections"]
    iso = datetime.datetime.fromtimestamp(cut, datetime.UTC).isoformat()
    after = capture_json(capsys, str(lo_file), "--since", iso)["connections"]
    assert len(before) == len(starts) // 2
    assert len(before) + len(after) == len(everything)
    assert all(f["start_epoch"] < cut for f in before)
    assert all(f["start_epoch"] >= cut for f in after)


def test_text_output_names_each_flow(
    captured: tuple[Path, Path, Traffic], capsys: pytest.CaptureFixture[str]
) -> None:
    lo_file, _, traffic = captured
    status, out, err = run_capture(capsys, str(lo_file))
    assert status == 0, err
    assert "v2 PROXY" in out and "v1 PROXY" in out and "v2 LOCAL" in out
    assert "TLS ClientHello, SNI capture-test.example" in out
    assert "127.0.0.1: " in out and "Summary by client network:" in out
    assert f"127.0.0.1:{traffic.servers['fe_v2']}" in out
