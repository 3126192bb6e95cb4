"""Provider-level protection around any channel adapter: rate limit, quick retries, breaker.

:func:`guard` wraps an adapter (the dispatcher calls it on every adapter it builds):

* **Token bucket per provider account** — ``rate_per_second`` / ``burst`` from the account
  (defaults in :data:`DEFAULT_LIMITS`); in process, or in Redis when ``settings.redis_url`` is
  set so every worker shares one budget. A batch waits up to ``rate_wait_seconds`` (account,
  default 5) for tokens; messages still without one come back RETRY ``rate_limited`` with
  ``retry_after``.
* **Quick retries, retryable errors only** — an answer the provider surely did not act on
  (HTTP 5xx, 429, throttling codes with a short wait) is retried in place up to ``retries``
  times with exponential backoff; timeouts, connection errors and malformed answers are not
  retried here (the provider may have accepted the message): they go back to the dispatcher as
  RETRY, and its later attempt carries the same idempotency key.
* **Circuit breaker per provider account** — after ``breaker_failures`` consecutive calls that
  failed at the provider level (timeouts, connection errors, 5xx, malformed answers) the
  circuit opens for ``breaker_cooldown_seconds``: every send answers UNAVAILABLE
  ``circuit_open`` at once, so the dispatcher uses the fallback channel. Then one trial batch
  goes through (half-open); its success closes the circuit, a failure opens it again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import structlog

from flywheel.auth.ratelimit import Limit, RateLimiter, build_limiter
from flywheel.channels.base import Channel, Outcome, OutcomeKind, Outgoing, StoringChannel

log = structlog.get_logger(__name__)

#: Reasons that say the provider (not the message) is failing: they trip the breaker.
BREAKER_REASONS = frozenset({"timeout", "connection_error", "malformed_response"})
#: Reasons worth an immediate retry (the provider refused before acting on the message).
QUICK_RETRY_REASONS = frozenset({"throttled", "http_429"})
#: Limits used when an account sets none (provider documented rates).
DEFAULT_LIMITS: dict[str, Limit] = {
    "wecom_robot": Limit.per_minute(20),  # 20 messages a minute per robot
}


def trips_breaker(outcome: Outcome) -> bool:
    reason = outcome.reason or ""
    return outcome.kind is OutcomeKind.RETRY and (
        reason in BREAKER_REASONS or reason.startswith("http_5")
    )


def quick_retry(outcome: Outcome, max_wait: float) -> bool:
    reason = outcome.reason or ""
    if outcome.kind is not OutcomeKind.RETRY:
        return False
    if outcome.retry_after is not None and outcome.retry_after > max_wait:
        return False
    return reason in QUICK_RETRY_REASONS or reason.startswith("http_5")


@dataclass
class CircuitBreaker:
    """Consecutive-failure breaker (closed → open → half-open → closed)."""

    failures_to_open: int = 5
    cooldown_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    trial_running: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown_seconds:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go through now (one trial at a time when half-open)."""
        with self.lock:
            state = self.state
            if state == "closed":
                return True
            if state == "half_open" and not self.trial_running:
                self.trial_running = True
                return True
            return False

    def record(self, *, success: bool) -> None:
        with self.lock:
            self.trial_running = False
            if success:
                self.failures = 0
                self.opened_at = None
                return
            self.failures += 1
            if self.opened_at is not None or self.failures >= self.failures_to_open:
                self.opened_at = self.clock()


