"""``realip whoami``: an echo server that tells each client what the server saw.

Put it where the application would be, behind the balancer under test: per TCP
connection (or per HTTP request with ``http=True``, keep-alive included) it answers
with the direct peer, the PROXY header that came (all fields and TLVs, also when
the policy ignored it), the policy action that applied, the client the policy
and the forwarded headers resolve to,
and for HTTP the request line and every forwarded header as received.

The trust policy runs before this code sees a byte (:func:`realip.servers.
start_server`); refused connections are closed there and logged on
``realip.policy``. HTTP/1.1 is parsed with ``httptools`` (llhttp).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httptools

from realip.diagnostics._render import render_whoami
from realip.policy import ForwardedResolver, Policy
from realip.proxyproto import header_to_json
from realip.servers import ConnectionInfo, connection_info, start_server

log = logging.getLogger("realip.diagnostics")

#: The request headers whoami reports: what proxies use to pass the client on.
FORWARDED_HEADERS = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-real-ip",
    }
)
#: Bounds per connection: a request head larger than this gets 431 and a close
#: (RFC 6585 section 5), an idle keep-alive connection is closed after this long.
MAX_HEAD = 64 * 1024
IDLE_TIMEOUT = 60.0
#: How long a raw TCP connection is drained after the answer, so that closing it
#: does not turn unread client bytes into a reset that could destroy the answer.
DRAIN_TIMEOUT = 2.0


def connection_report(info: ConnectionInfo) -> dict[str, Any]:
    """What the server knows of a connection, as a JSON-ready dict.

    ``proxy_header`` is the header the policy used; ``ignored_proxy_header`` one
    that came and was read and discarded (action ``ignore``: the client stays
    the peer). At most one is set, so "did a header come?" is "is either set?".
    """
    header = info.header
    ignored = info.ignored_header
    # The gate takes the client from INET/INET6 PROXY headers only (LOCAL, UNKNOWN
    # and UNIX mean "use the real connection", spec sections 2.1 and 2.2).
    from_header = header is not None and isinstance(header.source, tuple)
    source = "proxy-header" if from_header else "peer"
    local = info.local
    return {
        "peer": _address(info.peer),
        "local": None if local is None else _address(local),
        "action": info.action.value,
        "proxy_header": None if header is None else header_to_json(header),
        "ignored_proxy_header": None if ignored is None else header_to_json(ignored),
        "client": {**_address(info.client), "from": source},
    }


def _address(address: tuple[str, int]) -> dict[str, Any]:
    return {"address": address[0], "port": address[1]}


@dataclass(slots=True)
class _Request:
    """One HTTP request as httptools reports it."""

    url: bytearray = field(default_factory=bytearray)
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    method: str = ""
    version: str = ""
    keep_alive: bool = False
    complete: bool = False


class _HttpCollector:
    """httptools callbacks: gather each request's line and headers (bodies are
    read and dropped, as an echo of them would only repeat what the client sent)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.current = _Request()
        self.done: list[_Request] = []
        # Bytes received while a request head is unfinished: llhttp has no limit
        # of its own, and reports a header only once its value has ended.
        self.in_head = False
        self.head_bytes = 0

    def on_message_begin(self) -> None:
        self.current = _Request()
        self.in_head = True
        self.head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        request = self.current
        request.method = self.parser.get_method().decode("ascii", "replace")
        request.version = self.parser.get_http_version()
        request.keep_alive = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self.current.complete = True
        self.done.append(self.current)


