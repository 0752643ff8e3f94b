"""Sum connections up by client network and read the likely cause from the pattern.

A connection counts under the network of its client *as captured* (the peer a
server sees, such as a load balancer or a pod), not under the address its header
claims: the question is which senders add a header. Connections whose start was
not captured are listed apart, since their first bytes may be mid-stream.

The readings are rules over per-network, per-server counts; each names the
pattern it saw. Hairpin traffic: to one server, some networks always send a header
and others never do (kubernetes-hairpin.md: in-cluster clients of a LoadBalancer
IP are routed straight to the backends). Health checks: connections that open and
close empty, or v2 LOCAL headers (proxy-protocol.md, section 2.2). A sender that
speaks the wrong version: v1 where others send v2, or TLS/HTTP where others send a
header first.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from realip.capture._model import (
    EMPTY,
    HEADER,
    HTTP,
    HTTP2,
    INVALID,
    SSH,
    TLS,
    Connection,
    NamedNetwork,
    Network,
)

_KIND_NAMES = {
    TLS: "TLS",
    HTTP: "HTTP",
    HTTP2: "HTTP/2",
    SSH: "SSH",
    EMPTY: "empty",
}
_CACHE_SIZE = 4096
#: Distinct client hosts remembered per network, to tell one host from many.
_HOSTS_KEPT = 256


@dataclass(slots=True)
class _Group:
    network: Network
    name: str | None
    order: int
    hosts: set[str] = field(default_factory=set)
    mid_stream: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    servers: dict[str, Counter[str]] = field(default_factory=dict)
    first_error: str | None = None

    @property
    def label(self) -> str:
        if self.name is not None:
            return f"{self.network} ({self.name})"
        if len(self.hosts) == 1:
            return next(iter(self.hosts))
        return str(self.network)

    @property
    def total(self) -> int:
        return self.outcomes.total()

    @property
    def with_header(self) -> int:
        return sum(self.outcomes[key] for key in ("v1", "v2", "local"))


class Summary:
    """Per-network counts of the connections added, and what they suggest."""

    def __init__(
        self,
        networks: tuple[NamedNetwork, ...] = (),
        *,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 64,
    ) -> None:
        # Longest prefix first, so a /32 inside a named /16 wins.
        self._named = sorted(networks, key=lambda n: -n.network.prefixlen)
        self._order = {spec.name: index for index, spec in enumerate(networks)}
        self._prefix = {4: ipv4_prefix, 6: ipv6_prefix}
        self._groups: dict[Network, _Group] = {}
        # Parsing an address costs more than the rest of add(); clients repeat.
        self._cache: dict[str, _Group] = {}

    def add(self, connection: Connection) -> None:
        address = connection.client[0]
        group = self._cache.get(address)
        if group is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            group = self._cache[address] = self._group(ipaddress.ip_address(address))
        if len(group.hosts) < _HOSTS_KEPT:
            group.hosts.add(address)
        opening = connection.opening
        if not connection.start_seen and opening.status != HEADER:
            group.mid_stream += 1
            return
        outcome = opening.outcome
        group.outcomes[outcome] += 1
        server = _endpoint(connection.server)
        group.servers.setdefault(server, Counter())[outcome] += 1
        if opening.status == INVALID and group.first_error is None:
            group.first_error = opening.error

    def _group(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> _Group:
        for spec in self._named:
            if address in spec.network:
                network: Network = spec.network
                name: str | None = spec.name
                order = self._order[spec.name]
                break
        else:
            prefix = self._prefix[address.version]
            network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
            name, order = None, len(self._order)
        group = self._groups.get(network)
        if group is None:
            group = self._groups[network] = _Group(network, name, order)
        return group

    def groups(self) -> list[_Group]:
        return sorted(
            self._groups.values(),
            key=lambda g: (g.order, g.network.version, g.network.network_address),
        )

    def lines(self) -> list[str]:
        """One line per network: ``from X: n of m carry ...``."""
        return [_group_line(group) for group in self.groups()]

    def readings(self) -> list[str]:
        """One line per recognised pattern, most telling first."""
        groups = [g for g in self.groups() if g.total]
        out: list[str] = []
        out += _hairpin(groups)
        out += _wrong_version(groups)
        out += _mixed(groups)
        out += _invalid(groups)
        out += _health_checks(groups)
        if groups and not any(g.with_header or g.outcomes[INVALID] for g in groups):
            traffic = sum(_traffic(g.outcomes) for g in groups)
            if traffic:
                out.append(
                    "no connection carries a PROXY header: the sender does not send "
                    "one (PROXY protocol is off on the load balancer or proxy), or "
                    "the capture was taken in front of it"
                )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "networks": [_group_json(group) for group in self.groups()],
            "readings": self.readings(),
        }


def _endpoint(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _without(outcomes: Counter[str]) -> dict[str, int]:
    return {
        key.removeprefix("none:"): count
        for key, count in sorted(outcomes.items())
        if key.startswith("none:")
    }


def _traffic(outcomes: Counter[str]) -> int:
    """Connections that carried data without a header (empty ones excluded)."""
    return sum(
        count
        for key, count in outcomes.items()
        if key.startswith("none:") and key != f"none:{EMPTY}"
    )


def _headers(outcomes: Counter[str]) -> int:
    return outcomes["v1"] + outcomes["v2"]


def _group_line(group: _Group) -> str:
    total, carried = group.total, group.with_header
    outcomes = group.outcomes
    versions = [key for key in ("v1", "v2", "local") if outcomes[key]]
    if carried and carried == total and versions in (["v1"], ["v2"]):
        text = f"{carried} of {total} carry {versions[0]}"
    else:
        text = f"{carried} of {total} carry a header"
        if carried:
            shown = ", ".join(
                f"{'v2 LOCAL' if key == 'local' else key}: {outcomes[key]}"
                for key in versions
            )
            text += f" ({shown})"
    if outcomes[INVALID]:
        text += f"; {outcomes[INVALID]} invalid"
    without = _without(outcomes)
    if without:
        parts = ", ".join(
            f"{count} {_KIND_NAMES.get(kind, 'other')}"
            for kind, count in without.items()
        )
        text += f"; without: {parts}"
    if group.mid_stream:
        text += f"; {group.mid_stream} more joined mid-stream (not counted)"
    return f"from {group.label}: {text}"


def _group_json(group: _Group) -> dict[str, Any]:
    outcomes = group.outcomes
    return {
        "network": str(group.network),
        "name": group.name,
        "label": group.label,
        "hosts": len(group.hosts),
        "hosts_capped": len(group.hosts) >= _HOSTS_KEPT,
        "connections": group.total,
        "with_header": group.with_header,
        "v1": outcomes["v1"],
        "v2": outcomes["v2"],
        "local": outcomes["local"],
        "invalid": outcomes[INVALID],
        "without_header": _without(outcomes),
        "mid_stream": group.mid_stream,
        "first_error": group.first_error,
    }


def _servers(groups: list[_Group]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for server in group.servers:
            seen.setdefault(server, None)
    return list(seen)


def _names(groups: list[_Group]) -> str:
    labels = [g.label for g in groups]
    if len(labels) > 3:
        return ", ".join(labels[:3]) + f" and {len(labels) - 3} more"
    return ", ".join(labels)


def _verb(groups: list[_Group], one: str, many: str) -> str:
    return one if len(groups) == 1 else many


def _hairpin(groups: list[_Group]) -> list[str]:
    out = []
    for server in _servers(groups):
        always, never = [], []
        for group in groups:
            counts = group.servers.get(server)
            if counts is None:
                continue
            headers, traffic = _headers(counts), _traffic(counts)
            if headers and not traffic:
                always.append(group)
            elif traffic and not headers and not counts[INVALID]:
                never.append(group)
        if always and never:
            out.append(
                f"hairpin traffic likely: to {server}, {_names(never)} "
                f"{_verb(never, 'sends', 'send')} no header while {_names(always)} "
                f"always {_verb(always, 'does', 'do')}; the former reach the server "
                "without the proxy that adds it (in Kubernetes, pods calling a "
                "LoadBalancer IP are routed straight to the backends: see "
                "ipMode: Proxy)"
            )
    return out


def _wrong_version(groups: list[_Group]) -> list[str]:
    out = []
    for server in _servers(groups):
        only_v1, only_v2, both = [], [], []
        for group in groups:
            counts = group.servers.get(server, Counter())
            if counts["v1"] and counts["v2"]:
                both.append(group)
            elif counts["v1"]:
                only_v1.append(group)
            elif counts["v2"]:
                only_v2.append(group)
        if only_v1 and only_v2:
            minority, majority = (
                (only_v1, only_v2)
                if sum(g.servers[server]["v1"] for g in only_v1)
                <= sum(g.servers[server]["v2"] for g in only_v2)
                else (only_v2, only_v1)
            )
            theirs = "v1" if minority is only_v1 else "v2"
            ours = "v2" if theirs == "v1" else "v1"
            out.append(
                f"wrong version: {_names(minority)} {_verb(minority, 'sends', 'send')} "
                f"{theirs} headers to {server} where {_names(majority)} "
                f"{_verb(majority, 'sends', 'send')} {ours}; one sender is set to the "
                "other version (send-proxy vs send-proxy-v2), and a receiver that "
                "expects one refuses the other"
            )
        for group in both:
            counts = group.servers[server]
            out.append(
                f"mixed versions: {group.label} sends both v1 ({counts['v1']}) and v2 "
                f"({counts['v2']}) to {server}: its senders are not configured alike"
            )
    return out


def _mixed(groups: list[_Group]) -> list[str]:
    out = []
    for group in groups:
        for server, counts in group.servers.items():
            headers, traffic = _headers(counts), _traffic(counts)
            if headers and traffic:
                kinds = ", ".join(
                    f"{count} {_KIND_NAMES.get(kind, 'other')}"
                    for kind, count in _without(counts).items()
                    if kind != EMPTY
                )
                out.append(
                    f"header expected: {traffic} connections from {group.label} to "
                    f"{server} open with the client's own bytes ({kinds}) while "
                    f"{headers} carry a header; a sender there skips the "
                    "proxy or is not set to send the header"
                )
    return out


def _invalid(groups: list[_Group]) -> list[str]:
    return [
        f"invalid headers: {g.outcomes[INVALID]} from {g.label}, for example: "
        f"{g.first_error}"
        for g in groups
        if g.outcomes[INVALID]
    ]


def _health_checks(groups: list[_Group]) -> list[str]:
    out = []
    for group in groups:
        empty, local = group.outcomes[f"none:{EMPTY}"], group.outcomes["local"]
        if not empty and not local:
            continue
        what = " and ".join(
            text
            for count, text in (
                (empty, f"{empty} empty connection(s)"),
                (local, f"{local} v2 LOCAL header(s)"),
            )
            if count
        )
        if empty + local == group.total:
            out.append(
                f"health checks: {group.label} only opens {what}, the pattern of "
                "load balancer health checks, not client traffic"
            )
        else:
            out.append(
                f"health checks likely: {group.label} also opens {what}; these are "
                "probes, not clients missing a header"
            )
    return out
