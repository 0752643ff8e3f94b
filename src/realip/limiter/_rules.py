"""Which limits apply to a request: rules matched by path, method and host.

A rule binds one or more limits to requests. Every rule that matches a request
applies, so ``/*`` at 100/minute and ``/login`` at 5/minute both count a login,
and the request passes only if both have room (as several nginx ``limit_req``
directives do). Paths come in three forms:

* ``/login`` matches that path exactly;
* ``/api/*`` matches every path starting with ``/api/`` (the ``*`` must be last);
* ``~REGEX`` matches when the regular expression is found in the path, as in
  nginx's ``location ~``.

The path is the ASGI ``scope["path"]``: percent-decoded, without the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

from realip.errors import ConfigError
from realip.limiter._gcra import PERIODS, Limit

Charges = tuple[tuple[Limit, int], ...]

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SPEC_RE: Final = re.compile(
    r"(?P<path>.+)=(?P<count>\d+)/(?P<unit>[a-z]+?)s?(?P<options>(?:,[^,]*)*)"
)
_CACHE_SIZE: Final = 4096
_EXACT, _PREFIX, _PATTERN = 0, 1, 2


class Rule:
    """``limits`` apply to requests matching ``path``, ``methods`` and ``host``.

    ``methods`` (``None`` = any) are compared upper-case. ``host`` compares with
    the request's ``Host`` header without its port; ``*.example.com`` matches any
    subdomain. ``cost`` is the units one matching request takes from each limit.
    """

    __slots__ = (
        "_regex",
        "cost",
        "host",
        "kind",
        "limits",
        "methods",
        "path",
        "prefix",
    )

    def __init__(
        self,
        path: str,
        limits: Limit | Sequence[Limit],
        *,
        methods: Iterable[str] | None = None,
        host: str | None = None,
        cost: int = 1,
    ) -> None:
        if not path:
            raise ConfigError("rule path must not be empty")
        self.path = path
        self.prefix = ""
        self._regex: re.Pattern[str] | None = None
        if path.startswith("~"):
            self.kind = _PATTERN
            try:
                self._regex = re.compile(path[1:])
            except re.error as exc:
                raise ConfigError(f"bad path pattern {path!r}: {exc}") from exc
        elif path.endswith("*"):
            self.kind = _PREFIX
            self.prefix = path[:-1]
            if "*" in self.prefix:
                raise ConfigError(f"'*' may only end a path, got {path!r}")
        else:
            if "*" in path:
                raise ConfigError(f"'*' may only end a path, got {path!r}")
            self.kind = _EXACT
        self.limits = (limits,) if isinstance(limits, Limit) else tuple(limits)
        if not self.limits:
            raise ConfigError(f"rule {path!r} has no limits")
        self.methods = (
            None if methods is None else frozenset(m.upper() for m in methods)
        )
        self.host = host.lower() if host else None
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
            raise ConfigError(
                f"rule {path!r}: cost must be a whole number >= 1, got {cost!r}"
            )
        for limit in self.limits:
            if not _NAME_RE.fullmatch(limit.name):
                raise ConfigError(
                    "limit name must be 1-64 of A-Z a-z 0-9 _ . : -, "
                    f"got {limit.name!r}"
                )
            if cost > limit.capacity:
                raise ConfigError(
                    f"rule {path!r}: cost {cost} exceeds the capacity "
                    f"{limit.capacity} of limit {limit.name!r}, so it could never pass"
                )
        self.cost = cost

    def matches_path(self, path: str) -> bool:
        if self.kind == _EXACT:
            return path == self.path
        if self.kind == _PREFIX:
            return path.startswith(self.prefix)
        assert self._regex is not None  # kind == _PATTERN implies a regex
        return self._regex.search(path) is not None

    def matches_host(self, host: str) -> bool:
        want = self.host
        if want is None:
            return True
        if want.startswith("*."):
            return host.endswith(want[1:])
        return host == want

    def __repr__(self) -> str:
        return f"Rule({self.path!r}, {list(self.limits)!r}, cost={self.cost})"


class RuleSet:
    """All rules, compiled for matching once per request."""

    __slots__ = ("_cache", "_exact", "_scanned", "limits", "needs_host", "rules")

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        names: dict[str, Limit] = {}
        for rule in self.rules:
            for limit in rule.limits:
                other = names.setdefault(limit.name, limit)
                if other is not limit:
                    raise ConfigError(
                        f"two limits are named {limit.name!r}; names key the state "
                        "and the RateLimit fields, so they must differ"
                    )
        self.limits = tuple(names.values())
        self._exact: dict[str, list[Rule]] = {}
        self._scanned: list[Rule] = []
        for rule in self.rules:
            if rule.kind == _EXACT:
                self._exact.setdefault(rule.path, []).append(rule)
            else:
                self._scanned.append(rule)
        self.needs_host = any(rule.host is not None for rule in self.rules)
        self._cache: dict[tuple[str, str, str], Charges] = {}

    def match(self, path: str, method: str, host: str = "") -> Charges:
        """``(limit, cost)`` for every limit of every matching rule (may be empty)."""
        cache_key = (path, method, host)
        charges = self._cache.get(cache_key)
        if charges is not None:
            return charges
        found: list[tuple[Limit, int]] = []
        candidates = self._exact.get(path, [])
        for rule in (*candidates, *self._scanned):
            if (
                (rule.methods is None or method in rule.methods)
                and rule.matches_host(host)
                and rule.matches_path(path)
            ):
                found.extend((limit, rule.cost) for limit in rule.limits)
        charges = tuple(found)
        if len(self._cache) >= _CACHE_SIZE:
            # Paths are chosen by clients; a bounded cache cannot be grown by them.
            self._cache.clear()
        self._cache[cache_key] = charges
        return charges


def parse_limit_flag(spec: str, *, flag: str = "--limit") -> Rule:
    """Parse ``PATH=N/UNIT[,burst=B][,name=NAME][,cost=C][,methods=M|M][,host=H]``.

    UNIT is second, minute, hour or day (a plural ``s`` is accepted). The default
    name is made from the path (``/login`` -> ``login``).
    """
    match = _SPEC_RE.fullmatch(spec.strip())
    if match is None:
        raise ConfigError(f"{flag}: expected PATH=N/UNIT[,burst=B], got {spec!r}")
    unit = match["unit"]
    if unit not in PERIODS:
        raise ConfigError(
            f"{flag}: unknown unit {unit!r} in {spec!r}; "
            "use second, minute, hour or day"
        )
    options = _options(match["options"], spec, flag)
    path = match["path"]
    name = options.pop("name", None) or _default_name(path)
    try:
        burst = _whole(options.pop("burst", "0"), "burst", spec, flag)
        cost = _whole(options.pop("cost", "1"), "cost", spec, flag)
        methods = options.pop("methods", None)
        host = options.pop("host", None)
        if options:
            raise ConfigError(f"unknown option {sorted(options)[0]!r}")
        limit = Limit(int(match["count"]), PERIODS[unit], burst=burst, name=name)
        return Rule(
            path,
            limit,
            methods=None if methods is None else methods.split("|"),
            host=host,
            cost=cost,
        )
    except ConfigError as exc:
        if str(exc).startswith(flag):
            raise
        raise ConfigError(f"{flag} {spec!r}: {exc}") from exc


def parse_limit_flags(specs: Iterable[str], *, flag: str = "--limit") -> list[Rule]:
    """Parse every ``--limit`` value; default names that repeat get the rate
    appended (``login``, then ``login-100-per-day``) so that each is unique."""
    rules = [parse_limit_flag(spec, flag=flag) for spec in specs]
    seen: set[str] = set()
    for rule, spec in zip(rules, specs, strict=True):
        limit = rule.limits[0]
        if limit.name in seen and f"name={limit.name}" not in spec:
            unit = next(u for u, p in PERIODS.items() if p == limit.period)
            base = f"{limit.name}-{limit.count}-per-{unit}"
            name, n = base, 1
            while name in seen:
                n += 1
                name = f"{base}-{n}"
            limit.name = name
        seen.add(limit.name)
    return rules


def _options(text: str, spec: str, flag: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not value.strip() or key in options:
            raise ConfigError(
                f"{flag}: bad option {part!r} in {spec!r}; expected KEY=VALUE"
            )
        options[key] = value.strip()
    return options


def _whole(text: str, what: str, spec: str, flag: str) -> int:
    if not text.isdigit():
        raise ConfigError(
            f"{flag}: {what} must be a whole number, got {text!r} in {spec!r}"
        )
    return int(text)


def _default_name(path: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", path.lstrip("~")).strip("-.")
    return slug[:64] or "root"
