"""Client address -> key: IPv4 exact, mapped IPv6 as IPv4, IPv6 per prefix."""

from __future__ import annotations

import pytest

from realip.errors import ConfigError
from realip.limiter import KeyPolicy


def test_ipv4_is_exact() -> None:
    keys = KeyPolicy()
    assert keys.key("192.0.2.1") == 0xC0000201
    assert keys.key("192.0.2.1") != keys.key("192.0.2.2")


@pytest.mark.parametrize(
    "mapped", ["::ffff:192.0.2.1", "::FFFF:c000:0201", "::ffff:192.0.2.1%eth0"]
)
def test_ipv4_mapped_ipv6_is_the_ipv4_client(mapped: str) -> None:
    keys = KeyPolicy(ipv6_prefix=56)
    assert keys.key(mapped) == keys.key("192.0.2.1")
    # ...and mapped clients do not collapse into one bucket under aggregation.
    assert keys.key("::ffff:192.0.2.2") != keys.key(mapped)


def test_ipv6_that_merely_ends_in_a_dotted_quad_is_ipv6() -> None:
    keys = KeyPolicy()
    assert keys.key("2001:db8::1.2.3.4") == keys.key("2001:db8::ffff")
    assert keys.key("2001:db8::1.2.3.4") != keys.key("1.2.3.4")


def test_ipv6_aggregates_by_64_by_default() -> None:
    keys = KeyPolicy()
    a = keys.key("2001:db8:1:2::1")
    assert a == keys.key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert a != keys.key("2001:db8:1:3::1")
    assert isinstance(a, int) and a < 0  # never an IPv4 key
    assert keys.describe(a) == "2001:db8:1:2::/64"
    assert keys.key("fe80::1%eth0") == keys.key("fe80::2")


@pytest.mark.parametrize(
    ("prefix", "same", "different"),
    [
        (48, "2001:db8:1:ffff::1", "2001:db8:2::1"),
        (56, "2001:db8:1:ff::1", "2001:db8:1:100::1"),
        (128, "2001:db8:1::1", "2001:db8:1::2"),
    ],
)
def test_ipv6_prefix_is_configurable(prefix: int, same: str, different: str) -> None:
    keys = KeyPolicy(ipv6_prefix=prefix)
    assert keys.key("2001:db8:1::1") == keys.key(same)
    assert keys.key("2001:db8:1::1") != keys.key(different)


def test_no_collision_between_ipv4_and_small_ipv6_prefixes() -> None:
    keys = KeyPolicy()
    assert keys.key("0.0.0.1") != keys.key("0:0:0:1::")
    assert keys.key("::") != keys.key("0.0.0.0")


def test_exempt_networks() -> None:
    keys = KeyPolicy(
        exempt=["10.0.0.0/8", "2001:db8:ff::/48", "::ffff:203.0.113.0/120"]
    )
    assert keys.key("10.1.2.3") is None
    assert keys.key("::ffff:10.1.2.3") is None
    assert keys.key("2001:db8:ff:1::9") is None
    assert keys.key("203.0.113.9") is None
    assert keys.key("11.0.0.1") is not None
    assert keys.key("2001:db8:fe::1") is not None


def test_non_ip_hosts_are_their_own_key() -> None:
    keys = KeyPolicy()
    assert keys.key("testclient") == "testclient"
    assert keys.key(None) == "unknown"
    assert keys.key("") == "unknown"
    assert keys.describe("testclient") == "testclient"
    assert keys.describe(keys.key("198.51.100.7")) == "198.51.100.7"  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", [0, 129, -1])
def test_bad_prefix_names_flag_and_value(prefix: int) -> None:
    with pytest.raises(ConfigError, match=rf"--limit-ipv6-prefix.*{prefix}"):
        KeyPolicy(
            ipv6_prefix=prefix, flag_names=("--limit-ipv6-prefix", "--limit-exempt")
        )


def test_bad_exempt_names_flag_and_value() -> None:
    with pytest.raises(ConfigError, match=r"--limit-exempt.*'10\.0\.0\.0/33'"):
        KeyPolicy(
            exempt=["10.0.0.0/33"], flag_names=("--limit-ipv6-prefix", "--limit-exempt")
        )
