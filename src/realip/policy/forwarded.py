"""The client address from ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP``.

Each proxy appends the address it received the request from, so the list reads
left to right from the (claimed) client to the nearest proxy, and only the entries
appended by proxies you trust are true. The resolver walks from the right,
skipping trusted proxies, and takes the first address that is not one (or counts
a fixed number of hops instead). Everything left of that point was written by the
client, so it is never used.

Exactly one header kind is read, the one your proxies write: a proxy that appends
``X-Forwarded-For`` usually passes a client's own ``Forwarded`` through untouched,
so reading both would let a client choose its address.

RFC 7239 section 4 and 6: ``for=`` values may be quoted IPv6 in brackets with a
port (``"[2001:db8::1]:4711"``), an obfuscated identifier (``_hidden``) or
``unknown``; neither of the last two is an address, so the walk stops there and
the nearest proxy that knows no better is taken as the client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from realip.errors import ConfigError
from realip.policy._networks import NetworkSet, NetworkSpec, normalize_host

__all__ = ["HEADERS", "ForwardedResolver", "Resolved", "parse_node"]

#: The header kinds a resolver can read, by their lower-case wire names.
HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")

_CACHE_LIMIT = 4096
_SCHEMES = frozenset({"http", "https", "ws", "wss"})

Endpoint = tuple[str, int]


class Resolved:
    """What the headers say: the client, and the scheme and host when present."""

    __slots__ = ("client", "host", "position", "scheme")

    def __init__(self, client: Endpoint, scheme: str | None, host: str | None) -> None:
        self.client = client
        self.scheme = scheme
        self.host = host
        #: (index, count) of the client in a list header: aligns the
        #: X-Forwarded-Proto/-Host entries with it.
        self.position = (0, 1)

    def __repr__(self) -> str:
        return (
            f"Resolved(client={self.client!r}, scheme={self.scheme!r}, "
            f"host={self.host!r})"
        )


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse_node(text: str) -> Endpoint | None:
    """One node (``for=`` value or list entry) as ``(host, port)``; ``None`` for
    ``unknown``, obfuscated identifiers and anything that is not an address.

    Accepts ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:443``; the port is 0 when absent or obfuscated.
    """
    node = _unquote(text)
    port = 0
    if node.startswith("["):
        host, sep, rest = node[1:].partition("]")
        if not sep:
            return None
        if rest:
            if rest[0] != ":":
                return None
            port = _port(rest[1:])
    elif node.count(":") == 1:
        host, _, port_text = node.partition(":")
        port = _port(port_text)
    else:
        host = node
    if port < 0:
        return None
    normal = normalize_host(host)
    return None if normal is None else (normal, port)


def _port(text: str) -> int:
    if text.isdigit() and len(text) <= 5:
        value = int(text)
        return value if value <= 0xFFFF else -1
    if text.startswith("_"):
        return 0  # obfuscated port (RFC 7239 section 6.3)
    return -1


def _split_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded`` elements as parameter dicts (lower-case names).

    Quoted strings may hold ``,`` ``;`` and ``=``, so splitting respects quotes.
    """
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    token: list[str] = []
    quoted = False
    escaped = False
    for char in value + ",":
        if quoted:
            token.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            continue
        if char == '"':
            quoted = True
            token.append(char)
        elif char in ";,":
            pair = "".join(token).strip()
            token.clear()
            if pair:
                name, _, raw = pair.partition("=")
                current[name.strip().lower()] = _unquote(raw)
            if char == ",":
                elements.append(current)
                current = {}
        else:
            token.append(char)
    return [element for element in elements if element]


