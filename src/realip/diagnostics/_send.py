"""``realip send``: one connection with a hand-made PROXY header and a payload.

By default the header tells the truth, as a load balancer's health check would
(spec section 2.1: "build a valid PROXY line" from getsockname()/getpeername()):
the source is this socket's own address and the destination is the peer. Any of
them can be overridden to claim something else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from realip.diagnostics._exchange import (
    Exchange,
    Framing,
    HeaderBuilder,
    HostPort,
    HttpFraming,
    RawFraming,
    exchange,
)
from realip.errors import ConfigError
from realip.proxyproto import TLV, Command, build_v1, build_v2


class HeaderVersion(enum.Enum):
    V1 = "v1"
    V2 = "v2"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class HeaderSpec:
    """The header to send; ``None`` addresses mean "this connection's own"."""

    version: HeaderVersion = HeaderVersion.V1
    source: HostPort | None = None
    destination: HostPort | None = None
    tlvs: tuple[TLV, ...] = ()
    local: bool = False
    crc32c: bool = False

    def __post_init__(self) -> None:
        if self.version is HeaderVersion.V2:
            return
        extras = [
            name
            for name, used in (
                ("TLVs", bool(self.tlvs)),
                ("LOCAL", self.local),
                ("CRC32C", self.crc32c),
            )
            if used
        ]
        if extras:
            raise ConfigError(
                f"{' and '.join(extras)} need a v2 header, not {self.version.value}"
            )
        if self.version is HeaderVersion.NONE and (self.source or self.destination):
            raise ConfigError("a source or destination needs a header (v1 or v2)")

    def builder(self) -> HeaderBuilder | None:
        """A function of the connection's (local, peer) addresses that builds it."""
        if self.version is HeaderVersion.NONE:
            return None

        def build(local: HostPort, peer: HostPort) -> bytes:
            source = self.source or local
            destination = self.destination or peer
            if (":" in source[0]) != (":" in destination[0]):
                # Neither version can carry two families (sections 2.1, 2.2).
                raise ConfigError(
                    f"source {source[0]} and destination {destination[0]} are of "
                    "different IP families: claim both, of the same family"
                )
            if self.version is HeaderVersion.V1:
                return build_v1(source, destination)
            if self.local:
                # A LOCAL header's address block is discarded by the receiver
                # (section 2.2); HAProxy's health checks send it empty.
                return build_v2(Command.LOCAL, tlvs=self.tlvs, crc32c=self.crc32c)
            return build_v2(
                Command.PROXY,
                source,
                destination,
                tlvs=self.tlvs,
                crc32c=self.crc32c,
            )

        return build


def send(
    target: HostPort,
    spec: HeaderSpec,
    payload: bytes | HttpFraming,
    *,
    timeout: float = 5.0,
    bind: str | None = None,
) -> Exchange:
    """Send ``spec``'s header and ``payload`` to ``target`` and read the answer
    until the peer closes, an HTTP response ends, or ``timeout`` seconds pass
    without a byte. Network failures are in the result, never raised."""
    framing: Framing = (
        payload if isinstance(payload, HttpFraming) else RawFraming(payload)
    )
    if timeout <= 0:
        raise ConfigError(f"timeout must be more than 0 seconds, got {timeout:g}")
    return exchange(
        target,
        spec.builder(),
        framing,
        connect_timeout=timeout,
        idle=timeout,
        bind=bind,
    )
