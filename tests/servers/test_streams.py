"""asyncio drop-ins with real sockets."""

from __future__ import annotations

import asyncio

from realip.policy import Action, Policy
from realip.proxyproto import TLV, Command, build_v2
from realip.servers import (
    ConnectionInfo,
    connection_info,
    current_connection,
    start_server,
)


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


async def test_start_server_ignore_reports_the_discarded_header() -> None:
    seen: list[ConnectionInfo] = []

    async def record(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        seen.append(connection_info(writer))
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    policy = Policy([("127.0.0.1", Action.IGNORE)], default=Action.DENY)
    server = await start_server(record, "127.0.0.1", 0, policy=policy)
    port = server.sockets[0].getsockname()[1]
    header = build_v2(
        Command.PROXY,
        ("203.0.113.7", 1),
        ("127.0.0.1", port),
        tlvs=[TLV(0x02, b"example.com")],
    )
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        local_port = writer.get_extra_info("sockname")[1]
        writer.write(header + b"hello\n")
        assert await reader.read() == b"hello\n"  # the header never reaches the app
        writer.close()
    (info,) = seen
    assert info.header is None
    assert info.ignored_header is not None
    assert info.ignored_header.source == ("203.0.113.7", 1)
    assert info.ignored_header.authority == "example.com"
    assert info.client == info.peer == ("127.0.0.1", local_port)
    assert info.header_came
    assert info.local == ("127.0.0.1", port)


async def test_header_split_across_reads_and_a_plain_client() -> None:
    """The slow path (a Gate made when the first bytes do not decide) and the
    fast one (client data from its first byte) on the same server."""
    policy = Policy([("127.0.0.1", Action.OPTIONAL)], default=Action.DENY)
    server = await start_server(echo_client, "127.0.0.1", 0, policy=policy)
    port = server.sockets[0].getsockname()[1]
    header = build_v2(Command.PROXY, ("192.0.2.9", 1234), ("127.0.0.1", port))
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for index in range(len(header)):
            writer.write(header[index : index + 1])
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"split\n")
        assert await reader.read() == b"192.0.2.9 1234 None split\n"
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"plain\n")
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"127.0.0.1 ") and answer.endswith(b" None plain\n")