class Breakers:
    """The process's breakers, one per provider account key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get(self, key: str, *, failures: int, cooldown: float) -> CircuitBreaker:
        with self._lock:
            found = self._breakers.get(key)
            if found is None:
                found = CircuitBreaker(failures, cooldown, self._clock)
                self._breakers[key] = found
            return found

    def states(self) -> dict[str, str]:
        with self._lock:
            return {key: b.state for key, b in self._breakers.items()}


BREAKERS = Breakers()


@cache
def shared_limiter(redis_url: str | None) -> RateLimiter:
    """One limiter per process and Redis URL (in-process buckets when None)."""
    return build_limiter(redis_url)


def account_key(channel: Channel) -> str:
    """The provider account an adapter sends through: ``<project>:<channel>:<account id>``."""
    account = channel.context.account
    return f"{channel.context.project_id}:{channel.name}:{account.get('_account_id', 'default')}"


def limit_of(channel_name: str, account: Mapping[str, Any]) -> Limit | None:
    rate = account.get("rate_per_second")
    if rate:
        burst = float(account.get("burst") or max(1.0, float(rate)))
        return Limit(rate_per_second=float(rate), burst=burst)
    return DEFAULT_LIMITS.get(channel_name)


class ResilientChannel(Channel):
    """An adapter behind a token bucket, quick retries and a circuit breaker."""

    def __init__(
        self,
        inner: Channel,
        *,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        key: str,
        limit: Limit | None,
        retries: int = 2,
        backoff_seconds: float = 0.2,
        max_wait_seconds: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(inner.context)
        self.inner = inner
        self.limiter = limiter
        self.breaker = breaker
        self.key = key
        self.limit = limit
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_wait_seconds = max_wait_seconds
        self.sleep = sleep

    def address(
        self,
        *,
        profile: Mapping[str, Any],
        identities: Mapping[str, Sequence[str]],
        config: Mapping[str, Any],
    ) -> str | None:
        return self.inner.address(profile=profile, identities=identities, config=config)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _acquire(self, wanted: int) -> tuple[int, float]:
        """Tokens granted (≤ wanted) within the wait budget, and the wait still needed for
        the rest."""
        if self.limit is None:
            return wanted, 0.0
        granted = 0
        waited = 0.0
        bucket = f"channel:{self.key}"
        rate = self.limit.rate_per_second
        while granted < wanted:
            need = wanted - granted
            decision = self.limiter.take(bucket, self.limit, float(need))
            if decision.allowed:
                return wanted, 0.0
            whole = min(need, int(decision.remaining))
            if whole >= 1 and self.limiter.take(bucket, self.limit, float(whole)).allowed:
                granted += whole
                continue
            # Until the next whole token is back.
            wait = max((1.0 - (decision.remaining - int(decision.remaining))) / rate, 0.001)
            if waited + wait > self.max_wait_seconds:
                return granted, need / rate
            await self.sleep(wait)
            waited += wait
        return granted, 0.0

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        if not messages:
            return []
        if not self.breaker.allow():
            return [
                Outcome(OutcomeKind.UNAVAILABLE, reason="circuit_open", detail=self.key)
                for _ in messages
            ]
        granted, wait = await self._acquire(len(messages))
        outcomes: list[Outcome | None] = [None] * len(messages)
        for index in range(granted, len(messages)):
            outcomes[index] = Outcome(
                OutcomeKind.RETRY, reason="rate_limited", retry_after=max(wait, 1.0)
            )
        pending = list(range(granted))
        attempt = 0
        while pending:
            try:
                results = await self.inner.send([messages[i] for i in pending])
            except Exception as exc:
                log.exception("channel_adapter_raised", channel=self.name)
                results = [
                    Outcome(OutcomeKind.RETRY, reason="connection_error", detail=type(exc).__name__)
                    for _ in pending
                ]
            if len(results) != len(pending):  # a broken adapter: never guess which one went
                results = [Outcome(OutcomeKind.RETRY, reason="adapter_error")] * len(pending)
            tripped = all(trips_breaker(o) for o in results)
            self.breaker.record(success=not tripped)
            again = []
            for index, outcome in zip(pending, results, strict=True):
                outcomes[index] = outcome
                if attempt < self.retries and quick_retry(outcome, self.max_wait_seconds):
                    again.append(index)
            if not again or self.breaker.state == "open":
                break
            attempt += 1
            hint = max((outcomes[i].retry_after or 0.0) for i in again)  # type: ignore[union-attr]
            await self.sleep(max(hint, self.backoff_seconds * (2 ** (attempt - 1))))
            pending = again
        if self.breaker.state == "open":
            log.warning("channel_circuit_open", channel=self.name, key=self.key)
        return [
            o if o is not None else Outcome(OutcomeKind.RETRY, reason="internal") for o in outcomes
        ]


@cache
def resilient_class(inner: type[Channel]) -> type[ResilientChannel]:
    """A :class:`ResilientChannel` subclass carrying ``inner``'s class traits (``name``,
    ``customer_facing``, ``needs_identities``), which the dispatcher reads on the type."""
    traits = {
        "name": inner.name,
        "customer_facing": inner.customer_facing,
        "needs_identities": inner.needs_identities,
    }
    return type(f"Resilient{inner.__name__}", (ResilientChannel,), traits)


def guard(
    channel: Channel,
    *,
    limiter: RateLimiter | None = None,
    breakers: Breakers = BREAKERS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Channel:
    """``channel`` behind its account's rate limit, quick retries and circuit breaker.

    Storing channels (in-app, advisor tasks) write to our own database, and channels without
    a provider account (webhooks — one endpoint per journey —, SMTP from the settings) have no
    provider to protect: both are returned as they are (the dispatcher's backoff and
    dead-letter still apply). Account options: ``rate_per_second``, ``burst``,
    ``rate_wait_seconds``, ``retries`` (default 2), ``breaker_failures`` (5),
    ``breaker_cooldown_seconds`` (30).
    """
    if isinstance(channel, StoringChannel | ResilientChannel) or not channel.provider_guarded:
        return channel
    account = channel.context.account
    key = account_key(channel)
    breaker = breakers.get(
        key,
        failures=int(account.get("breaker_failures") or 5),
        cooldown=float(account.get("breaker_cooldown_seconds") or 30.0),
    )
    return resilient_class(type(channel))(
        channel,
        limiter=limiter or shared_limiter(channel.context.settings.redis_url),
        breaker=breaker,
        key=key,
        limit=limit_of(channel.name, account),
        retries=int(account.get("retries", 2)),
        max_wait_seconds=float(account.get("rate_wait_seconds") or 5.0),
        sleep=sleep,
    )
