"""The trust policy: who may send a PROXY header, and who the client really is.

:class:`Policy` maps source networks to an :class:`Action` (first match wins, the
default is ``require``); a :class:`Gate` applies it to one connection, sans-IO, and
returns a :class:`Decision` (:func:`decide` is its stateless core, for servers
that keep the per-connection state themselves).
:class:`~realip.policy.forwarded.ForwardedResolver` does the same job one layer
up, for ``Forwarded`` / ``X-Forwarded-For`` / ``X-Real-IP`` headers written by
trusted HTTP proxies.

>>> from realip.policy import Action, Gate, Policy
>>> policy = Policy([("10.0.0.0/8", Action.REQUIRE)], default=Action.REJECT)
>>> Gate(policy, ("192.0.2.1", 5000), None).feed(b"GET / HTTP/1.1\\r\\n").client
('192.0.2.1', 5000)
"""

from realip.policy._gate import Decision, Gate, decide, peer_address
from realip.policy._log import RefusalLog
from realip.policy._networks import NetworkSet, normalize_host, parse_networks
from realip.policy._rules import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_MAX_PENDING,
    SPEC_MIN_HEADER_TIMEOUT,
    Action,
    Policy,
    parse_action,
)
from realip.policy.forwarded import ForwardedResolver, Resolved

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_HEADER_SIZE",
    "DEFAULT_MAX_PENDING",
    "SPEC_MIN_HEADER_TIMEOUT",
    "Action",
    "Decision",
    "ForwardedResolver",
    "Gate",
    "NetworkSet",
    "Policy",
    "RefusalLog",
    "Resolved",
    "decide",
    "normalize_host",
    "parse_action",
    "parse_networks",
    "peer_address",
]
