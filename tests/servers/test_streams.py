"""asyncio drop-ins with real sockets."""

from __future__ import annotations

import asyncio

from realip.policy import Action, Policy
from realip.proxyproto import TLV, Command, build_v2
from realip.servers import connection_info, current_connection, start_server


async def echo_client(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    info = connection_info(writer)
    assert current_connection.get() == info
    line = await reader.readline()
    host, port = writer.get_extra_info("peername")
    authority = info.header.authority if info.header else None
    writer.write(f"{host} {port} {authority} ".encode() + line)
    await writer.drain()
    writer.close()


async def test_start_server_gives_the_real_client_and_tlvs() -> None:
    policy = Policy([("127.0.0.1", Action.REQUIRE)], default=Action.DENY)
    server = await start_server(echo_client, "127.0.0.1", 0, policy=policy)
    port = server.sockets[0].getsockname()[1]
    header = build_v2(
        Command.PROXY,
        ("192.0.2.9", 1234),
        ("127.0.0.1", port),
        tlvs=[TLV(0x02, b"example.com")],
    )
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(header + b"hello\n")
        answer = await reader.read()
        writer.close()
        assert answer == b"192.0.2.9 1234 example.com hello\n"

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello\n")
        assert await reader.read() == b""  # refused: closed without an answer
        writer.close()