class WhoamiService:
    """The connection callback of the whoami server (for
    :func:`realip.servers.start_server`), and its bookkeeping for shutdown."""

    def __init__(
        self,
        *,
        http: bool = False,
        json_output: bool = False,
        forwarded: ForwardedResolver | None = None,
    ) -> None:
        self.http = http
        self.json_output = json_output
        self.forwarded = forwarded
        self.tasks: set[asyncio.Task[Any]] = set()

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        info = connection_info(writer)
        try:
            if self.http:
                await self._serve_http(reader, writer, info)
            else:
                await self._serve_tcp(reader, writer, info)
        except (ConnectionError, TimeoutError) as exc:
            log.debug("whoami connection ended peer=%s error=%r", info.peer, exc)
        except Exception:
            # One bad connection must never take the server down.
            log.exception("whoami: unexpected error with peer %s", info.peer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await writer.wait_closed()

    async def _serve_tcp(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: ConnectionInfo,
    ) -> None:
        report = connection_report(info)
        writer.write(self._body(report, self.json_output))
        if writer.can_write_eof():
            writer.write_eof()
        await writer.drain()
        # Read what the client sent until it closes too (bounded): closing with
        # unread bytes would send a reset instead of the answer's FIN.
        async with asyncio.timeout(DRAIN_TIMEOUT):
            while await reader.read(65536):
                pass

    async def _serve_http(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: ConnectionInfo,
    ) -> None:
        collector = _HttpCollector()
        while True:
            async with asyncio.timeout(IDLE_TIMEOUT):
                data = await reader.read(65536)
            if not data:
                return
            problem = _feed(collector, data)
            close = False
            for request in collector.done:
                writer.write(self._http_response(request, info))
                if not request.keep_alive:
                    close = True  # requests pipelined after it go unanswered
                    break
            collector.done.clear()
            if problem is not None:
                writer.write(problem)
                close = True
            await writer.drain()
            if close:
                return

    def _http_response(self, request: _Request, info: ConnectionInfo) -> bytes:
        report = connection_report(info)
        report["http"] = _http_report(request)
        self._resolve_forwarded(report, request, info)
        accept = _header(request.headers, b"accept") or ""
        as_json = self.json_output or "application/json" in accept.lower()
        body = self._body(report, as_json)
        kind = "application/json" if as_json else "text/plain; charset=utf-8"
        payload = b"" if request.method == "HEAD" else body
        head = (
            f"HTTP/1.1 200 OK\r\n"
            f"Content-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            f"Connection: {'keep-alive' if request.keep_alive else 'close'}\r\n"
            "\r\n"
        )
        return head.encode("ascii") + payload

    def _resolve_forwarded(
        self, report: dict[str, Any], request: _Request, info: ConnectionInfo
    ) -> None:
        if self.forwarded is None:
            return
        lowered = [(name.lower(), value) for name, value in request.headers]
        resolved = self.forwarded.resolve_headers(info.client[0], lowered)
        if resolved is not None:
            report["client"] = {
                **_address(resolved.client),
                "from": f"forwarded-header ({self.forwarded.header})",
            }

    @staticmethod
    def _body(report: dict[str, Any], as_json: bool) -> bytes:
        if as_json:
            return (json.dumps(report, indent=2) + "\n").encode("utf-8")
        return render_whoami(report).encode("utf-8")


def _feed(collector: _HttpCollector, data: bytes) -> bytes | None:
    """Parse ``data``; return an error response to send before closing, if any."""
    try:
        collector.parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        # An Upgrade or CONNECT request: answered like any other, then closed.
        collector.current.complete = True
        collector.current.keep_alive = False
        if collector.current not in collector.done:
            collector.done.append(collector.current)
        return None
    except httptools.HttpParserError as exc:
        return _error_response(400, "Bad Request", f"not an HTTP/1.1 request: {exc}")
    if collector.in_head:
        collector.head_bytes += len(data)
    if collector.head_bytes > MAX_HEAD:
        return _error_response(
            431, "Request Header Fields Too Large", f"more than {MAX_HEAD} bytes"
        )
    return None


def _error_response(status: int, reason: str, detail: str) -> bytes:
    body = f"{status} {reason}: {detail}\n".encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _http_report(request: _Request) -> dict[str, Any]:
    target = request.url.decode("latin-1")
    forwarded = [
        {"name": name.decode("latin-1"), "value": value.decode("latin-1")}
        for name, value in request.headers
        if name.lower() in FORWARDED_HEADERS
    ]
    return {
        "request_line": f"{request.method} {target} HTTP/{request.version}",
        "method": request.method,
        "target": target,
        "version": request.version,
        "host": _header(request.headers, b"host"),
        "forwarded_headers": forwarded,
    }


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def run_whoami(
    host: str,
    port: int,
    *,
    policy: Policy,
    service: WhoamiService,
    ready: Callable[[list[tuple[str, int]]], None],
    stop: asyncio.Event,
    grace: float = 5.0,
) -> None:
    """Serve until ``stop`` is set, then shut down in phases: stop listening, let
    open connections finish for ``grace`` seconds, cancel the rest."""
    server = await start_server(service.handle, host, port, policy=policy)
    bound = [
        (str(sock.getsockname()[0]), int(sock.getsockname()[1]))
        for sock in server.sockets
    ]
    ready(bound)
    try:
        await stop.wait()
    finally:
        server.close()
        open_tasks = set(service.tasks)
        if open_tasks:
            _done, pending = await asyncio.wait(open_tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.info("whoami: cancelled %d open connection(s)", len(pending))
        await server.wait_closed()
