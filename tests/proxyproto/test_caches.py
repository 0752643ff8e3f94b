"""The decoder's bounded caches (``realip.proxyproto._addr``): a cached answer is
the uncached one, nothing invalid is ever remembered, and no peer can grow them
past their caps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from realip.errors import ProxyProtocolError
from realip.proxyproto import _addr, build_v1, build_v2, decode

CACHES = (_addr.V1_INET, _addr.V1_INET6, _addr.V1_PORT, _addr.V2_INET, _addr.V2_INET6)


@pytest.fixture(autouse=True)
def empty_caches() -> Iterator[None]:
    for cache in CACHES:
        cache.clear()
    yield
    for cache in CACHES:
        cache.clear()


def headers() -> list[bytes]:
    v4 = (("203.0.113.9", 40001), ("198.51.100.1", 443))
    v6 = (("2001:db8:0:0:0:0:0:9", 40001), ("2001:DB8::1", 443))
    return [
        build_v1(*v4),
        b"PROXY TCP6 2001:db8:0:0:0:0:0:9 2001:DB8::1 40001 443\r\n",
        build_v2(source=v4[0], destination=v4[1]),
        build_v2(source=v6[0], destination=v6[1]),
    ]


@pytest.mark.parametrize("data", headers())
def test_a_cached_answer_is_the_uncached_one(data: bytes) -> None:
    first = decode(data)
    assert any(CACHES), "the decode should have filled a cache"
    second = decode(data)
    for cache in CACHES:
        cache.clear()
    assert first == second == decode(data)


def test_ipv6_comes_out_canonical_from_the_cache_too() -> None:
    data = headers()[1]
    for _ in range(2):
        header = decode(data)
        assert header.source == ("2001:db8::9", 40001)
        assert header.destination == ("2001:db8::1", 443)
    assert _addr.V1_INET6[b"2001:DB8::1"] == "2001:db8::1"


@pytest.mark.parametrize(
    ("line", "culprit"),
    [
        (b"PROXY TCP4 203.0.113.9 198.51.100.1 040001 443\r\n", b"040001"),
        (b"PROXY TCP4 203.0.113.9 198.51.100.1 +4000 443\r\n", b"+4000"),
        (b"PROXY TCP4 203.0.113.9 198.51.100.1 65536 443\r\n", b"65536"),
        (b"PROXY TCP4 203.0.113.09 198.51.100.1 4000 443\r\n", b"203.0.113.09"),
        (b"PROXY TCP4 ::1 198.51.100.1 4000 443\r\n", b"::1"),
        (b"PROXY TCP6 ::1 fe80::1%eth0 4000 443\r\n", b"fe80::1%eth0"),
    ],
)
def test_an_invalid_field_is_never_remembered(line: bytes, culprit: bytes) -> None:
    for _ in range(2):  # refused the second time too, not served from a cache
        with pytest.raises(ProxyProtocolError):
            decode(line)
    assert all(culprit not in cache for cache in CACHES)


def test_the_caches_stay_within_their_caps() -> None:
    clients = _addr.CACHE_SIZE + 10
    for i in range(clients):
        source = (f"10.{i >> 16 & 0xFF}.{i >> 8 & 0xFF}.{i & 0xFF}", 1024 + i)
        decode(build_v1(source, ("192.0.2.1", 443)))
        decode(build_v2(source=source, destination=("192.0.2.1", 443)))
        source6 = (f"2001:db8::{i:x}", 1024 + i)
        decode(build_v1(source6, ("2001:db8::1", 443)))
        decode(build_v2(source=source6, destination=("2001:db8::1", 443)))
        for cache in (_addr.V1_INET, _addr.V1_INET6, _addr.V2_INET, _addr.V2_INET6):
            assert len(cache) <= _addr.CACHE_SIZE
    # Emptied when full: the last clients are in, the first ones were dropped.
    assert b"10.0.0.0" not in _addr.V1_INET
    assert b"10.0.4.9" in _addr.V1_INET
    # Ports are few enough to keep: none was dropped.
    assert len(_addr.V1_PORT) == clients + 1


def test_the_port_cache_is_emptied_at_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_addr, "PORT_CACHE_SIZE", 8)
    for port in range(1, 20):
        header = decode(build_v1(("192.0.2.7", port), ("192.0.2.1", 443)))
        assert header.source == ("192.0.2.7", port)
        assert len(_addr.V1_PORT) <= 8
