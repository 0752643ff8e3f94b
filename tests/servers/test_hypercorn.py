"""hypercorn behind the gate, for real: a socket client and curl."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypercorn.config import Config

from realip.policy import Action, Policy
from realip.proxyproto import TLV, Command, build_v2
from realip.servers.hypercorn import serve
from tests.servers.echo_app import app
from tests.support.net import free_port
from tests.support.peers import require_binary

pytestmark = pytest.mark.peers


async def fetch(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def wait_listening(port: int) -> None:
    for _ in range(500):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.write(build_v2(Command.LOCAL, None, None) + b"GET / HTTP/1.0\r\n\r\n")
        writer.close()
        return
    raise TimeoutError(f"hypercorn not listening on {port}")


async def test_hypercorn_serves_behind_the_gate() -> None:
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    policy = Policy([("127.0.0.1", Action.REQUIRE)], default=Action.DENY)
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(app, config, policy=policy, shutdown_trigger=stop.wait)
    )
    try:
        await wait_listening(port)
        header = build_v2(
            Command.PROXY,
            ("192.0.2.80", 5555),
            ("127.0.0.1", port),
            tlvs=[TLV(0x02, b"hyper.example")],
        )
        raw = await fetch(
            port, header + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), raw
        answer = json.loads(body)
        assert answer["client"] == ["192.0.2.80", 5555]
        assert answer["authority"] == "hyper.example"

        assert await fetch(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b""

        curl = await asyncio.create_subprocess_exec(
            require_binary("curl"),
            "-s",
            "--haproxy-protocol",
            f"http://127.0.0.1:{port}/",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(curl.communicate(), 20)
        assert json.loads(out)["version"] == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
