"""Rate limits: token buckets, in process or shared through Redis.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_second``; each request takes
one. :class:`TokenBuckets` keeps buckets in this process (one ``flywheel serve``);
:class:`RedisTokenBuckets` keeps them in Redis so N API processes share one limit
(``FLYWHEEL_REDIS_URL``). :class:`IngestRateLimit` is the ASGI middleware that limits the
collection endpoints (``/sa``, ``/sa.gif``, ``/debug``, ``/v1/*``) per project or write key.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

import orjson
import structlog

from flywheel.core.errors import RateLimited
from flywheel.core.ids import sha256_hex

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Limit:
    """``rate_per_second`` sustained, ``burst`` at once."""

    rate_per_second: float
    burst: float

    @classmethod
    def per_minute(cls, count: float) -> Limit:
        return cls(rate_per_second=count / 60.0, burst=count)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: Seconds until one token is back (0 when allowed).
    retry_after: float
    remaining: float


class RateLimiter(Protocol):
    """Takes tokens from the bucket named ``key``."""

    def take(self, key: str, limit: Limit, cost: float = 1.0) -> Decision: ...


class TokenBuckets:
    """In-process token buckets, thread-safe. Idle buckets are forgotten past ``max_keys``."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        with self._lock:
            now = self._clock()
            tokens, stamp = self._buckets.get(key, (limit.burst, now))
            tokens = min(limit.burst, tokens + (now - stamp) * limit.rate_per_second)
            if tokens >= cost:
                tokens -= cost
                decision = Decision(True, 0.0, tokens)
            else:
                decision = Decision(False, (cost - tokens) / limit.rate_per_second, tokens)
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self._max_keys:
                self._forget_idle(now, limit)
            return decision

    def _forget_idle(self, now: float, limit: Limit) -> None:
        full_after = limit.burst / limit.rate_per_second
        idle = [k for k, (_, stamp) in self._buckets.items() if now - stamp >= full_after]
        for key in idle or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(retry), tostring(tokens)}
"""


class RedisTokenBuckets:
    """Token buckets in Redis: one atomic Lua script per take, Redis's clock, keys expire."""

    def __init__(self, url: str, *, prefix: str = "flywheel:rl:") -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=2.0)
        self._script = self._client.register_script(_TAKE_LUA)
        self._prefix = prefix

    def take(self, key: str, limit: Limit, cost: float = 1.0) -> Decision:
        """Fails open: when Redis is unreachable the request is allowed (and logged), so an
        outage of the shared counter store never takes ingest or login down with it."""
        import redis

        try:
            allowed, retry, remaining = self._script(
                keys=[self._prefix + key], args=[limit.rate_per_second, limit.burst, cost]
            )
        except redis.RedisError as exc:
            log.warning("rate_limit_store_unavailable", error=type(exc).__name__)
            return Decision(True, 0.0, 0.0)
        return Decision(bool(int(allowed)), float(retry), float(remaining))

    def close(self) -> None:
        self._client.close()


def build_limiter(redis_url: str | None) -> RateLimiter:
    """Redis-backed buckets when ``redis_url`` is set, else in-process ones."""
    return RedisTokenBuckets(redis_url) if redis_url else TokenBuckets()


def enforce(limiter: RateLimiter, key: str, limit: Limit | None, what: str) -> None:
    """Take one token or raise :class:`RateLimited` (HTTP 429) saying when to retry."""
    if limit is None:
        return
    decision = limiter.take(key, limit)
    if not decision.allowed:
        wait = max(1, int(decision.retry_after + 0.999))
        log.info("rate_limited", what=what)
        raise RateLimited(
            f"too many {what}; retry in {wait} s", detail={"retry_after_seconds": wait}
        )


# -- ingest middleware -----------------------------------------------------------------------
SENSORS_PATHS = frozenset({"/sa", "/sa.gif", "/debug"})
SEGMENT_PREFIX = "/v1/"


def ingest_rate_key(scope: dict[str, Any]) -> str | None:
    """The bucket of a collection request: its project (Sensors) or write key (Segment).

    None for any other path. Keys are hashed so no secret sits in memory or Redis in clear.
    """
    path: str = scope.get("path", "")
    if path in SENSORS_PATHS:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        project = (query.get("project") or ["default"])[0][:64]
        return f"ingest:project:{project}"
    if path.startswith(SEGMENT_PREFIX):
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, credential = value.decode("latin-1").partition(" ")
                if scheme.lower() == "basic":
                    try:
                        write_key = base64.b64decode(credential).decode().split(":", 1)[0]
                    except (ValueError, UnicodeDecodeError):
                        write_key = credential
                else:
                    write_key = credential
                return f"ingest:key:{sha256_hex(write_key)[:32]}"
        return "ingest:key:none"
    return None


class IngestRateLimit:
    """ASGI middleware: 429 with a JSON reason when a project's ingest bucket is empty."""

    def __init__(self, app: Any, *, limiter: RateLimiter, limit: Limit | None) -> None:
        self.app = app
        self.limiter = limiter
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.limit is not None and scope["type"] == "http":
            key = ingest_rate_key(scope)
            if key is not None:
                decision = self.limiter.take(key, self.limit)
                if not decision.allowed:
                    await self._refuse(send, decision)
                    return
        await self.app(scope, receive, send)

    async def _refuse(self, send: Any, decision: Decision) -> None:
        wait = max(1, int(decision.retry_after + 0.999))
        body = orjson.dumps(
            {
                "error": "rate_limited",
                "message": f"ingest rate limit of this project exceeded; retry in {wait} s",
                "detail": {"retry_after_seconds": wait},
            }
        )
        log.info("ingest_rate_limited")
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(wait).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
