"""The trust policy: which sources may send a PROXY header, and what happens.

The spec (``doc/proxy-protocol.txt`` section 2) says a receiver "MUST not try to
guess whether the protocol header is present or not" and "SHOULD ensure proper
access filtering so that only trusted proxies are allowed to use this protocol".
Real deployments still mix senders: in the Kubernetes hairpin case, pods reach the
ingress directly and arrive without a header. A :class:`Policy` therefore maps
source networks to an :class:`Action`, first match wins, and a default covers
every other source. The default default is ``require``: nothing is guessed unless
a rule says so for a named network.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from realip.errors import ConfigError
from realip.policy._log import RefusalLog
from realip.policy._networks import (
    IPNetwork,
    NetworkSet,
    NetworkSpec,
    parse_networks,
)


class Action(enum.Enum):
    """What to do with a connection from a source."""

    #: A valid header must come first; anything else closes the connection.
    REQUIRE = "require"
    #: Use a header if one comes, else the peer is the client. Safe only for
    #: sources that cannot forge one: trusted proxies and hosts you control.
    OPTIONAL = "optional"
    #: Read and discard a header if one comes; the peer is the client.
    IGNORE = "ignore"
    #: A header from here is a spoofing attempt: close. Without one, the peer is
    #: the client.
    REJECT = "reject"
    #: Close every connection.
    DENY = "deny"


_ACTIONS = {action.value: action for action in Action}

#: Headers fit in 536 bytes (spec section 2), but a v2 header may carry the
#: client's certificate (TLV 0x28) or long vendor TLVs; 16 KiB bounds memory per
#: waiting connection without refusing those.
DEFAULT_MAX_HEADER_SIZE = 16384
#: Connections still waiting for their header, per server, before new ones are
#: refused: bounds what a flood of silent connections can hold.
DEFAULT_MAX_PENDING = 1024
#: The spec: a receiver "may apply a short timeout ... (at least 3 seconds to
#: cover a TCP retransmit)".
DEFAULT_HEADER_TIMEOUT = 5.0
#: Below this the spec's advice is not followed; allowed (tests), but flagged.
SPEC_MIN_HEADER_TIMEOUT = 3.0


def parse_action(text: str, *, flag: str = "action") -> Action:
    action = _ACTIONS.get(text.strip().lower())
    if action is None:
        choices = ", ".join(_ACTIONS)
        raise ConfigError(f"{flag}: unknown action {text!r} (choose from {choices})")
    return action


class Policy:
    """Rules from source networks to actions; immutable and shared by every
    connection of a server.

    ``rules`` are ``(network, action)`` pairs, tried in order. Networks are CIDR
    strings (``10.0.0.0/8``, ``::1``), the aliases ``any``, ``loopback`` and
    ``private``, or :mod:`ipaddress` objects. An IPv4-mapped IPv6 peer
    (``::ffff:10.0.0.5``) matches IPv4 rules.
    """

    __slots__ = (
        "_table",
        "action_cache",
        "default",
        "header_timeout",
        "max_header_size",
        "max_pending",
        "refusals",
        "rules",
    )

    def __init__(
        self,
        rules: Sequence[tuple[NetworkSpec, Action]] = (),
        default: Action = Action.REQUIRE,
        *,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        refusals: RefusalLog | None = None,
    ) -> None:
        if not isinstance(default, Action):
            raise ConfigError(f"default action must be an Action, got {default!r}")
        if not header_timeout > 0:
            raise ConfigError(f"header timeout must be > 0 s, got {header_timeout!r}")
        if max_header_size < 16:
            raise ConfigError(
                f"max header size must be >= 16 bytes, got {max_header_size!r}"
            )
        if max_pending < 1:
            raise ConfigError(f"max pending must be >= 1, got {max_pending!r}")
        entries: list[tuple[IPNetwork, object]] = []
        for spec, action in rules:
            if not isinstance(action, Action):
                raise ConfigError(
                    f"action for {spec!r} must be an Action, got {action!r}"
                )
            entries.extend((net, action) for net in parse_networks(spec, flag="rule"))
        self._table = NetworkSet(entries, default)
        #: Recent answers of :meth:`action_for` by address text (the table's own
        #: bounded cache, cleared when full). Read-only; a per-connection hot
        #: path may read it first and call action_for only on a miss.
        self.action_cache: dict[str, Action] = self._table._cache  # type: ignore[assignment]
        self.rules = self._table.networks
        self.default = default
        self.header_timeout = float(header_timeout)
        self.max_header_size = int(max_header_size)
        self.max_pending = int(max_pending)
        self.refusals = refusals if refusals is not None else RefusalLog()

    @classmethod
    def from_specs(
        cls, specs: Sequence[str], *, flag: str = "--proxy-protocol", **kw: Any
    ) -> Policy:
        """Build from command-line strings: ``ACTION=CIDR[,CIDR...]`` adds rules
        (in order, first match wins), a bare ``ACTION`` sets the default."""
        rules: list[tuple[NetworkSpec, Action]] = []
        default: Action | None = None
        for spec in specs:
            name, sep, networks = spec.partition("=")
            action = parse_action(name, flag=f"{flag} {spec!r}")
            if not sep:
                if default is not None:
                    raise ConfigError(
                        f"{flag}: default action given twice "
                        f"({default.value!r} and {action.value!r})"
                    )
                default = action
                continue
            items = [item for item in networks.split(",") if item.strip()]
            if not items:
                raise ConfigError(f"{flag} {spec!r}: no network after '='")
            for item in items:
                parse_networks(item, flag=f"{flag} {spec!r}")  # name the flag on error
                rules.append((item.strip(), action))
        return cls(rules, default if default is not None else Action.REQUIRE, **kw)

    def action_for(self, ip: str) -> Action:
        """The action for a peer address (text). Text that is not an IP address
        (a Unix socket peer) gets the default."""
        action = self.action_cache.get(ip)
        if action is None:
            return self._table.lookup(ip)  # type: ignore[return-value]
        return action

    def describe(self) -> list[str]:
        """The rules as ``action=network`` lines, then the default."""
        lines = [f"{action.value}={net}" for net, action in self.rules]  # type: ignore[attr-defined]
        lines.append(f"{self.default.value} (default)")
        return lines

    def __repr__(self) -> str:
        return f"Policy({', '.join(self.describe())})"
