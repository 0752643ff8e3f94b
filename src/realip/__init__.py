"""realip: the real client address, from the PROXY protocol header to the rate limit.

The package is laid out along the chain a connection travels:

- ``realip.proxyproto``: the PROXY protocol v1/v2 codec (sans-IO, stdlib only);
- ``realip.policy``: which sources must, may or must not send a header, and the
  client address from ``Forwarded`` / ``X-Forwarded-For``;
- ``realip.servers``: asyncio and ASGI servers that apply the policy;
- ``realip.limiter``: per-client rate limiting (GCRA) in memory or on Redis;
- ``realip.diagnostics``, ``realip.capture``, ``realip.k8s``: tools to find out why a
  chain is broken;
- ``realip.cli``: the ``realip`` command.

Imports point one way only, down this list.
"""

__version__ = "0.1.0"
