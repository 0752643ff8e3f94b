"""From a client address to the key its budget is kept under.

* IPv4 addresses are exact: the key is the address as an int (0 .. 2**32 - 1).
* IPv4-mapped IPv6 (``::ffff:192.0.2.1``, RFC 4291 §2.5.5.2) is the IPv4 client
  it stands for, decided by its bits and not by how it is written, so a dual-stack
  listener cannot hand one IPv4 client two budgets nor fold all IPv4 into one
  (the express-rate-limit advisory GHSA-46wh-pxpv-q5gq).
* Other IPv6 addresses are aggregated by prefix, /64 by default: one subscriber
  usually holds a whole /64 (often more), so counting single addresses would let
  one host rotate through 2**64 budgets. The key is ``~(address >> (128 - bits))``,
  a negative int, so it can never collide with an IPv4 key. Zone ids are dropped.
* A host that is not an IP address (a test client's name, a Unix socket peer)
  is its own key, as text; a missing client shares the key ``"unknown"``.

Keys are plain ints because a memory store tracking a million clients pays for
every byte per key (see ``_memory.py``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Final

from realip.errors import ConfigError

#: What a budget is kept under: an int for IP clients, text otherwise.
ClientKey = int | str

UNKNOWN: Final = "unknown"

_MAPPED_PREFIX: Final = b"\0" * 10 + b"\xff\xff"
_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6
_from_bytes = int.from_bytes


class KeyPolicy:
    """Turns a client host into a :data:`ClientKey`, or ``None`` when exempt.

    ``ipv6_prefix`` (1..128) is the IPv6 aggregation length; ``exempt`` lists
    networks (CIDR text or :mod:`ipaddress` networks) that are never limited.
    ``flag_names`` name the settings in error messages (for example the CLI flags).
    """

    __slots__ = ("_exempt4", "_exempt6", "_shift", "ipv6_prefix")

    def __init__(
        self,
        *,
        ipv6_prefix: int = 64,
        exempt: Iterable[str | ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
        flag_names: tuple[str, str] = ("ipv6_prefix", "exempt"),
    ) -> None:
        prefix_flag, exempt_flag = flag_names
        if isinstance(ipv6_prefix, bool) or not isinstance(ipv6_prefix, int):
            raise ConfigError(f"{prefix_flag} must be 1..128, got {ipv6_prefix!r}")
        if not 1 <= ipv6_prefix <= 128:
            raise ConfigError(f"{prefix_flag} must be 1..128, got {ipv6_prefix}")
        self.ipv6_prefix = ipv6_prefix
        self._shift = 128 - ipv6_prefix
        exempt4: list[tuple[int, int]] = []
        exempt6: list[tuple[int, int]] = []
        for item in exempt:
            net = _network(item, exempt_flag)
            mask = int(net.netmask)
            if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(
                ipaddress.IPv6Network("::ffff:0:0/96")
            ):
                # A mapped network exempts the IPv4 clients it stands for.
                exempt4.append(
                    (int(net.network_address) & 0xFFFFFFFF, mask & 0xFFFFFFFF)
                )
            elif net.version == 4:
                exempt4.append((int(net.network_address), mask))
            else:
                exempt6.append((int(net.network_address), mask))
        self._exempt4 = tuple(exempt4)
        self._exempt6 = tuple(exempt6)

    def key(self, host: str | None) -> ClientKey | None:
        """The key for ``host`` (ASGI ``scope["client"][0]``); ``None`` if exempt."""
        if not host:
            return UNKNOWN
        try:
            if ":" in host:
                packed = _inet_pton(_AF_INET6, host.partition("%")[0])
                if packed[:12] != _MAPPED_PREFIX:
                    address = _from_bytes(packed, "big")
                    for net, mask in self._exempt6:
                        if address & mask == net:
                            return None
                    return ~(address >> self._shift)
                v4 = _from_bytes(packed[12:], "big")
            else:
                v4 = _from_bytes(_inet_pton(_AF_INET, host), "big")
        except OSError:
            return host
        for net, mask in self._exempt4:
            if v4 & mask == net:
                return None
        return v4

    def describe(self, key: ClientKey) -> str:
        """Readable text for ``key``: ``192.0.2.1``, ``2001:db8:1:2::/64`` or text."""
        if isinstance(key, str):
            return key
        if key >= 0:
            return socket.inet_ntop(_AF_INET, key.to_bytes(4, "big"))
        address = (~key) << self._shift
        text = socket.inet_ntop(_AF_INET6, address.to_bytes(16, "big"))
        return f"{text}/{self.ipv6_prefix}"


def _network(
    item: str | ipaddress.IPv4Network | ipaddress.IPv6Network, flag: str
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return item
    try:
        return ipaddress.ip_network(item.strip(), strict=False)
    except ValueError as exc:
        raise ConfigError(f"{flag}: not a network in CIDR form: {item!r}") from exc
