"""The codec against real peers: HAProxy and curl send headers that realip decodes;
HAProxy and nginx accept headers that realip builds.

One HAProxy process serves every HAProxy case (a frontend per case). Clients bind
127.0.0.2 (or .3, .4) so that the address in the header is told apart from the
loopback address HAProxy itself uses.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from realip.errors import ChecksumError, ProxyProtocolError
from realip.proxyproto import (
    TLV,
    HeaderReader,
    ProxyHeader,
    TLVType,
    build_v1,
    build_v2,
    decode,
)
from tests.support.net import free_port, wait_until
from tests.support.peers import require_binary, run_peer

pytestmark = pytest.mark.peers

SNI = "realip.test"


# -- a decoding server: asyncio, HeaderReader, in its own thread ----------------------


@dataclass
class Arrival:
    header: ProxyHeader | None
    raw: bytes  # the header's bytes as received
    remaining: bytes  # everything after the header, until EOF
    error: ProxyProtocolError | None = None


@dataclass
class DecodingServer:
    """Accepts connections, decodes the PROXY header with HeaderReader, keeps
    what follows it until EOF, and answers HTTP requests with the source."""

    port: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        decoder = HeaderReader()
        raw = b""
        try:
            while decoder.header is None:
                chunk = await reader.read(7)  # small reads: headers arrive in pieces
                if not chunk:
                    return
                raw += chunk
                decoder.feed(chunk)
        except ProxyProtocolError as exc:
            self._add(Arrival(None, raw, b"", exc))
            writer.close()
            return
        header = decoder.header
        rest = decoder.remaining
        while len(rest) < 4 and (more := await reader.read(4096)):
            rest += more
        if rest.startswith(b"GET "):  # curl: answer with the address we read
            while b"\r\n\r\n" not in rest:
                more = await reader.read(4096)
                if not more:
                    break
                rest += more
            body = str(header.source[0] if header.source else "-").encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
        else:
            while more := await reader.read(4096):
                rest += more
        self._add(Arrival(header, raw[: header.length], rest))
        writer.close()

    def _add(self, arrival: Arrival) -> None:
        with self.lock:
            self.arrivals.append(arrival)

    def wait_for(self, source: tuple[str, int]) -> Arrival:
        found: list[Arrival] = []

        def arrived() -> bool:
            with self.lock:
                found[:] = [
                    a for a in self.arrivals if a.header and a.header.source == source
                ]
            return bool(found)

        try:
            wait_until(arrived, timeout=10)
        except TimeoutError:
            with self.lock:
                seen = [(a.header, a.error, a.raw) for a in self.arrivals]
            raise AssertionError(f"no header from {source}; arrivals: {seen}") from None
        return found[0]


@pytest.fixture(scope="module")
def decoder() -> Iterator[DecodingServer]:
    server = DecodingServer()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def start() -> asyncio.Server:
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        server.port = srv.sockets[0].getsockname()[1]
        return srv

    srv = loop.run_until_complete(start())
    thread = threading.Thread(
        target=lambda: (ready.set(), loop.run_forever()), daemon=True
    )
    thread.start()
    ready.wait()
    yield server
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    srv.close()
    loop.run_until_complete(srv.wait_closed())
    loop.close()


# -- HAProxy ---------------------------------------------------------------------------


@dataclass
class HAProxy:
    ports: dict[str, int]
    cert: Path


def _make_cert(directory: Path) -> Path:
    openssl = require_binary("openssl")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
         str(cert), "-days", "1", "-subj", f"/CN={SNI}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    bundle = directory / "bundle.pem"
    bundle.write_bytes(cert.read_bytes() + key.read_bytes())
    return bundle


@pytest.fixture(scope="module")
def haproxy(
    decoder: DecodingServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HAProxy]:
    binary = require_binary("haproxy")
    directory = tmp_path_factory.mktemp("haproxy")
    bundle = _make_cert(directory)
    names = ("v1", "v2", "v2crc", "tls", "accept")
    ports = {name: free_port() for name in names}
    backend = f"127.0.0.1:{decoder.port}"
    config = f"""
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend v1
    bind 127.0.0.1:{ports["v1"]}
    default_backend v1
backend v1
    server s {backend} send-proxy
frontend v2
    bind 127.0.0.1:{ports["v2"]}
    default_backend v2
backend v2
    server s {backend} send-proxy-v2
frontend v2crc
    bind 127.0.0.1:{ports["v2crc"]}
    unique-id-format realip-%ci-%cp
    default_backend v2crc
backend v2crc
    server s {backend} send-proxy-v2 proxy-v2-options crc32c,unique-id
