"""WeCom, WeChat Official Account and JPush adapters against the local provider server."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import redis

from flywheel.channels.base import REGISTRY, Channel, ChannelContext, Outcome, OutcomeKind
from flywheel.channels.catalog import channel_names
from flywheel.channels.providers.tokens import AccessTokens
from flywheel.config import Settings
from tests.channels.providers.conftest import outgoing
from tests.channels.providers.sim import Simulator, accounts


def _channel(name: str, account: dict[str, Any]) -> Channel:
    assert name in channel_names()
    context = ChannelContext(settings=Settings(env="test"), project_id=1, account=account)
    return REGISTRY[name](context)


def _send(channel: Channel, messages: list[Any]) -> list[Outcome]:
    async def go() -> list[Outcome]:
        try:
            return await channel.send(messages)
        finally:
            await channel.aclose()

    return asyncio.run(go())


# -- WeCom ------------------------------------------------------------------------------------


def test_wecom_app_message_to_the_advisor_with_one_cached_token(sim: Simulator) -> None:
    channel = _channel("wecom_app", accounts(sim)["wecom_app"])
    address = channel.address(profile={"advisor_id": "ADV0001"}, identities={}, config={})
    assert address == "ADV0001"
    messages = [outgoing(i, "ADV0001", "wecom_app") for i in range(1, 4)]
    outcomes = _send(channel, messages)
    assert [o.kind for o in outcomes] == [OutcomeKind.SENT] * 3
    assert sim.token_fetches == 1
    bodies = sim.accepted["wecom_app"]
    assert {b["touser"] for b in bodies} == {"ADV0001"}
    assert bodies[0]["msgtype"] == "text" and bodies[0]["agentid"] == 1000002


def test_wecom_expired_token_is_refreshed_once(sim: Simulator) -> None:
    account = accounts(sim)["wecom_app"]
    assert _send(_channel("wecom_app", account), [outgoing(1, "u1", "wecom_app")])[0].kind == (
        OutcomeKind.SENT
    )
    sim.expire_tokens()
    [outcome] = _send(_channel("wecom_app", account), [outgoing(2, "u1", "wecom_app")])
    assert outcome.kind is OutcomeKind.SENT
    assert sim.token_fetches == 2
    assert len(sim.accepted["wecom_app"]) == 2


def test_wecom_bad_secret_fails_without_sending(sim: Simulator) -> None:
    account = {**accounts(sim)["wecom_app"], "agent_secret": "wrong"}
    [outcome] = _send(_channel("wecom_app", account), [outgoing(1, "u1", "wecom_app")])
    assert outcome.kind is OutcomeKind.RETRY and outcome.reason == "token_rejected"
    assert sim.accepted["wecom_app"] == []


def test_wecom_invalid_user_fails(sim: Simulator) -> None:
    [outcome] = _send(
        _channel("wecom_app", accounts(sim)["wecom_app"]), [outgoing(1, "nobody", "wecom_app")]
    )
    assert (outcome.kind, outcome.reason) == (OutcomeKind.FAILED, "invalid_recipient")


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("http_500", "http_502"),
        ("timeout", "timeout"),
        ("malformed", "malformed_response"),
        ("quota", "quota_exceeded"),
        ("throttled", "throttled"),
        ("system_busy", "http_500"),
    ],
)
def test_wecom_bad_answers_are_retryable(sim: Simulator, fault: str, reason: str) -> None:
    sim.fault("wecom_app", fault)
    [outcome] = _send(
        _channel("wecom_app", accounts(sim, timeout=1.0)["wecom_app"]),
        [outgoing(1, "u1", "wecom_app")],
    )
    assert (outcome.kind, outcome.reason) == (OutcomeKind.RETRY, reason)


def test_wecom_robot_markdown_to_the_group(sim: Simulator) -> None:
    channel = _channel("wecom_robot", accounts(sim)["wecom_robot"])
    address = channel.address(profile={}, identities={}, config={})
    assert address == "robot-key-1"
    [outcome] = _send(channel, [outgoing(1, address, "wecom_robot", body="**新客户** 已开户")])
    assert outcome.kind is OutcomeKind.SENT
    assert sim.accepted["wecom_robot"] == [
        {"msgtype": "markdown", "markdown": {"content": "**新客户** 已开户"}}
    ]
    [wrong] = _send(
        _channel("wecom_robot", accounts(sim)["wecom_robot"]),
        [outgoing(2, "bad-key", "wecom_robot")],
    )
    assert wrong.kind is OutcomeKind.FAILED and sim.refused["wecom_robot"] == 1


def test_wecom_customer_template_from_the_advisor(sim: Simulator) -> None:
    channel = _channel("wecom_customer", accounts(sim)["wecom_customer"])
    address = channel.address(
        profile={}, identities={"$identity_wecom_external_userid": ["wmABC"]}, config={}
    )
    message = outgoing(
        1,
        str(address),
        "wecom_customer",
        link="https://fw.example/l/abc",
        title="基金定投",
        profile={"advisor_id": "ADV0001"},
    )
    [outcome] = _send(channel, [message])
    assert outcome.kind is OutcomeKind.SENT and outcome.provider_message_id
    [body] = sim.accepted["wecom_customer"]
    assert body["sender"] == "zhang.san"
    assert body["external_userid"] == ["wmABC"]
    assert body["attachments"][0]["link"]["url"] == "https://fw.example/l/abc"
    [rejected] = _send(
        _channel("wecom_customer", accounts(sim)["wecom_customer"]),
        [outgoing(2, "xx-not-external", "wecom_customer")],
    )
    assert (rejected.kind, rejected.reason) == (OutcomeKind.FAILED, "invalid_recipient")


# -- WeChat Official Account ------------------------------------------------------------------


def test_wechat_template_message_with_miniprogram_and_dedup_key(sim: Simulator) -> None:
    channel = _channel("wechat_template", accounts(sim)["wechat"])
    address = channel.address(
        profile={},
        identities={"$identity_wechat_openid": ["oOPEN1"], "$identity_wechat_unionid": ["oU"]},
        config={},
    )
    assert address == "oOPEN1"
    message = outgoing(1, "oOPEN1", "wechat_template", link="https://fw.example/l/x")
    [first] = _send(channel, [message])
    [again] = _send(_channel("wechat_template", accounts(sim)["wechat"]), [message])
    assert first.kind is OutcomeKind.SENT and first.provider_message_id
    assert again.provider_message_id == first.provider_message_id  # client_msg_id dedup
    [body] = sim.accepted["wechat_template"]
    assert body["template_id"] == "TPL-fund"
    assert body["data"] == {"thing1": {"value": "客户1"}, "thing2": {"value": "沪深300指数"}}
    assert body["miniprogram"] == {"appid": "wxmini", "pagepath": "pages/fund/index"}
    assert body["url"] == "https://fw.example/l/x"
    assert sim.token_fetches == 1


def test_wechat_unionid_only_customer_has_no_address(sim: Simulator) -> None:
    channel = _channel("wechat_template", accounts(sim)["wechat"])
    assert (
        channel.address(profile={}, identities={"$identity_wechat_unionid": ["oU"]}, config={})
        is None
    )


def test_wechat_unfollowed_and_refused_subscribe_fail(sim: Simulator) -> None:
    [unfollowed] = _send(
        _channel("wechat_template", accounts(sim)["wechat"]),
        [outgoing(1, "ounfollowed1", "wechat_template")],
    )
    assert (unfollowed.kind, unfollowed.reason) == (OutcomeKind.FAILED, "not_subscribed")
    [ok, refused] = _send(
        _channel("wechat_subscribe", accounts(sim)["wechat"]),
        [outgoing(2, "oOK", "wechat_subscribe"), outgoing(3, "orefused", "wechat_subscribe")],
    )
    assert ok.kind is OutcomeKind.SENT
    assert (refused.kind, refused.reason) == (OutcomeKind.FAILED, "not_subscribed")
    assert sim.accepted["wechat_subscribe"][0]["data"]["thing1"] == {"value": "客户2"}


def test_wechat_bad_app_secret_fails(sim: Simulator) -> None:
    account = {**accounts(sim)["wechat"], "app_secret": "nope"}
    [outcome] = _send(_channel("wechat_template", account), [outgoing(1, "o1", "wechat_template")])
    assert (outcome.kind, outcome.reason) == (OutcomeKind.FAILED, "auth_failed")


# -- JPush ------------------------------------------------------------------------------------


def test_jpush_by_registration_id_alias_and_tag(sim: Simulator) -> None:
    channel = _channel("app_push", accounts(sim)["app_push"])
    reg = channel.address(
        profile={}, identities={"$identity_jpush_registration_id": ["1a0018970a"]}, config={}
    )
    alias = channel.address(
        profile={}, identities={"$identity_login_id": ["C001"]}, config={"audience": "alias"}
    )
    tag = channel.address(profile={}, identities={}, config={"audience": "tag", "tag": "vip"})
    messages = [
        outgoing(1, str(reg), "app_push", title="行情提醒"),
        outgoing(2, str(alias), "app_push"),
        outgoing(3, str(tag), "app_push"),
    ]
    outcomes = _send(channel, messages)
    assert [o.kind for o in outcomes] == [OutcomeKind.SENT] * 3
    audiences = sorted(str(b["audience"]) for b in sim.accepted["jpush"])
    assert audiences == sorted(
        [
            str({"registration_id": ["1a0018970a"]}),
            str({"alias": ["C001"]}),
            str({"tag": ["vip"]}),
        ]
    )
    assert all(b["cid"].startswith("jpush-app-key-") for b in sim.accepted["jpush"])


def test_jpush_retry_of_the_same_message_is_not_pushed_twice(sim: Simulator) -> None:
    message = outgoing(1, "registration_id:abc", "app_push")
    first = _send(_channel("app_push", accounts(sim)["app_push"]), [message])[0]
    second = _send(_channel("app_push", accounts(sim)["app_push"]), [message])[0]
    assert first.provider_message_id == second.provider_message_id
    assert len(sim.accepted["jpush"]) == 1


def test_jpush_wrong_master_secret_is_refused(sim: Simulator) -> None:
    account = {**accounts(sim)["app_push"], "master_secret": "bad"}
    [outcome] = _send(_channel("app_push", account), [outgoing(1, "alias:a", "app_push")])
    assert (outcome.kind, outcome.reason) == (OutcomeKind.FAILED, "auth_failed")
    assert sim.refused["jpush"] == 1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("http_500", "http_500"),
        ("malformed", "malformed_response"),
        ("throttled", "throttled"),
        ("timeout", "connection_error"),
    ],
)
def test_jpush_bad_answers_are_retryable(sim: Simulator, fault: str, reason: str) -> None:
    sim.fault("jpush", fault)
    [outcome] = _send(
        _channel("app_push", accounts(sim, timeout=1.0)["app_push"]),
        [outgoing(1, "alias:a", "app_push")],
    )
    assert (outcome.kind, outcome.reason) == (OutcomeKind.RETRY, reason)


def test_jpush_unknown_device_fails(sim: Simulator) -> None:
    [outcome] = _send(
        _channel("app_push", accounts(sim)["app_push"]),
        [outgoing(1, "registration_id:gone1", "app_push")],
    )
    assert (outcome.kind, outcome.reason) == (OutcomeKind.FAILED, "invalid_recipient")


@pytest.mark.redis
def test_access_token_is_shared_by_workers_through_redis(sim: Simulator) -> None:
    url = os.environ.get("FLYWHEEL_TEST_REDIS_URL")
    if not url:
        pytest.skip("FLYWHEEL_TEST_REDIS_URL is not set: Redis suite skipped")
    account = {**accounts(sim)["wechat"]}
    workers = [AccessTokens(redis_url=url), AccessTokens(redis_url=url)]
    key = workers[0].key(account["base_url"], account["app_id"], account["app_secret"])
    client = redis.Redis.from_url(url)
    client.delete(f"flywheel:token:{key}")  # nothing left from an earlier run on this port
    outcomes = []
    for worker in workers:  # two processes' caches, one Redis
        channel = _channel("wechat_template", account)
        channel.tokens = worker  # type: ignore[attr-defined]
        outcomes += _send(channel, [outgoing(len(outcomes) + 1, "oA", "wechat_template")])
    assert [o.kind for o in outcomes] == [OutcomeKind.SENT] * 2
    assert sim.token_fetches == 1
    assert workers[0].fetches == 1 and workers[1].fetches == 0
    assert 0 < client.pttl(f"flywheel:token:{key}") <= (7200 - 300) * 1000
    client.close()
