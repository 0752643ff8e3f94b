"""hypercorn behind the policy gate.

hypercorn's asyncio worker accepts connections with ``asyncio.start_server`` and
reads the client from the socket's ``getpeername()``. :func:`serve` runs
:func:`hypercorn.asyncio.serve` with that one call routed to
:func:`realip.servers.start_server` (the policy travels in a context variable, so
other code in the process is unaffected), and realip's transport reports the
real client, so ``scope["client"]`` is right. The connection's
:class:`~realip.servers.ConnectionInfo` (TLVs included) is
``realip.servers.current_connection.get()`` inside the application, or
:func:`realip.servers.asgi.scope_connection(scope)`.

Limits: plain TCP listeners only (hypercorn's TLS listeners would decrypt before
the gate, but the PROXY header comes before the TLS handshake), and the asyncio
worker only (not trio).

Usage::

    from hypercorn.config import Config
    from realip.policy import Action, Policy
    from realip.servers.hypercorn import serve

    config = Config()
    config.bind = ["0.0.0.0:8000"]
    policy = Policy([("10.0.0.0/8", Action.REQUIRE)], default=Action.REJECT)
    asyncio.run(serve(app, config, policy=policy))
"""

from __future__ import annotations

import asyncio
import contextvars
import types
from collections.abc import Awaitable, Callable
from typing import Any

from realip.errors import ConfigError
from realip.policy import Policy
from realip.servers._streams import start_server

__all__ = ["serve"]

_POLICY: contextvars.ContextVar[Policy | None] = contextvars.ContextVar(
    "realip_hypercorn_policy", default=None
)


async def _start_server(cb: Any, *args: Any, **kwargs: Any) -> asyncio.Server:
    policy = _POLICY.get()
    if policy is None:
        return await asyncio.start_server(cb, *args, **kwargs)
    if kwargs.get("ssl") is not None:
        raise ConfigError(
            "hypercorn TLS listeners cannot sit behind the PROXY gate (the header "
            "precedes the TLS handshake); use plain binds and terminate TLS earlier"
        )
    kwargs.pop("ssl", None)
    kwargs.pop("ssl_handshake_timeout", None)
    return await start_server(cb, *args, policy=policy, **kwargs)


class _AsyncioWithGate(types.ModuleType):
    """``asyncio`` as hypercorn's worker module sees it: the same module, except
    that ``start_server`` consults the policy of the running :func:`serve`."""

    start_server = staticmethod(_start_server)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


def _install() -> None:
    from hypercorn.asyncio import run

    # hypercorn's worker calls ``asyncio.start_server`` through its module global.
    if not isinstance(getattr(run, "asyncio", None), _AsyncioWithGate):
        setattr(run, "asyncio", _AsyncioWithGate("asyncio"))  # noqa: B010


async def serve(
    app: Any,
    config: Any,
    *,
    policy: Policy,
    shutdown_trigger: Callable[..., Awaitable[None]] | None = None,
) -> None:
    """Like :func:`hypercorn.asyncio.serve`, with ``policy`` applied to every
    connection before hypercorn sees a byte."""
    from hypercorn.asyncio import serve as hypercorn_serve

    _install()
    token = _POLICY.set(policy)
    try:
        await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger)
    finally:
        _POLICY.reset(token)