frontend tls
    bind 127.0.0.1:{ports["tls"]} ssl crt {bundle} alpn h2,http/1.1
    default_backend tls
backend tls
    server s {backend} send-proxy-v2 proxy-v2-options ssl,ssl-cipher,authority,crc32c
frontend accept
    mode http
    bind 127.0.0.1:{ports["accept"]} accept-proxy
    http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port] %[fc_pp_authority] %[fc_pp_unique_id]"
"""  # noqa: E501
    cfg = directory / "haproxy.cfg"
    cfg.write_text(config)
    with run_peer(
        [binary, "-f", str(cfg), "-db"], ready_port=("127.0.0.1", ports["accept"])
    ):
        yield HAProxy(ports, bundle)


def _send_through(port: int, client_ip: str, payload: bytes) -> tuple[str, int]:
    with socket.create_connection(
        ("127.0.0.1", port), timeout=10, source_address=(client_ip, 0)
    ) as sock:
        me = sock.getsockname()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        while sock.recv(4096):
            pass
    return me[0], me[1]


def test_haproxy_send_proxy_v1(haproxy: HAProxy, decoder: DecodingServer) -> None:
    me = _send_through(haproxy.ports["v1"], "127.0.0.2", b"hello v1\n")
    got = decoder.wait_for(me)
    assert got.header is not None
    assert got.header.version == 1
    assert got.header.family.name == "INET"
    assert got.header.destination == ("127.0.0.1", haproxy.ports["v1"])
    assert got.remaining == b"hello v1\n"
    assert got.raw.startswith(b"PROXY TCP4 127.0.0.2 127.0.0.1 ")


def test_haproxy_send_proxy_v2(haproxy: HAProxy, decoder: DecodingServer) -> None:
    me = _send_through(haproxy.ports["v2"], "127.0.0.3", b"hello v2\n")
    got = decoder.wait_for(me)
    assert got.header is not None
    assert (got.header.version, got.header.command.name) == (2, "PROXY")
    assert (got.header.family.name, got.header.protocol.name) == ("INET", "STREAM")
    assert got.header.destination == ("127.0.0.1", haproxy.ports["v2"])
    assert got.remaining == b"hello v2\n"


def _assert_crc_guards(raw: bytes) -> None:
    header = decode(raw)
    assert header.tlv(TLVType.CRC32C) is not None
    for at in (17, 27, len(raw) - 1):  # an address byte, a port byte, the last TLV
        flipped = raw[:at] + bytes([raw[at] ^ 0x40]) + raw[at + 1 :]
        with pytest.raises(ChecksumError):
            decode(flipped)


def test_haproxy_send_proxy_v2_crc32c_unique_id(
    haproxy: HAProxy, decoder: DecodingServer
) -> None:
    me = _send_through(haproxy.ports["v2crc"], "127.0.0.4", b"hello crc\n")
    got = decoder.wait_for(me)
    header = got.header
    assert header is not None
    assert header.unique_id == f"realip-127.0.0.4-{me[1]}".encode()
    types = [tlv.type for tlv in header.tlvs]
    assert TLVType.CRC32C in types and TLVType.UNIQUE_ID in types
    # HAProxy writes the CRC32C TLV before the others: the order realip must accept.
    assert types[0] == TLVType.CRC32C
    assert got.remaining == b"hello crc\n"
    _assert_crc_guards(got.raw)


def test_haproxy_tls_sends_ssl_authority_alpn(
    haproxy: HAProxy, decoder: DecodingServer
) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(
        ("127.0.0.1", haproxy.ports["tls"]), timeout=10, source_address=("127.0.0.2", 0)
    ) as raw_sock:
        me = raw_sock.getsockname()
        with context.wrap_socket(raw_sock, server_hostname=SNI) as tls:
            version, cipher = tls.version(), tls.cipher()[0]
            tls.sendall(b"hello tls\n")
            tls.unwrap()  # close_notify, so that HAProxy closes the server side
    got = decoder.wait_for((me[0], me[1]))
    header = got.header
    assert header is not None
    assert header.alpn == b"h2"
    assert header.authority == SNI
    info = header.ssl
    assert info is not None
    assert info.ssl  # the client connected over TLS
    assert info.get(TLVType.SSL_VERSION) == version.encode()
    assert info.get(TLVType.SSL_CIPHER) == cipher.encode()
    assert got.remaining == b"hello tls\n"
    _assert_crc_guards(got.raw)


def _ask(port: int, header: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(header + b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    status, _, body = reply.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200") or status.startswith(b"HTTP/1.0 200"), (
        reply
    )
    return body.decode()


AUTH_TLVS = (
    TLV(TLVType.AUTHORITY, b"www.realip.test"),
    TLV(TLVType.UNIQUE_ID, b"id-42"),
)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (
            build_v1(("203.0.113.9", 4242), ("198.51.100.1", 443)),
            "203.0.113.9 4242 198.51.100.1 443",
        ),
        (
            build_v1(("2001:db8::9", 4242), ("2001:db8::1", 443)),
            "2001:db8::9 4242 2001:db8::1 443",
        ),
        (
            build_v2(source=("203.0.113.10", 1), destination=("198.51.100.1", 80)),
            "203.0.113.10 1 198.51.100.1 80",
        ),
        (
            build_v2(
                source=("2001:db8::a", 65535),
                destination=("2001:db8::1", 8443),
                tlvs=AUTH_TLVS,
                crc32c=True,
                pad_to=128,
            ),
            "2001:db8::a 65535 2001:db8::1 8443 www.realip.test id-42",
        ),
        (
            build_v2(
                source=("203.0.113.11", 5),
                destination=("198.51.100.1", 6),
                tlvs=(TLV(3, bytes(4)), *AUTH_TLVS),
                crc32c=True,
            ),
            "203.0.113.11 5 198.51.100.1 6 www.realip.test id-42",
        ),
    ],
    ids=["v1-tcp4", "v1-tcp6", "v2-ipv4", "v2-ipv6-tlvs-crc-pad", "v2-crc-first"],
)
def test_haproxy_accepts_realip_headers(
    haproxy: HAProxy, wire: bytes, expected: str
) -> None:
    assert _ask(haproxy.ports["accept"], wire).strip() == expected


def test_haproxy_refuses_a_bad_crc(haproxy: HAProxy) -> None:
    wire = build_v2(
        source=("203.0.113.12", 7), destination=("198.51.100.1", 8), crc32c=True
    )
    bad = wire[:-1] + bytes([wire[-1] ^ 1])
    with socket.create_connection(
        ("127.0.0.1", haproxy.ports["accept"]), timeout=10
    ) as sock:
        sock.sendall(bad + b"GET / HTTP/1.0\r\n\r\n")
        reply = b""
        try:
            while chunk := sock.recv(4096):
                reply += chunk
        except ConnectionResetError:
            pass
    assert b"203.0.113.12" not in reply
    assert not reply.startswith(b"HTTP/1.1 200")


# -- curl --haproxy-protocol ---------------------------------------------------------


def test_curl_haproxy_protocol(decoder: DecodingServer) -> None:
    curl = require_binary("curl")
    done = subprocess.run(
        [curl, "-sS", "--max-time", "10", "--haproxy-protocol", "--interface",
         "127.0.0.3", f"http://127.0.0.1:{decoder.port}/"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"127.0.0.3"


# -- nginx ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = require_binary("nginx")
    directory = tmp_path_factory.mktemp("nginx")
    port = free_port()
    temp = {
        name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")
    }
    for path in temp.values():
        path.mkdir()
    config = f"""
