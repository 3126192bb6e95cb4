"""Access-token caching for WeCom and WeChat (``gettoken`` / ``token``).

One token per (base URL, app id, secret digest), shared by every adapter in the process and
refreshed ``margin`` seconds before ``expires_in`` ends. Concurrent callers wait on one fetch.
With Redis (:func:`tokens_for` with ``settings.redis_url``) the token is also shared by every
worker: WeChat invalidates an old token five minutes after a new one is fetched, so workers
fetching their own would keep knocking each other's token out.
A call answered "token invalid/expired" (40001, 40014, 42001) invalidates the token it used and
retries once with a fresh one (:func:`call_with_token`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: errcodes meaning "the token is not (or no longer) valid".
TOKEN_ERRORS = frozenset({40001, 40014, 42001})


class TokenError(Exception):
    """``gettoken`` answered with an error (bad credentials, or provider trouble)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass
class _Entry:
    token: str
    expires_at: float


class AccessTokens:
    def __init__(
        self,
        *,
        margin: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        redis_url: str | None = None,
    ):
        self._redis: Any = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=2.0)
        self._entries: dict[str, _Entry] = {}
        #: One lock per key and event loop (an asyncio lock belongs to one loop).
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]
        self._locks = weakref.WeakKeyDictionary()
        self._margin = margin
        self._clock = clock
        #: Number of token fetches made (for tests and metrics).
        self.fetches = 0

    @staticmethod
    def key(base_url: str, app_id: str, secret: str) -> str:
        digest = hashlib.sha256(secret.encode()).hexdigest()[:16]
        return f"{base_url}|{app_id}|{digest}"

    async def get(self, key: str, fetch: Callable[[], Awaitable[tuple[str, float]]]) -> str:
        """The cached token of ``key``; ``fetch`` → (token, expires_in seconds) when stale."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > self._clock():
            return entry.token
        per_loop = self._locks.setdefault(asyncio.get_running_loop(), {})
        lock = per_loop.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at > self._clock():
                return entry.token
            shared = self._shared_get(key)
            if shared is not None:
                self._entries[key] = _Entry(shared[0], self._clock() + shared[1])
                return shared[0]
            token, expires_in = await fetch()
            self.fetches += 1
            ttl = max(1.0, expires_in - self._margin) if expires_in > self._margin else expires_in
            self._entries[key] = _Entry(token, self._clock() + ttl)
            self._shared_set(key, token, ttl)
            return token

    def _shared_get(self, key: str) -> tuple[str, float] | None:
        if self._redis is None:
            return None
        import redis

        try:
            pipe = self._redis.pipeline()
            pipe.get(f"flywheel:token:{key}")
            pipe.pttl(f"flywheel:token:{key}")
            value, pttl = pipe.execute()
        except redis.RedisError:
            return None
        if value is None or pttl is None or pttl <= 0:
            return None
        return value.decode(), pttl / 1000.0

    def _shared_set(self, key: str, token: str, ttl: float) -> None:
        if self._redis is None:
            return
        import redis

        try:
            self._redis.set(f"flywheel:token:{key}", token, px=max(1, int(ttl * 1000)))
        except redis.RedisError:
            return

    def invalidate(self, key: str, token: str) -> None:
        """Forget ``token`` (only if it is still the cached one: another caller may have
        refreshed it already)."""
        entry = self._entries.get(key)
        if entry is not None and entry.token == token:
            del self._entries[key]
        if self._redis is not None:
            import redis

            try:
                if self._redis.get(f"flywheel:token:{key}") == token.encode():
                    self._redis.delete(f"flywheel:token:{key}")
            except redis.RedisError:
                return


#: The process's token cache (in process only).
TOKENS = AccessTokens()
_SHARED: dict[str, AccessTokens] = {}


def tokens_for(redis_url: str | None) -> AccessTokens:
    """The process's token cache, shared through Redis when ``redis_url`` is set."""
    if not redis_url:
        return TOKENS
    found = _SHARED.get(redis_url)
    if found is None:
        found = _SHARED[redis_url] = AccessTokens(redis_url=redis_url)
    return found


async def call_with_token(
    key: str,
    fetch: Callable[[], Awaitable[tuple[str, float]]],
    call: Callable[[str], Awaitable[dict[str, Any]]],
    *,
    tokens: AccessTokens = TOKENS,
) -> dict[str, Any]:
    """``call(token)``; when it answers a token error, once more with a fresh token."""
    token = await tokens.get(key, fetch)
    body = await call(token)
    if body.get("errcode") in TOKEN_ERRORS:
        tokens.invalidate(key, token)
        token = await tokens.get(key, fetch)
        body = await call(token)
    return body
