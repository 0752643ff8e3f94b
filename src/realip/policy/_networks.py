"""Source networks: parsed once, matched as integers on every connection.

Addresses arrive as text (a socket's peername, an ``X-Forwarded-For`` entry).
They are normalized the same way everywhere: an IPv4-mapped IPv6 address
(``::ffff:192.0.2.7``, what a dual-stack socket reports for IPv4 peers) becomes the
IPv4 address, and a zone id (``fe80::1%eth0``) is dropped, since a zone names a
local interface and never a different host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from realip.errors import ConfigError

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
NetworkSpec: TypeAlias = str | IPNetwork | IPAddress

#: Words accepted in place of a CIDR, for readable command lines.
_ALIASES: dict[str, tuple[str, ...]] = {
    "any": ("0.0.0.0/0", "::/0"),
    "all": ("0.0.0.0/0", "::/0"),
    "*": ("0.0.0.0/0", "::/0"),
    "loopback": ("127.0.0.0/8", "::1/128"),
    "private": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
}

# Parsed-address caches are bounded: peers and header values come from the
# network, so an attacker chooses how many distinct ones there are.
_CACHE_LIMIT = 4096


def parse_address(text: str) -> IPAddress | None:
    """``text`` as a normalized IP address, or ``None`` when it is not one."""
    if "%" in text:
        text = text.partition("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
    return address


def normalize_host(text: str) -> str | None:
    """The canonical text of the address ``text``, or ``None`` if it is not one."""
    address = parse_address(text)
    return None if address is None else str(address)


def parse_networks(spec: NetworkSpec, *, flag: str = "network") -> list[IPNetwork]:
    """One CIDR, bare address, alias (``any``, ``loopback``, ``private``) or
    network object, as networks. Raises :class:`ConfigError` naming ``flag``."""
    if not isinstance(spec, str):
        return [ipaddress.ip_network(spec)]
    text = spec.strip()
    alias = _ALIASES.get(text.lower())
    if alias is not None:
        return [ipaddress.ip_network(cidr) for cidr in alias]
    if not text:
        raise ConfigError(f"{flag}: empty network in {spec!r}")
    try:
        network = ipaddress.ip_network(text.partition("%")[0], strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            loose = ipaddress.ip_network(text, strict=False)
            raise ConfigError(
                f"{flag}: {text!r} has host bits set; did you mean {loose}?"
            ) from None
        raise ConfigError(
            f"{flag}: {text!r} is not an IP network (CIDR such as 10.0.0.0/8, "
            "an address, or one of any, loopback, private)"
        ) from None
    if network.version == 6 and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            # ::ffff:10.0.0.0/104 means the IPv4 network; matching is on IPv4.
            return [ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")]
    return [network]


class NetworkSet:
    """An ordered list of networks, each tagged with a value; first match wins.

    Matching converts the address to an integer once and compares masked
    integers, with a bounded cache of recent answers keyed by the address text.
    """

    __slots__ = ("_cache", "_default", "_entries", "networks")

    def __init__(
        self, entries: Iterable[tuple[IPNetwork, object]], default: object = None
    ) -> None:
        self.networks: tuple[tuple[IPNetwork, object], ...] = tuple(entries)
        self._entries = tuple(
            (net.version, int(net.network_address), int(net.netmask), value)
            for net, value in self.networks
        )
        self._default = default
        self._cache: dict[str, object] = {}

    @classmethod
    def of(cls, specs: Sequence[NetworkSpec], *, flag: str = "network") -> NetworkSet:
        """A set whose lookups answer ``True`` inside ``specs``, ``False`` outside."""
        entries = [
            (net, True) for spec in specs for net in parse_networks(spec, flag=flag)
        ]
        return cls(entries, False)

    def lookup(self, host: str) -> object:
        """The value of the first network holding ``host`` (text), or the default
        (also for text that is not an address)."""
        cache = self._cache
        try:
            return cache[host]
        except KeyError:
            pass
        address = parse_address(host)
        value = self._default if address is None else self.lookup_address(address)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[host] = value
        return value

    def lookup_address(self, address: IPAddress) -> object:
        version = address.version
        number = int(address)
        for net_version, net, mask, value in self._entries:
            if net_version == version and number & mask == net:
                return value
        return self._default

    def __contains__(self, host: str) -> bool:
        return bool(self.lookup(host))

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __repr__(self) -> str:
        return f"NetworkSet({[str(net) for net, _ in self.networks]})"