class ForwardedResolver:
    """Resolve the client of a request that came through trusted proxies.

    ``trusted``: the proxies (CIDRs) whose headers are believed. The direct peer
    must be one of them, or the headers are ignored; the walk from the right then
    skips every trusted address and stops at the first other one. ``hops``: the
    number of proxies in front of the application instead (the client is the
    ``hops``-th entry from the right). With both, the peer must be trusted and
    ``hops`` picks the entry. ``header`` is the one header kind read (see the
    module docstring); ``use_scheme`` and ``use_host`` tell middleware to also
    apply the forwarded scheme and host.
    """

    __slots__ = (
        "_cache",
        "_name",
        "header",
        "hops",
        "trusted",
        "use_host",
        "use_scheme",
    )

    def __init__(
        self,
        trusted: Sequence[NetworkSpec] = (),
        *,
        hops: int | None = None,
        header: str = "x-forwarded-for",
        use_scheme: bool = False,
        use_host: bool = False,
        flag: str = "--forwarded-trust",
    ) -> None:
        header = header.lower()
        if header not in HEADERS:
            raise ConfigError(
                f"forwarded header must be one of {', '.join(HEADERS)}, got {header!r}"
            )
        if hops is not None and hops < 1:
            raise ConfigError(f"--forwarded-hops must be >= 1, got {hops}")
        if not trusted and hops is None:
            raise ConfigError(f"{flag}: give the trusted proxies (or a hop count)")
        self.trusted = NetworkSet.of(trusted, flag=flag)
        self.hops = hops
        self.header = header
        #: Whether callers should also apply the resolved scheme / host.
        self.use_scheme = use_scheme
        self.use_host = use_host
        self._name = header.encode("latin-1")
        # Resolutions keyed by the merged header text: a busy server sees the same
        # few values again and again (one per client behind the same proxies).
        self._cache: dict[str, Resolved | None] = {}

    def trusts(self, peer_host: str) -> bool:
        """Whether headers from this direct peer are believed."""
        if not self.trusted:
            return True  # hop-count mode: the configuration vouches for the peer
        return peer_host in self.trusted

    def resolve_headers(
        self,
        peer_host: str,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        want_scheme_host: bool = False,
    ) -> Resolved | None:
        """Resolve from ASGI-style ``(name, value)`` pairs with lower-case names.

        Returns ``None`` when the peer is not trusted or the headers name nobody;
        the caller then keeps the peer as the client. Scheme and host are looked
        up only with ``want_scheme_host``.
        """
        if not self.trusts(peer_host):
            return None
        name = self._name
        values = [value for key, value in headers if key == name]
        if not values:
            return None
        joined = values[0] if len(values) == 1 else b",".join(values)
        return self.resolve_value(
            joined.decode("latin-1"), headers if want_scheme_host else None
        )

    def resolve_value(
        self, text: str, headers: Iterable[tuple[bytes, bytes]] | None = None
    ) -> Resolved | None:
        """Resolve from the merged value of the configured header (``text``),
        assuming the direct peer is trusted. ``headers``, when given, are searched
        for ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` (list headers only;
        ``Forwarded`` carries ``proto=`` and ``host=`` itself)."""
        cache = self._cache
        try:
            walked = cache[text]
        except KeyError:
            walked = self._walk(text)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()  # values come from clients: keep memory bounded
            cache[text] = walked
        if walked is None or headers is None or self.header != "x-forwarded-for":
            return walked
        return self._with_list_extras(walked, headers)

    def _walk(self, text: str) -> Resolved | None:
        if self.header == "forwarded":
            return self._from_forwarded(text)
        if self.header == "x-real-ip":
            node = parse_node(text)
            return None if node is None else Resolved(node, None, None)
        nodes = [parse_node(item) for item in text.split(",") if item.strip()]
        index = self._pick(nodes)
        client = None if index is None else nodes[index]
        if client is None or index is None:
            return None
        resolved = Resolved(client, None, None)
        resolved.position = (index, len(nodes))
        return resolved

    # -- the walk ---------------------------------------------------------------

    def _pick(self, nodes: Sequence[Endpoint | None]) -> int | None:
        """The index of the client in ``nodes`` (left to right), or ``None``."""
        if not nodes:
            return None
        last = len(nodes) - 1
        stop = max(len(nodes) - self.hops, 0) if self.hops is not None else 0
        trusted = None if self.hops is not None else self.trusted
        for position in range(last, stop - 1, -1):
            node = nodes[position]
            if node is None:
                # unknown / obfuscated: nothing to its left can be checked, so the
                # proxy that wrote it (the node to its right) is the best answer.
                return position + 1 if position < last else None
            if trusted is not None and node[0] not in trusted:
                return position
        return stop  # hop count reached, or every hop is a trusted proxy

    def _with_list_extras(
        self, walked: Resolved, headers: Iterable[tuple[bytes, bytes]]
    ) -> Resolved:
        index, count = walked.position
        scheme = host = None
        for key, value in headers:
            if key == b"x-forwarded-proto":
                scheme = _aligned(value, index, count, lower=True)
            elif key == b"x-forwarded-host":
                host = _aligned(value, index, count, lower=False)
        if scheme is not None and scheme not in _SCHEMES:
            scheme = None
        if scheme is None and host is None:
            return walked
        return Resolved(walked.client, scheme, host)

    def _from_forwarded(self, text: str) -> Resolved | None:
        elements = _split_forwarded(text)
        nodes = [parse_node(element.get("for", "unknown")) for element in elements]
        index = self._pick(nodes)
        client = None if index is None else nodes[index]
        if client is None or index is None:
            return None
        element = elements[index]
        scheme: str | None = element.get("proto", "").lower()
        if scheme not in _SCHEMES:
            scheme = None
        return Resolved(client, scheme, element.get("host") or None)


def _aligned(value: bytes, index: int, count: int, *, lower: bool) -> str | None:
    """The entry of an ``X-Forwarded-Proto``/``-Host`` list that belongs to the
    chosen client: the one at the same position when the lists align, the only
    one when there is one; otherwise nothing (never a guess)."""
    items = [item.strip() for item in value.decode("latin-1").split(",")]
    if len(items) == 1:
        chosen = items[0]
    elif len(items) == count:
        chosen = items[index]
    else:
        return None
    if not chosen:
        return None
    return chosen.lower() if lower else chosen
