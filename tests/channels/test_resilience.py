"""Rate limits, quick retries and the circuit breaker around real adapters and a real local
provider server (and real Redis for the shared bucket)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from flywheel.auth.ratelimit import RedisTokenBuckets, TokenBuckets
from flywheel.channels.base import REGISTRY, Channel, ChannelContext, Outcome, OutcomeKind
from flywheel.channels.catalog import channel_names
from flywheel.channels.resilience import Breakers, ResilientChannel, guard
from flywheel.config import Settings
from tests.channels.providers.conftest import outgoing
from tests.channels.providers.sim import Simulator, accounts, running_simulator


@pytest.fixture(scope="module")
def _simulator() -> Iterator[Simulator]:
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def sim(_simulator: Simulator) -> Simulator:
    _simulator.reset()
    from flywheel.channels.providers.tokens import TOKENS

    TOKENS._entries.clear()
    return _simulator


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _adapter(name: str, account: dict[str, Any], settings: Settings | None = None) -> Channel:
    assert name in channel_names()
    context = ChannelContext(
        settings=settings or Settings(env="test"), project_id=1, account=account
    )
    return REGISTRY[name](context)


def _run(channel: Channel, messages: list[Any]) -> list[Outcome]:
    """Send on a fresh event loop, then release the adapter's connections (a no-op for
    JPush, which the breaker tests reuse across calls)."""

    async def go() -> list[Outcome]:
        try:
            return await channel.send(messages)
        finally:
            await channel.aclose()

    return asyncio.run(go())


async def _no_sleep(_seconds: float) -> None:
    return None


def test_a_5xx_is_retried_in_place_and_the_message_goes_once(sim: Simulator) -> None:
    sim.fault("aliyun", "http_500", "http_500")
    channel = guard(
        _adapter("sms", accounts(sim)["sms_aliyun"]), breakers=Breakers(), sleep=_no_sleep
    )
    [outcome] = _run(channel, [outgoing(1, "13800000001")])
    assert outcome.kind is OutcomeKind.SENT
    assert sim.requests["aliyun"] == 3
    assert len(sim.accepted["aliyun"]) == 1


def test_a_timeout_is_not_retried_in_place(sim: Simulator) -> None:
    sim.fault("wecom_app", "timeout")
    channel = guard(
        _adapter("wecom_app", accounts(sim, timeout=1.0)["wecom_app"]),
        breakers=Breakers(),
        sleep=_no_sleep,
    )
    [outcome] = _run(channel, [outgoing(1, "u1", "wecom_app")])
    assert (outcome.kind, outcome.reason) == (OutcomeKind.RETRY, "timeout")
    assert sim.requests["wecom_app"] == 1


def test_a_template_rejection_is_never_retried(sim: Simulator) -> None:
    channel = guard(
        _adapter("wechat_template", accounts(sim)["wechat"]), breakers=Breakers(), sleep=_no_sleep
    )
    [outcome] = _run(channel, [outgoing(1, "ounfollowed", "wechat_template")])
    assert outcome.kind is OutcomeKind.FAILED
    assert sim.requests["wechat_template"] == 1


def test_breaker_opens_then_half_opens_then_closes(sim: Simulator) -> None:
    clock = FakeClock()
    breakers = Breakers(clock=clock)
    account = {**accounts(sim)["app_push"], "breaker_failures": 2, "breaker_cooldown_seconds": 10}
    sim.fault("jpush", "http_500", "http_500", "http_500", "http_500", "http_500", "http_500")
    channel = guard(_adapter("app_push", account), breakers=breakers, sleep=_no_sleep)
    assert isinstance(channel, ResilientChannel)
    [outcome] = _run(channel, [outgoing(1, "alias:a", "app_push")])
    assert (outcome.kind, outcome.reason) == (OutcomeKind.RETRY, "http_500")
    assert channel.breaker.state == "open"
    seen = sim.requests["jpush"]
    [blocked] = _run(channel, [outgoing(9, "alias:a", "app_push")])
    assert (blocked.kind, blocked.reason) == (OutcomeKind.UNAVAILABLE, "circuit_open")
    assert sim.requests["jpush"] == seen  # nothing reached the provider
    clock.now += 11
    sim.faults["jpush"].clear()
    [trial] = _run(channel, [outgoing(10, "alias:a", "app_push")])
    assert trial.kind is OutcomeKind.SENT
    assert channel.breaker.state == "closed"


def test_breaker_is_per_account_and_shared_by_instances(sim: Simulator) -> None:
    breakers = Breakers()
    account = {**accounts(sim)["app_push"], "breaker_failures": 1, "_account_id": 7}
    sim.fault("jpush", "http_500")
    first = guard(_adapter("app_push", account), breakers=breakers, sleep=_no_sleep)
    _run(first, [outgoing(1, "alias:a", "app_push")])
    second = guard(_adapter("app_push", account), breakers=breakers, sleep=_no_sleep)
    other = guard(
        _adapter("app_push", {**account, "_account_id": 8}), breakers=breakers, sleep=_no_sleep
    )
    assert _run(second, [outgoing(2, "alias:a", "app_push")])[0].reason == "circuit_open"
    assert _run(other, [outgoing(3, "alias:a", "app_push")])[0].kind is OutcomeKind.SENT


def test_token_bucket_holds_back_what_exceeds_the_rate(sim: Simulator) -> None:
    clock = FakeClock()
    limiter = TokenBuckets(clock=clock)
    account = {**accounts(sim)["app_push"], "rate_per_second": 2, "burst": 3}
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    channel = guard(
        _adapter("app_push", {**account, "rate_wait_seconds": 1.0}),
        limiter=limiter,
        breakers=Breakers(),
        sleep=sleep,
    )
    messages = [outgoing(i, f"alias:a{i}", "app_push") for i in range(8)]
    outcomes = _run(channel, messages)
    sent = [o for o in outcomes if o.kind is OutcomeKind.SENT]
    held = [o for o in outcomes if o.reason == "rate_limited"]
    # burst 3 at once, then at most 2/s over the 1 s wait budget
    assert len(sent) == 5 and len(held) == 3
    assert all(o.retry_after and o.retry_after > 0 for o in held)
    assert len(sim.accepted["jpush"]) == 5
    assert sum(waits) <= 1.0


@pytest.mark.redis
def test_redis_bucket_is_shared_by_two_workers(sim: Simulator) -> None:
    url = os.environ.get("FLYWHEEL_TEST_REDIS_URL")
    if not url:
        pytest.skip("FLYWHEEL_TEST_REDIS_URL is not set: Redis suite skipped")
    account = {
        **accounts(sim)["app_push"],
        "rate_per_second": 0.01,
        "burst": 4,
        "rate_wait_seconds": 0.001,
        "_account_id": uuid.uuid4().hex,
    }
    settings = Settings(env="test", redis_url=url)
    workers = [RedisTokenBuckets(url), RedisTokenBuckets(url)]
    try:
        channels = [
            guard(_adapter("app_push", account, settings), limiter=w, breakers=Breakers())
            for w in workers
        ]
        first = _run(channels[0], [outgoing(i, f"alias:{i}", "app_push") for i in range(3)])
        second = _run(channels[1], [outgoing(i, f"alias:{i}", "app_push") for i in range(3, 6)])
    finally:
        for worker in workers:
            worker.close()
    kinds = [o.kind for o in first + second]
    assert kinds.count(OutcomeKind.SENT) == 4
    assert kinds.count(OutcomeKind.RETRY) == 2
    assert len(sim.accepted["jpush"]) == 4


def test_storing_channels_are_not_wrapped() -> None:
    from flywheel.channels.base import StoringChannel

    storing = [n for n in channel_names() if issubclass(REGISTRY[n], StoringChannel)]  # type: ignore[arg-type]
    for name in storing:
        adapter = _adapter(name, {})
        assert guard(adapter) is adapter


def test_the_wrapper_keeps_the_adapter_class_traits(sim: Simulator) -> None:
    for name in ("wecom_app", "sms", "wechat_template"):
        adapter = _adapter(name, {})
        wrapped = guard(adapter, breakers=Breakers())
        assert isinstance(wrapped, ResilientChannel)
        assert type(wrapped).customer_facing is type(adapter).customer_facing
        assert type(wrapped).needs_identities is type(adapter).needs_identities
        assert wrapped.name == name
    assert type(guard(_adapter("wecom_app", {}))).customer_facing is False