daemon off;
master_process off;
user root;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    server {{
        listen 127.0.0.1:{port} proxy_protocol;
        location / {{
            default_type text/plain;
            return 200 "$proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr $proxy_protocol_server_port";
        }}
    }}
}}
"""  # noqa: E501
    cfg = directory / "nginx.conf"
    cfg.write_text(config)
    argv = [
        binary,
        "-p",
        str(directory),
        "-c",
        str(cfg),
        "-e",
        str(directory / "error.log"),
    ]
    with run_peer(argv, ready_port=("127.0.0.1", port)):
        yield port


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (
            build_v1(("203.0.113.20", 1234), ("198.51.100.1", 443)),
            "203.0.113.20 1234 198.51.100.1 443",
        ),
        (
            build_v1(("2001:db8::20", 1234), ("2001:db8::1", 443)),
            "2001:db8::20 1234 2001:db8::1 443",
        ),
        (
            build_v2(source=("203.0.113.21", 65535), destination=("198.51.100.1", 80)),
            "203.0.113.21 65535 198.51.100.1 80",
        ),
        (
            build_v2(
                source=("2001:db8::21", 1),
                destination=("2001:db8::1", 2),
                tlvs=(TLV(TLVType.ALPN, b"http/1.1"), *AUTH_TLVS),
                crc32c=True,
                pad_to=200,
            ),
            "2001:db8::21 1 2001:db8::1 2",
        ),
    ],
    ids=["v1-tcp4", "v1-tcp6", "v2-ipv4", "v2-ipv6-tlvs-crc-pad"],
)
def test_nginx_accepts_realip_headers(nginx: int, wire: bytes, expected: str) -> None:
    assert _ask(nginx, wire).strip() == expected
