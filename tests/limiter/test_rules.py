"""Rules: the --limit grammar and matching by path, method and host."""

from __future__ import annotations

import pytest

from realip.errors import ConfigError
from realip.limiter import Limit, Rule, RuleSet, parse_limit_flag, parse_limit_flags


def test_parse_the_issue_examples() -> None:
    rule = parse_limit_flag("/login=5/minute")
    (limit,) = rule.limits
    assert (rule.path, limit.count, limit.period, limit.burst, limit.name) == (
        "/login",
        5,
        60.0,
        0,
        "login",
    )
    rule = parse_limit_flag("/api/*=100/second,burst=20")
    assert rule.limits[0].capacity == 120 and rule.prefix == "/api/"
    for unit, seconds in [
        ("second", 1),
        ("minute", 60),
        ("hour", 3600),
        ("days", 86400),
    ]:
        assert parse_limit_flag(f"/x=1/{unit}").limits[0].period == seconds


def test_parse_options() -> None:
    rule = parse_limit_flag(
        r"~^/users/\d+/reset$=3/hour,burst=1,name=reset,cost=2,methods=post|PUT,host=API.example.com"
    )
    assert rule.limits[0].name == "reset" and rule.cost == 2
    assert rule.methods == {"POST", "PUT"} and rule.host == "api.example.com"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/login", "expected PATH=N/UNIT"),
        ("/login=5/fortnight", "unknown unit 'fortnight'"),
        ("/login=five/minute", "expected PATH=N/UNIT"),
        ("/login=0/minute", "count"),
        ("/login=5/minute,burst=x", "burst must be a whole number, got 'x'"),
        ("/login=5/minute,colour=red", "unknown option 'colour'"),
        ("/login=5/minute,cost=9", "cost 9 exceeds the capacity 5"),
        ("/a*b=5/minute", "'\\*' may only end a path"),
        ("~([=5/minute", "bad path pattern"),
        ("/x=5/minute,name=has space", "limit name"),
    ],
)
def test_bad_specs_name_the_flag_and_value(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_limit_flag(spec, flag="--limit")
    assert str(info.value).startswith("--limit")
    assert spec.split(",")[0].split("=")[0] in str(info.value)


def test_default_names_are_made_unique() -> None:
    rules = parse_limit_flags(["/login=5/minute", "/login=100/day", "/login=100/day"])
    assert [r.limits[0].name for r in rules] == [
        "login",
        "login-100-per-day",
        "login-100-per-day-2",
    ]
    assert parse_limit_flag("/=1/second").limits[0].name == "root"
    assert parse_limit_flag("/api/*=1/second").limits[0].name == "api"


def test_explicit_duplicate_names_are_refused() -> None:
    rules = parse_limit_flags(["/a=1/second,name=x", "/b=1/second,name=x"])
    with pytest.raises(ConfigError, match="two limits are named 'x'"):
        RuleSet(rules)


def test_matching() -> None:
    login = Limit(5, 60.0, name="login")
    api = Limit(100, 60.0, name="api")
    users = Limit(3, 60.0, name="users")
    admin = Limit(1, 60.0, name="admin")
    rules = RuleSet(
        [
            Rule("/login", login, methods=["POST"]),
            Rule("/api/*", api, cost=2),
            Rule(r"~^/api/users/\d+$", users),
            Rule("/admin", admin, host="*.example.com"),
        ]
    )
    assert rules.match("/login", "POST") == ((login, 1),)
    assert rules.match("/login", "GET") == ()
    assert rules.match("/login/", "POST") == ()
    assert rules.match("/api/", "GET") == ((api, 2),)
    assert rules.match("/api", "GET") == ()
    assert rules.match("/api/users/42", "GET") == ((api, 2), (users, 1))
    assert rules.match("/api/users/x", "GET") == ((api, 2),)
    assert rules.needs_host
    assert rules.match("/admin", "GET", "a.example.com") == ((admin, 1),)
    assert rules.match("/admin", "GET", "example.org") == ()
    # Cached results stay right.
    assert rules.match("/api/users/42", "GET") == ((api, 2), (users, 1))
