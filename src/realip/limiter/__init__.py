"""Per-client rate limiting: GCRA in memory or on Redis/Valkey, and ASGI middleware.

    from realip.limiter import Limit, Rule, RateLimitMiddleware, open_store

    app = RateLimitMiddleware(
        app,
        rules=[Rule("/login", Limit(5, 60, name="login"), methods=["POST"])],
        store=open_store("redis://127.0.0.1:6379/0"),
    )

The algorithm and the meaning of count, period and burst: ``_gcra.py``. Client
keys (IPv4 exact, IPv6 per /64): ``_keys.py``. Rules: ``_rules.py``. Stores:
``_memory.py`` and ``_redis.py``. HTTP behaviour and header fields:
``_middleware.py``.
"""

from realip.limiter._gcra import PERIODS, Decision, Limit, Verdict, gcra
from realip.limiter._keys import ClientKey, KeyPolicy
from realip.limiter._memory import MemoryStore
from realip.limiter._middleware import RateLimitMiddleware
from realip.limiter._redis import SCRIPT, SCRIPT_SHA, RedisStore, redis_store_from_url
from realip.limiter._rules import Rule, RuleSet, parse_limit_flag, parse_limit_flags
from realip.limiter._store import Store, open_store

__all__ = [
    "PERIODS",
    "SCRIPT",
    "SCRIPT_SHA",
    "ClientKey",
    "Decision",
    "KeyPolicy",
    "Limit",
    "MemoryStore",
    "RateLimitMiddleware",
    "RedisStore",
    "Rule",
    "RuleSet",
    "Store",
    "Verdict",
    "gcra",
    "open_store",
    "parse_limit_flag",
    "parse_limit_flags",
    "redis_store_from_url",
]
