"""Real endpoints for the diagnostics tests: nginx, HAProxy, realip whoami, and
three small Python servers (one closes at once, one never answers, one echoes)."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.net import free_port, wait_until
from tests.support.peers import require_binary, run_peer, stop

_NGINX_HTTP = """
daemon off;
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    {ssl}
    server {{
        listen 127.0.0.1:{port} {options};
        location / {{ return 200 "client {variable}\\n"; }}
    }}
}}
"""


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key made with the openssl command."""
    openssl = require_binary("openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@contextlib.contextmanager
def nginx(
    tmp_path: Path,
    *,
    proxy_protocol: bool,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[int]:
    """nginx serving ``client <address>`` on a free port; yields the port."""
    binary = require_binary("nginx")
    port = free_port()
    options = ("ssl " if tls else "") + ("proxy_protocol" if proxy_protocol else "")
    ssl = ""
    if tls is not None:
        ssl = f"ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};"
    variable = "$proxy_protocol_addr" if proxy_protocol else "$remote_addr"
    config = tmp_path / "nginx.conf"
    config.write_text(
        _NGINX_HTTP.format(
            dir=tmp_path, port=port, options=options, ssl=ssl, variable=variable
        )
    )
    argv = [binary, "-c", str(config), "-p", str(tmp_path)]
    with run_peer(argv, ready_port=("127.0.0.1", port)):
        yield port


_HAPROXY = """
global
    pidfile {dir}/haproxy.pid
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port} {accept}
    {rule}
    http-request return status 200 content-type text/plain lf-string "client %[src]\\n"
"""


@contextlib.contextmanager
def haproxy(
    tmp_path: Path, *, accept_proxy: bool = False, expect_from: str | None = None
) -> Iterator[int]:
    """HAProxy answering ``client <src>``: with ``accept-proxy`` on the bind line,
    or with ``expect-proxy layer4`` for connections from ``expect_from`` only."""
    binary = require_binary("haproxy")
    port = free_port()
    rule = ""
    if expect_from is not None:
        rule = f"tcp-request connection expect-proxy layer4 if {{ src {expect_from} }}"
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        _HAPROXY.format(
            dir=tmp_path,
            port=port,
            accept="accept-proxy" if accept_proxy else "",
            rule=rule,
        )
    )
    with run_peer([binary, "-f", str(config), "-db"], ready_port=("127.0.0.1", port)):
        yield port


class Whoami:
    """A ``python3 -m realip whoami`` subprocess and the address it bound."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "realip", "whoami", "--listen", "127.0.0.1:0",
             *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until(lambda: self.port is not None or self.proc.poll() is not None)
        if self.port is None:
            raise RuntimeError("whoami did not start:\n" + "".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace"))

    @property
    def port(self) -> int | None:
        for line in self.lines:
            match = re.match(r"listening on 127\.0\.0\.1:(\d+)$", line.strip())
            if match:
                return int(match.group(1))
        return None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        stop(self.proc)  # type: ignore[arg-type]
        self._reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def whoami() -> Iterator[Callable[..., Whoami]]:
    started: list[Whoami] = []

    def start(*args: str) -> Whoami:
        server = Whoami(list(args))
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


class PyServer:
    """A loopback TCP server whose every connection is handled by ``behaviour``
    on its own thread; stops accepting when closed."""

    def __init__(self, behaviour: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._behaviour = behaviour
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._held.append(conn)
            threading.Thread(target=self._behaviour, args=(conn,), daemon=True).start()

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone does not.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for conn in self._held:
            conn.close()
        self._thread.join(timeout=5)


def close_at_once(conn: socket.socket) -> None:
    conn.close()


def never_answer(conn: socket.socket) -> None:
    """Read and drop whatever comes, never write (the socket stays open until the
    server is closed)."""
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass


def echo(conn: socket.socket) -> None:
    with contextlib.suppress(OSError), conn:
        while data := conn.recv(4096):
            conn.sendall(data)


@pytest.fixture
def pyserver() -> Iterator[Callable[[Callable[[socket.socket], None]], PyServer]]:
    started: list[PyServer] = []

    def start(behaviour: Callable[[socket.socket], None]) -> PyServer:
        server = PyServer(behaviour)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
