"""Forwarded-header resolution: one table drives the walk."""

from __future__ import annotations

import re

import pytest

from realip.errors import ConfigError
from realip.policy import ForwardedResolver, Policy
from realip.policy.forwarded import parse_node
from realip.servers.asgi import ForwardedMiddleware

TRUSTED = ["10.0.0.0/8", "2001:db8:ff::/48"]
PEER = "10.0.0.1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", ("192.0.2.1", 0)),
        ("192.0.2.1:8080", ("192.0.2.1", 8080)),
        ('"[2001:db8::1]:4711"', ("2001:db8::1", 4711)),
        ("[2001:db8::1]", ("2001:db8::1", 0)),
        ("2001:db8::1", ("2001:db8::1", 0)),
        ("::ffff:192.0.2.9", ("192.0.2.9", 0)),
        ("[::ffff:192.0.2.9]:1", ("192.0.2.9", 1)),
        ("fe80::1%eth0", ("fe80::1", 0)),
        ("192.0.2.1:_port", ("192.0.2.1", 0)),
        ("unknown", None),
        ("_hidden", None),
        ("192.0.2.1:99999", None),
        ("not an address", None),
        ("[2001:db8::1", None),
    ],
)
def test_parse_node(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_node(text) == expected


@pytest.mark.parametrize(
    ("header", "values", "expected"),
    [
        ("x-forwarded-for", ["192.0.2.1"], "192.0.2.1"),
        ("x-forwarded-for", ["6.6.6.6, 192.0.2.1, 10.0.0.2"], "192.0.2.1"),
        # Several header lines are one list, in order.
        ("x-forwarded-for", ["6.6.6.6", "192.0.2.1", "10.0.0.2"], "192.0.2.1"),
        ("x-forwarded-for", ["10.0.0.9, 10.0.0.2"], "10.0.0.9"),  # all trusted
        ("x-forwarded-for", ["192.0.2.1, unknown, 10.0.0.2"], "10.0.0.2"),
        ("x-forwarded-for", ["::ffff:10.0.0.3, 192.0.2.1"], "192.0.2.1"),
        ("x-forwarded-for", ["192.0.2.1, unknown"], None),
        ("x-forwarded-for", ["garbage"], None),
        (
            "forwarded",
            ['for=6.6.6.6, for="[2001:db8::7]:4711";proto=https, for=10.0.0.2'],
            "2001:db8::7",
        ),
        ("forwarded", ["for=192.0.2.1;by=_proxy, for=_hidden"], None),
        ("forwarded", ["For=192.0.2.1, for=_hidden, for=10.0.0.5"], "10.0.0.5"),
        ("forwarded", ['for="2001:db8:ff::1", for=192.0.2.3'], "192.0.2.3"),
        ("x-real-ip", ["192.0.2.8"], "192.0.2.8"),
    ],
)
def test_walk_from_the_right(
    header: str, values: list[str], expected: str | None
) -> None:
    resolver = ForwardedResolver(TRUSTED, header=header)
    pairs = [(header.encode(), value.encode()) for value in values]
    resolved = resolver.resolve_headers(PEER, pairs)
    assert (resolved.client[0] if resolved else None) == expected


def test_untrusted_peer_headers_are_ignored() -> None:
    resolver = ForwardedResolver(TRUSTED)
    assert (
        resolver.resolve_headers("192.0.2.50", [(b"x-forwarded-for", b"1.2.3.4")])
        is None
    )
    assert resolver.resolve_headers(
        "::ffff:10.1.1.1", [(b"x-forwarded-for", b"1.2.3.4")]
    )


@pytest.mark.parametrize(
    ("hops", "expected"), [(1, "10.0.0.2"), (2, "192.0.2.1"), (9, "6.6.6.6")]
)
def test_hop_count(hops: int, expected: str) -> None:
    resolver = ForwardedResolver(hops=hops)
    pairs = [(b"x-forwarded-for", b"6.6.6.6, 192.0.2.1, 10.0.0.2")]
    resolved = resolver.resolve_headers("203.0.113.1", pairs)
    assert resolved is not None and resolved.client[0] == expected


def test_other_header_kinds_are_never_read() -> None:
    resolver = ForwardedResolver(TRUSTED)  # x-forwarded-for
    assert resolver.resolve_headers(PEER, [(b"forwarded", b"for=1.2.3.4")]) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trusted": ["10.0.0.1/8"]}, "host bits set; did you mean 10.0.0.0/8"),
        ({"trusted": ["nope"]}, "'nope' is not an IP network"),
        ({"trusted": []}, "give the trusted proxies"),
        ({"hops": 0}, "--forwarded-hops must be >= 1, got 0"),
        ({"trusted": ["10.0.0.0/8"], "header": "via"}, "got 'via'"),
    ],
)
def test_bad_configuration_names_the_value(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ForwardedResolver(**kwargs)  # type: ignore[arg-type]


def test_policy_specs_name_the_flag_and_value() -> None:
    with pytest.raises(
        ConfigError, match=r"--proxy-protocol 'maybe=10.0.0.0/8'.*'maybe'"
    ):
        Policy.from_specs(["maybe=10.0.0.0/8"])
    with pytest.raises(ConfigError, match="default action given twice"):
        Policy.from_specs(["optional", "reject"])
    with pytest.raises(ConfigError, match=re.escape("'300.0.0.0/8' is not an IP")):
        Policy.from_specs(["require=300.0.0.0/8"])


async def test_middleware_sets_client_scheme_and_host_only_when_asked() -> None:
    seen: list[dict[str, object]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(dict(scope))

    headers = [
        (b"host", b"internal"),
        (b"x-forwarded-for", b"192.0.2.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"shop.example"),
    ]

    def scope(peer: str, kind: str = "http") -> dict[str, object]:
        return {
            "type": kind,
            "client": (peer, 5),
            "scheme": "http",
            "headers": list(headers),
        }

    plain = ForwardedMiddleware(app, ForwardedResolver(TRUSTED))
    await plain(scope(PEER), None, None)  # type: ignore[arg-type]
    await plain(scope("192.0.2.99"), None, None)  # type: ignore[arg-type]
    await plain({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen[0]["client"] == ("192.0.2.1", 0) and seen[0]["scheme"] == "http"
    assert (b"host", b"internal") in seen[0]["headers"]  # type: ignore[operator]
    assert seen[1]["client"] == ("192.0.2.99", 5)
    assert seen[2] == {"type": "lifespan"}

    full = ForwardedMiddleware(
        app, ForwardedResolver(TRUSTED, use_scheme=True, use_host=True)
    )
    await full(scope(PEER), None, None)  # type: ignore[arg-type]
    await full(scope(PEER, "websocket"), None, None)  # type: ignore[arg-type]
    assert seen[3]["scheme"] == "https"
    assert (b"host", b"shop.example") in seen[3]["headers"]  # type: ignore[operator]
    assert (b"host", b"internal") not in seen[3]["headers"]  # type: ignore[operator]
    assert seen[4]["scheme"] == "wss"


def test_middleware_rejects_a_bad_resolver() -> None:
    with pytest.raises(ConfigError, match="must be a ForwardedResolver"):
        ForwardedMiddleware(None, "10.0.0.0/8")  # type: ignore[arg-type]
