"""The ASGI middleware in starlette and FastAPI apps, in process and as two
uvicorn replicas sharing one real Redis."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from realip.cli._limitargs import add_limit_arguments, wrap_with_limits
from realip.errors import ConfigError
from realip.limiter import (
    KeyPolicy,
    Limit,
    MemoryStore,
    RateLimitMiddleware,
    Rule,
    open_store,
)
from tests.limiter.conftest import RedisServer
from tests.support.net import free_port, wait_for_port
from tests.support.peers import stop


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok", headers={"x-app": "1"})


def starlette_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/login", hello, methods=["GET", "POST"]),
            Route("/other", hello),
        ]
    )


def client(app: object, host: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_429_with_retry_after_and_ratelimit_fields() -> None:
    app = RateLimitMiddleware(
        starlette_app(), rules=[Rule("/login", Limit(5, 60.0, name="login"))]
    )
    async with client(app) as c:
        for _ in range(5):
            ok = await c.post("/login")
            assert ok.status_code == 200 and "ratelimit" not in ok.headers
        refused = await c.post("/login")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "12"
        assert refused.headers["ratelimit-policy"] == '"login";q=5;w=60'
        assert refused.headers["ratelimit"] == '"login";r=0;t=12'
        assert refused.headers["cache-control"] == "no-store"
        assert "x-app" not in refused.headers  # the app never ran
        assert (await c.get("/other")).status_code == 200  # no rule, no limit
    # Another client has its own budget.
    async with client(app, "198.51.100.1") as c:
        assert (await c.post("/login")).status_code == 200


async def test_ratelimit_on_allowed_responses_when_enabled() -> None:
    minute = Limit(5, 60.0, burst=3, name="login")
    day = Limit(100, 86400.0, name="day")
    app = RateLimitMiddleware(
        starlette_app(),
        rules=[Rule("/login", [minute, day])],
        headers_on_allowed=True,
    )
    async with client(app) as c:
        ok = await c.get("/login")
        assert ok.status_code == 200 and ok.headers["x-app"] == "1"
        assert ok.headers["ratelimit-policy"] == '"login";q=8;w=96, "day";q=100;w=86400'
        assert ok.headers["ratelimit"] == '"login";r=7;t=12, "day";r=99;t=864'
        for _ in range(7):
            await c.get("/login")
        refused = await c.get("/login")
        assert refused.status_code == 429
        # Only the limit that refused is listed, and Retry-After is not earlier.
        assert refused.headers["ratelimit"] == '"login";r=0;t=12'
        assert refused.headers["retry-after"] == "12"


async def test_fastapi_app_and_exempt_networks() -> None:
    api = FastAPI()

    @api.post("/login")
    async def login() -> dict[str, bool]:
        return {"ok": True}

    app = RateLimitMiddleware(
        api,
        rules=[Rule("/login", Limit(1, 60.0, name="login"), methods=["POST"])],
        keys=KeyPolicy(exempt=["10.0.0.0/8"]),
    )
    async with client(app) as c:
        assert (await c.post("/login")).json() == {"ok": True}
        assert (await c.post("/login")).status_code == 429
    async with client(app, "10.9.8.7") as c:
        for _ in range(5):
            assert (await c.post("/login")).status_code == 200


async def test_ipv6_clients_share_a_64() -> None:
    app = RateLimitMiddleware(
        starlette_app(), rules=[Rule("/login", Limit(2, 60.0, name="login"))]
    )
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::99"):
        async with client(app, host) as c:
            await c.get("/login")
    async with client(app, "2001:db8:1:2::abc") as c:
        assert (await c.get("/login")).status_code == 429
    async with client(app, "2001:db8:1:3::1") as c:
        assert (await c.get("/login")).status_code == 200


async def test_fail_closed_answers_503(redis: RedisServer) -> None:
    store = open_store(redis.url + "?retry_interval=30", fail_open=False)
    app = RateLimitMiddleware(
        starlette_app(),
        rules=[Rule("/login", Limit(5, 60.0, name="login"))],
        store=store,
    )
    try:
        async with client(app) as c:
            assert (await c.get("/login")).status_code == 200
            redis.kill()
            down = await c.get("/login")
            assert down.status_code == 503 and down.headers["retry-after"] == "1"
    finally:
        await store.aclose()


async def test_non_http_scopes_pass_through_and_lifespan_closes_the_store() -> None:
    closed: list[bool] = []

    class Tracking(MemoryStore):
        async def aclose(self) -> None:
            closed.append(True)

    seen: list[str] = []

    async def inner(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        seen.append(scope["type"])
        if scope["type"] == "lifespan":
            await send({"type": "lifespan.shutdown.complete"})  # type: ignore[operator]

    app = RateLimitMiddleware(
        inner,
        rules=[Rule("/*", Limit(1, 60.0, name="all"))],
        store=Tracking(),
        close_store=True,
    )
    sent: list[dict] = []  # type: ignore[type-arg]

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        sent.append(message)

    async def receive() -> dict:  # type: ignore[type-arg]
        return {}

    await app({"type": "websocket", "path": "/x"}, receive, send)
    await app({"type": "lifespan"}, receive, send)
    assert seen == ["websocket", "lifespan"]
    assert closed == [True] and sent == [{"type": "lifespan.shutdown.complete"}]


# -- the CLI flags -----------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_limit_arguments(parser)
    return parser.parse_args(argv)


def test_no_limit_returns_the_app_itself() -> None:
    app = starlette_app()
    assert wrap_with_limits(app, parse()) is app


async def test_flags_build_a_working_middleware() -> None:
    args = parse(
        "--limit", "/login=2/minute,burst=1",
        "--limit", "/login=100/day",
        "--limit-exempt", "10.0.0.0/8",
        "--limit-ipv6-prefix", "48",
        "--ratelimit-headers",
    )  # fmt: skip
    app = wrap_with_limits(starlette_app(), args)
    assert isinstance(app, RateLimitMiddleware)
    async with client(app) as c:
        ok = await c.get("/login")
        assert ok.headers["ratelimit-policy"] == (
            '"login";q=3;w=90, "login-100-per-day";q=100;w=86400'
        )
        await c.get("/login")
        await c.get("/login")
        assert (await c.get("/login")).status_code == 429


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--limit", "/login=5/fortnight"], "--limit"),
        (["--limit", "/x=1/second", "--limit-exempt", "nonsense"], "--limit-exempt"),
        (
            ["--limit", "/x=1/second", "--limit-ipv6-prefix", "200"],
            "--limit-ipv6-prefix",
        ),
        (["--limit", "/x=1/second", "--redis", "http://x"], "--redis"),
        (["--limit", "/x=1/second", "--limit-max-clients", "0"], "max_clients"),
    ],
)
def test_bad_flags_raise_config_error(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        wrap_with_limits(starlette_app(), parse(*argv))
    assert argv[-1] in str(info.value)


# -- two replicas, one Redis --------------------------------------------------------

REPLICA = """
import os
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from realip.limiter import RateLimitMiddleware, open_store, parse_limit_flags

async def login(request):
    return PlainTextResponse("ok")

app = RateLimitMiddleware(
    Starlette(routes=[Route("/login", login, methods=["POST"])]),
    rules=parse_limit_flags(["/login=5/minute,burst=1"]),
    store=open_store(os.environ["REDIS_URL"]),
    close_store=True,
)
"""


@contextlib.contextmanager
def replica(tmp_path: Path, redis_url: str) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "replica:app", "--port", str(port),
         "--host", "127.0.0.1", "--log-level", "warning"],
        cwd=tmp_path,
        env={**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        yield port
    finally:
        stop(proc)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.peers
def test_two_replicas_share_one_limit(redis: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "replica.py").write_text(REPLICA)
    with replica(tmp_path, redis.url) as a, replica(tmp_path, redis.url) as b:
        statuses = []
        with httpx.Client() as http:
            for i in range(12):
                port = a if i % 2 == 0 else b
                response = http.post(f"http://127.0.0.1:{port}/login")
                statuses.append(response.status_code)
        assert statuses == [200] * 6 + [429] * 6
        assert response.headers["ratelimit-policy"] == '"login";q=6;w=72'
