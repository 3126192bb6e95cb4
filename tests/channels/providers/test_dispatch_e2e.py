"""End to end through the dispatcher: outbox → gate → render → the SMS adapter (real Aliyun SDK,
signature verified by the local server) with the account loaded from the database → receipt
callback → delivered; an unconfigured channel falls back."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from flywheel.channels import accounts
from flywheel.channels.base import Channel
from flywheel.channels.dispatch import Dispatcher
from flywheel.channels.resilience import Breakers, ResilientChannel, guard
from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.channels import dispatch_helpers as h
from tests.channels.providers.sim import Simulator
from tests.channels.providers.sim import accounts as sim_accounts


def _sms_account(
    runtime: Runtime, sim: Simulator, now: datetime, timeout: float = 10.0
) -> tuple[int, str]:
    raw = dict(sim_accounts(sim, timeout=timeout)["sms_aliyun"])
    credentials = {k: raw.pop(k) for k in ("access_key_id", "access_key_secret")}
    raw.pop("provider")
    with runtime.db.unit_of_work() as session:
        out = accounts.create_account(
            session=session,
            project_id=h.project_id(runtime),
            account_in=accounts.AccountIn(
                name="aliyun",
                channel="sms",
                provider="aliyun",
                credentials=credentials,
                options=raw,
            ),
            actor="test",
            now=now,
        )
        token = str(session.get(accounts.ChannelAccount, out.id).credentials["callback_token"])
    return out.id, token


def test_sms_through_the_dispatcher_then_receipt(
    client: TestClient, runtime: Runtime, clock: FrozenClock, sim: Simulator
) -> None:
    now = clock()
    account_id, token = _sms_account(runtime, sim, now)
    users = h.customers(runtime, [{"name": "张三", "mobile": "13800000101"}, {"name": "李四"}], now)
    spec_id = h.spec(
        runtime,
        "journey:5:v1:sms",
        channel="sms",
        purpose="service",
        config={"template": "notice"},
        template={"text": "{{ user.name }}您好", "fields": {"name": "{{ user.name }}"}},
    )
    h.enqueue(runtime, spec_id, users, now, channel="sms", purpose="service")
    with h.dispatcher(runtime, clock, accounts=accounts.load_account) as d:
        d.run_until_idle()
    stored = h.messages(runtime)
    sent, no_mobile = stored[users[0]], stored[users[1]]
    assert (no_mobile.status, no_mobile.reason) == ("blocked", "no_address")
    assert sent.status == "sent" and sent.provider_message_id
    [accepted] = sim.accepted["aliyun"]
    assert accepted["PhoneNumbers"] == "13800000101" and sim.refused["aliyun"] == 0
    assert orjson.loads(accepted["TemplateParam"]) == {"name": "张三"}
    report = [
        {
            "phone_number": "13800000101",
            "success": True,
            "err_code": "DELIVERED",
            "biz_id": accepted["BizId"],
            "out_id": str(sent.id),
        }
    ]
    answer = client.post(
        f"/callbacks/sms/{account_id}/receipts", json=report, params={"token": token}
    )
    assert answer.status_code == 200
    assert h.messages(runtime)[users[0]].status == "delivered"


def test_unconfigured_channel_falls_back(
    runtime: Runtime, clock: FrozenClock, sim: Simulator
) -> None:
    sink = h.Sink()
    try:
        now = clock()
        [user] = h.customers(runtime, [{"name": "王五"}], now)
        spec_id = h.spec(
            runtime,
            "journey:6:v1:push",
            channel="app_push",
            purpose="service",
            fallback="webhook",
            config={"audience": "tag", "tag": "vip", "url": sink.url, "secret": h.SECRET},
        )
        h.enqueue(runtime, spec_id, [user], now, channel="app_push", purpose="service")
        with h.dispatcher(runtime, clock, accounts=accounts.load_account) as d:
            d.run_until_idle()
        message = h.messages(runtime)[user]
        assert message.channel == "webhook" and message.status == "delivered"
        assert len(sink.received) == 1 and sim.accepted["jpush"] == []
    finally:
        sink.close()


@pytest.mark.parametrize("fault", ["http_500", "timeout", "malformed", "quota"])
def test_a_bad_answer_is_retried_later_and_sent_exactly_once(
    runtime: Runtime, clock: FrozenClock, sim: Simulator, fault: str
) -> None:
    now = clock()
    _sms_account(runtime, sim, now, timeout=1.5)
    [user] = h.customers(runtime, [{"name": "赵六", "mobile": "13800000202"}], now)
    spec_id = h.spec(
        runtime,
        "journey:7:v1:sms",
        channel="sms",
        purpose="service",
        config={"template": "notice"},
        template={"text": "您好", "fields": {"name": "{{ user.name }}"}},
    )
    h.enqueue(runtime, spec_id, [user], now, channel="sms", purpose="service")
    sim.fault("aliyun", fault)
    with h.dispatcher(runtime, clock, accounts=accounts.load_account) as d:
        d.run_until_idle()
        first = h.messages(runtime)[user]
        if fault == "http_500":
            # the guard retries a 5xx in place (resilience.guard): sent on the first pass
            assert first.status == "sent"
        else:
            assert first.status == "prepared" and first.reason is not None
            assert sim.accepted["aliyun"] == []
        clock.advance(timedelta(hours=2))
        d.run_until_idle()
    final = h.messages(runtime)[user]
    assert final.status == "sent" and final.provider_message_id
    assert len(sim.accepted["aliyun"]) == 1


class GuardedDispatcher(Dispatcher):
    """The dispatcher with every adapter behind ``resilience.guard`` — the wiring the
    dispatcher is to adopt (``Dispatcher.adapter`` returning ``guard(factory(context))``)."""

    breakers = Breakers()

    def adapter(self, session: Session, project_id: int, channel: str) -> Channel | None:
        found = super().adapter(session, project_id, channel)
        if found is not None and not isinstance(found, ResilientChannel):
            found = guard(found, breakers=self.breakers)
            self._adapters[(project_id, channel)] = found
        return found


def test_open_circuit_sends_the_fallback_channel(
    runtime: Runtime, clock: FrozenClock, sim: Simulator
) -> None:
    now = clock()
    sink = h.Sink()
    try:
        with runtime.db.unit_of_work() as session:
            accounts.create_account(
                session=session,
                project_id=h.project_id(runtime),
                account_in=accounts.AccountIn(
                    name="jpush",
                    channel="app_push",
                    credentials={"master_secret": "jpush-master-secret"},
                    options={
                        "app_key": "jpush-app-key",
                        "base_url": f"{sim.url}/jpush",
                        "breaker_failures": 1,
                        "retries": 0,
                    },
                ),
                actor="test",
                now=now,
            )
        first, second = h.customers(runtime, [{"name": "甲"}, {"name": "乙"}], now)
        config = {"audience": "tag", "tag": "vip", "url": sink.url, "secret": h.SECRET}
        spec_id = h.spec(
            runtime,
            "journey:8:v1:push",
            channel="app_push",
            purpose="service",
            fallback="webhook",
            config=config,
        )
        sim.fault("jpush", "http_500")
        h.enqueue(runtime, spec_id, [first], now, channel="app_push", purpose="service")
        dispatcher = GuardedDispatcher(
            db=runtime.db,
            warehouse=runtime.warehouse,
            settings=runtime.settings,
            clock=clock,
            accounts=accounts.load_account,
        )
        with dispatcher as d:
            d.run_until_idle()
            assert h.messages(runtime)[first].status == "prepared"  # retried later
            h.enqueue(
                runtime,
                spec_id,
                [second],
                now,
                channel="app_push",
                purpose="service",
                key_prefix="second",
            )
            d.run_until_idle()
        message = h.messages(runtime)[second]
        assert (message.channel, message.status) == ("webhook", "delivered")
        assert sim.requests["jpush"] == 1  # the open circuit kept the second off JPush
        assert len(sink.received) == 1
    finally:
        sink.close()
