"""Real Redis peers for the limiter tests: one standalone server, one 3-node Cluster.

Each server runs without persistence in a temporary directory on a port that was
free a moment ago. The standalone server is per test (tests kill and restart it);
the Cluster is shared by the module that asks for it.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_until
from tests.support.peers import require_binary, run_peer


@dataclass
class RedisServer:
    """A running redis-server; ``restart()`` brings it back on the same port."""

    port: int
    workdir: Path
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


@contextlib.contextmanager
def redis_server(workdir: Path, *extra: str) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), workdir)
    with run_peer(server.argv(*extra), ready_port=("127.0.0.1", server.port)) as proc:
        server.proc = proc
        wait_until(lambda: server.cli("PING") == "PONG")
        yield server


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
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterPeers]:
    with contextlib.ExitStack() as stack:
        nodes = []
        for i in range(3):
            workdir = tmp_path_factory.mktemp(f"cluster{i}")
            nodes.append(
                stack.enter_context(
                    redis_server(
                        workdir,
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(workdir / "nodes.conf"),
                        "--cluster-node-timeout", "2000",
                    )  # fmt: skip
                )
            )
        subprocess.run(
            [
                require_binary("redis-cli"),
                "--cluster", "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas", "0",
                "--cluster-yes",
            ],  # fmt: skip
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
