"""The ASGI application the server tests run: it answers with what it was told."""

from __future__ import annotations

import json
from typing import Any

from realip.servers.asgi import scope_connection


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    info = scope_connection(scope)
    header = info.header if info is not None else None
    ignored = info.ignored_header if info is not None else None
    answer = {
        "client": list(scope["client"]) if scope["client"] else None,
        "server": list(scope["server"]) if scope["server"] else None,
        "ignored_source": list(ignored.source) if ignored is not None else None,
        "scheme": scope["scheme"],
        "host": dict(scope["headers"]).get(b"host", b"").decode(),
        "peer": list(info.peer) if info is not None else None,
        "action": info.action.value if info is not None else None,
        "version": header.version if header is not None else None,
        "authority": header.authority if header is not None else None,
        "unique_id": header.unique_id.hex() if header and header.unique_id else None,
        "body": body.decode(errors="replace"),
    }
    payload = json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
