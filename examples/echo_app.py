"""A tiny ASGI app for the demo: answers with the client address it was given.

``/login`` stands for the endpoint worth rate limiting per client.
"""

from __future__ import annotations

import json
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    client = scope.get("client")
    body = json.dumps({"path": scope["path"], "client": client and client[0]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body + b"\n"})
