"""SMS through the official Aliyun and Tencent Cloud SDKs against a local server that verifies
their signatures (ACS3-HMAC-SHA256, TC3-HMAC-SHA256) and the request shape."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from flywheel.channels.base import ChannelContext, OutcomeKind
from flywheel.channels.providers.common import phone_digest
from flywheel.channels.providers.sms import SmsChannel
from flywheel.config import Settings
from tests.channels.providers.conftest import outgoing
from tests.channels.providers.sim import Simulator, accounts


def _channel(account: dict[str, Any]) -> SmsChannel:
    return SmsChannel(ChannelContext(settings=Settings(env="test"), project_id=1, account=account))


def _send(channel: SmsChannel, messages: list[Any]) -> list[Any]:
    async def go() -> list[Any]:
        try:
            return await channel.send(messages)
        finally:
            await channel.aclose()

    return asyncio.run(go())


def test_aliyun_send_sms_is_signed_and_maps_template_params(sim: Simulator) -> None:
    outcomes = _send(_channel(accounts(sim)["sms_aliyun"]), [outgoing(1, "+86 13800000001")])
    assert [o.kind for o in outcomes] == [OutcomeKind.SENT]
    [accepted] = sim.accepted["aliyun"]
    assert accepted["PhoneNumbers"] == "13800000001"
    assert accepted["SignName"] == "飞轮证券"
    assert accepted["TemplateCode"] == "SMS_100001"
    assert orjson.loads(accepted["TemplateParam"]) == {"name": "客户1"}
    assert accepted["OutId"] == "1"
    assert outcomes[0].provider_message_id == f"{accepted['BizId']}:{phone_digest('13800000001')}"
    assert sim.refused["aliyun"] == 0


def test_aliyun_batch_goes_as_send_batch_sms(sim: Simulator) -> None:
    messages = [outgoing(i, f"1380000000{i}") for i in range(1, 6)]
    outcomes = _send(_channel(accounts(sim)["sms_aliyun"]), messages)
    assert all(o.kind is OutcomeKind.SENT for o in outcomes)
    assert sim.requests["aliyun"] == 1
    assert [a["PhoneNumbers"] for a in sim.accepted["aliyun"]] == [m.address for m in messages]
    assert {o.provider_message_id.split(":")[0] for o in outcomes} == {
        sim.accepted["aliyun"][0]["BizId"]
    }


def test_aliyun_wrong_secret_is_refused_by_the_signature_check(sim: Simulator) -> None:
    account = {**accounts(sim)["sms_aliyun"], "access_key_secret": "not-the-secret"}
    outcomes = _send(_channel(account), [outgoing(1, "13800000001")])
    assert outcomes[0].kind is OutcomeKind.FAILED
    assert outcomes[0].reason == "http_400"
    assert sim.refused["aliyun"] == 1
    assert sim.accepted["aliyun"] == []


@pytest.mark.parametrize(
    ("fault", "kind", "reason"),
    [
        ("http_500", OutcomeKind.RETRY, "http_503"),
        ("timeout", OutcomeKind.RETRY, "timeout"),
        ("malformed", OutcomeKind.RETRY, "malformed_response"),
        ("quota", OutcomeKind.RETRY, "quota_exceeded"),
        ("throttled", OutcomeKind.RETRY, "throttled"),
    ],
)
def test_aliyun_bad_answers_are_classified(
    sim: Simulator, fault: str, kind: OutcomeKind, reason: str
) -> None:
    sim.fault("aliyun", fault)
    [outcome] = _send(
        _channel(accounts(sim, timeout=1.0)["sms_aliyun"]), [outgoing(1, "13800000001")]
    )
    assert (outcome.kind, outcome.reason) == (kind, reason)
    assert sim.accepted["aliyun"] == [] or fault == "timeout"


def test_aliyun_invalid_number_and_missing_template_fail(sim: Simulator) -> None:
    messages = [
        outgoing(1, "10000000000"),
        outgoing(2, "13800000002", config={"template": "unknown"}),
    ]
    outcomes = _send(_channel(accounts(sim)["sms_aliyun"]), messages)
    assert [(o.kind, o.reason) for o in outcomes] == [
        (OutcomeKind.FAILED, "invalid_recipient"),
        (OutcomeKind.FAILED, "template_missing"),
    ]


def test_tencent_send_sms_is_tc3_signed_and_batched_by_template(sim: Simulator) -> None:
    shared = {"fields": {"name": "同名"}}
    messages = [outgoing(1, "13800000001", **shared), outgoing(2, "13800000002", **shared)]
    messages.append(outgoing(3, "13800000003"))
    outcomes = _send(_channel(accounts(sim)["sms_tencent"]), messages)
    assert all(o.kind is OutcomeKind.SENT for o in outcomes)
    assert sim.refused["tencent"] == 0
    assert sim.requests["tencent"] == 2  # two distinct parameter sets
    by_phone = {a["PhoneNumber"]: a for a in sim.accepted["tencent"]}
    first = by_phone["+8613800000001"]
    assert first["TemplateId"] == "2001"
    assert first["SignName"] == "飞轮证券"
    assert first["TemplateParamSet"] == ["同名"]
    assert by_phone["+8613800000003"]["TemplateParamSet"] == ["客户3"]
    serials = {a["PhoneNumber"]: a["SerialNo"] for a in sim.accepted["tencent"]}
    assert [o.provider_message_id for o in outcomes] == [
        serials[f"+86{m.address}"] for m in messages
    ]


def test_tencent_wrong_key_is_refused(sim: Simulator) -> None:
    account = {**accounts(sim)["sms_tencent"], "secret_key": "wrong"}
    [outcome] = _send(_channel(account), [outgoing(1, "13800000001")])
    assert (outcome.kind, outcome.reason) == (OutcomeKind.FAILED, "auth_failed")
    assert sim.refused["tencent"] == 1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("http_500", "http_5xx"),
        ("timeout", "timeout"),
        ("malformed", "malformed_response"),
        ("quota", "quota_exceeded"),
        ("throttled", "throttled"),
    ],
)
def test_tencent_bad_answers_are_retryable(sim: Simulator, fault: str, reason: str) -> None:
    sim.fault("tencent", fault)
    [outcome] = _send(
        _channel(accounts(sim, timeout=1.0)["sms_tencent"]), [outgoing(1, "13800000001")]
    )
    assert (outcome.kind, outcome.reason) == (OutcomeKind.RETRY, reason)


def test_tencent_per_number_failure_does_not_fail_the_others(sim: Simulator) -> None:
    shared = {"fields": {"name": "x"}}
    messages = [outgoing(1, "13800000001", **shared), outgoing(2, "13800000002", **shared)]
    messages[1].address = "13800000002"
    sim_account = accounts(sim)["sms_tencent"]
    outcomes = _send(_channel(sim_account), messages)
    assert [o.kind for o in outcomes] == [OutcomeKind.SENT, OutcomeKind.SENT]


def test_unconfigured_sms_account_is_unavailable() -> None:
    [outcome] = _send(_channel({}), [outgoing(1, "13800000001")])
    assert (outcome.kind, outcome.reason) == (OutcomeKind.UNAVAILABLE, "not_configured")


def test_sms_address_from_mobile_identity() -> None:
    channel = _channel({})
    assert (
        channel.address(profile={}, identities={"$identity_mobile": ["+8613912345678"]}, config={})
        == "13912345678"
    )
    assert channel.address(profile={"mobile": "12345"}, identities={}, config={}) is None
