"""Real Redis peers for the limiter tests: one standalone server, one 3-node Cluster.

Each server runs without persistence in a temporary directory on a port that was
free a moment ago. The standalone server is per test (tests kill and restart it);
the Cluster is shared by the module that asks for it.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.net import can_connect, free_port, wait_until
from tests.support.peers import require_binary, stop


@dataclass
class RedisServer:
    """A running redis-server; ``restart()`` brings it back on the same port."""

    port: int
    workdir: Path
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self, *extra: str) -> list[str]:
        return [
            require_binary("redis-server"),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--loglevel", "warning",
            "--logfile", str(self.workdir / "redis.log"),
            "--dir", str(self.workdir),
            *extra,
        ]  # fmt: skip

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [require_binary("redis-cli"), "-p", str(self.port), *args],
            capture_output=True,
            check=True,
            timeout=10,
        )
        return out.stdout.decode().strip()

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers."""
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(
            self.argv(*self.extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not can_connect("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.workdir / "redis.log"
                text = log.read_text() if log.exists() else ""
                raise RuntimeError(
                    f"redis-server did not start on {self.port}:\n{text}"
                )
            time.sleep(0.02)
        wait_until(self._pong)

    def _pong(self) -> bool:
        try:
            return self.cli("PING") == "PONG"
        except subprocess.CalledProcessError:
            return False  # accepting connections, not yet answering

    def kill(self) -> None:
        """SIGKILL: the abrupt loss a crash or a network cut looks like."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def redis_server(workdir: Path, *extra: str) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), workdir, extra)
    try:
        server.start()
        yield server
    finally:
        if server.proc is not None:
            stop(server.proc)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@dataclass
class RedisClusterPeers:
    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return f"redis+cluster://{hosts}"


@pytest.fixture(scope="module")
def redis_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisClusterPeers]:
    with contextlib.ExitStack() as stack:
        nodes = []
        for i in range(3):
            workdir = tmp_path_factory.mktemp(f"cluster{i}")
            nodes.append(
                stack.enter_context(
                    redis_server(
                        workdir,
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        str(workdir / "nodes.conf"),
                        "--cluster-node-timeout",
                        "2000",
                        # The default bus port (port + 10000) may not exist or be
                        # taken; pick one the kernel says is free.
                        "--cluster-port",
                        str(free_port()),
                    )
                )
            )
        subprocess.run(
            [
                require_binary("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        for node in nodes:
            wait_until(
                lambda node=node: "cluster_state:ok" in node.cli("CLUSTER", "INFO"),
                timeout=30,
            )
        yield RedisClusterPeers(nodes)
