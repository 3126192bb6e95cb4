"""SMS receipts by callback (Aliyun and Tencent formats) and by polling (QuerySendDetails,
PullSmsSendStatus against the local signed provider server); uplink "TD" opts out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from flywheel.channels import accounts, receipts
from flywheel.channels.base import ChannelContext, OutcomeKind
from flywheel.channels.models import Message
from flywheel.channels.providers.sms import SmsChannel
from flywheel.config import Settings
from flywheel.core.clock import FrozenClock
from flywheel.ingest.tasks import IngestProcessor
from flywheel.runtime import Runtime
from tests.channels.providers import helpers
from tests.channels.providers.conftest import outgoing
from tests.channels.providers.sim import Simulator, running_simulator
from tests.channels.providers.sim import accounts as sim_accounts


@pytest.fixture(scope="module")
def _simulator() -> Iterator[Simulator]:
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def sim(_simulator: Simulator) -> Simulator:
    _simulator.reset()
    return _simulator


def _account(runtime: Runtime, now: datetime, sim: Simulator, provider: str) -> tuple[int, str]:
    """An SMS account in the database; (id, callback token)."""
    raw = dict(sim_accounts(sim)[f"sms_{provider}"])
    secret_keys = {"access_key_id", "access_key_secret", "secret_id", "secret_key"}
    credentials = {k: raw.pop(k) for k in list(raw) if k in secret_keys}
    raw.pop("provider")
    with runtime.db.unit_of_work() as session:
        out = accounts.create_account(
            session=session,
            project_id=helpers.project_id(runtime),
            account_in=accounts.AccountIn(
                name=f"sms-{provider}",
                channel="sms",
                provider=provider,
                credentials=credentials,
                options=raw,
            ),
            actor="test",
            now=now,
        )
        token = str(session.get(accounts.ChannelAccount, out.id).credentials["callback_token"])
    return out.id, token


def _send(account: dict[str, Any], messages: list[Any]) -> list[Any]:
    channel = SmsChannel(
        ChannelContext(settings=Settings(env="test"), project_id=1, account=account)
    )

    async def go() -> list[Any]:
        try:
            return await channel.send(messages)
        finally:
            await channel.aclose()

    return asyncio.run(go())


def _status(runtime: Runtime, message_id: int) -> tuple[str, str | None]:
    with runtime.db.unit_of_work() as session:
        row = session.execute(
            select(Message.status, Message.reason).where(Message.id == message_id)
        ).one()
        return row.status, row.reason


def _sent_messages(
    runtime: Runtime, now: datetime, sim: Simulator, provider: str, mobiles: list[str]
) -> list[int]:
    """Customers with these mobiles, their SMS really sent to ``sim``, rows marked sent."""
    account = sim_accounts(sim)[f"sms_{provider}"]
    users = [helpers.customer(runtime, now, **{"$identity_mobile": m}) for m in mobiles]
    outcomes = _send(account, [outgoing(i + 1, m) for i, m in enumerate(mobiles)])
    assert all(o.kind is OutcomeKind.SENT for o in outcomes)
    return [
        helpers.message(
            runtime,
            now,
            user_id=user,
            channel="sms",
            key=f"{provider}-{i}",
            status="sent",
            provider_message_id=outcome.provider_message_id,
            sent_at=now.replace(tzinfo=None),
        )
        for i, (user, outcome) in enumerate(zip(users, outcomes, strict=True))
    ]


def test_aliyun_report_callback_marks_delivered_and_failed_once(
    client: TestClient, runtime: Runtime, clock: FrozenClock, sim: Simulator
) -> None:
    now = clock()
    ok, bad = _sent_messages(runtime, now, sim, "aliyun", ["13800000001", "13800000002"])
    account_id, token = _account(runtime, now, sim, "aliyun")
    biz = [a["BizId"] for a in sim.accepted["aliyun"]]
    report = [
        {
            "phone_number": "13800000001",
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
            "biz_id": biz[0],
            "out_id": "1",
            "sms_size": "1",
        },
        {
            "phone_number": "13800000002",
            "success": False,
            "err_code": "MK:0001",
            "err_msg": "失败",
            "biz_id": biz[1],
            "out_id": "2",
            "sms_size": "1",
        },
    ]
    url = f"/callbacks/sms/{account_id}/receipts"
    assert client.post(url, json=report, params={"token": "forged"}).status_code == 404
    answer = client.post(url, json=report, params={"token": token})
    assert answer.status_code == 200 and answer.json() == {"code": 0, "msg": "成功"}
    assert _status(runtime, ok) == ("delivered", None)
    assert _status(runtime, bad) == ("failed", "undelivered")
    again = client.post(url, json=report, params={"token": token})
    assert again.status_code == 200
    IngestProcessor(runtime).run_once()
    pid = helpers.project_id(runtime)
    events = runtime.warehouse.fetch(
        f"SELECT event, node_id, variant FROM p{pid}_events WHERE event LIKE '$Message%' "
        "ORDER BY event"
    )
    assert [tuple(e) for e in events] == [
        ("$MessageDelivered", "send", "A"),
        ("$MessageFailed", "send", "A"),
    ]


def test_tencent_status_callback(
    client: TestClient, runtime: Runtime, clock: FrozenClock, sim: Simulator
) -> None:
    now = clock()
    [message] = _sent_messages(runtime, now, sim, "tencent", ["13800000003"])
    account_id, token = _account(runtime, now, sim, "tencent")
    serial = sim.accepted["tencent"][0]["SerialNo"]
    body = [
        {
            "user_receive_time": "2026-11-02 10:00:01",
            "nationcode": "86",
            "mobile": "13800000003",
            "report_status": "SUCCESS",
            "errmsg": "DELIVRD",
            "description": "用户短信送达成功",
            "sid": serial,
        }
    ]
    answer = client.post(
        f"/callbacks/sms/{account_id}/receipts", json=body, params={"token": token}
    )
    assert answer.json() == {"result": 0, "errmsg": "OK"}
    assert _status(runtime, message) == ("delivered", None)


def test_polling_aliyun_and_tencent(runtime: Runtime, clock: FrozenClock, sim: Simulator) -> None:
    now = clock()
    a_ok, a_bad = _sent_messages(runtime, now, sim, "aliyun", ["13800000011", "13800000019"])
    t_ok, t_bad = _sent_messages(runtime, now, sim, "tencent", ["13800000021", "13800000029"])
    _account(runtime, now, sim, "aliyun")
    _account(runtime, now, sim, "tencent")
    sim.tencent_replies.append(
        {
            "PhoneNumber": "+8613800000021",
            "ReplyContent": "TD",
            "SignName": "飞轮证券",
            "ExtendCode": "",
            "CountryCode": "86",
            "ReplyTime": "2026-11-02 10:00:00",
            "SubscriberNumber": "13800000021",
        }
    )
    with runtime.db.unit_of_work() as session:
        report = asyncio.run(receipts.poll(session, now=now))
    assert report.receipts == 4 and report.opt_outs == 1
    assert _status(runtime, a_ok)[0] == "delivered"
    assert _status(runtime, a_bad) == ("failed", "undelivered")
    assert _status(runtime, t_ok)[0] == "delivered"
    assert _status(runtime, t_bad) == ("failed", "undelivered")
    assert sim.refused["aliyun"] == 0 and sim.refused["tencent"] == 0
    with runtime.db.unit_of_work() as session:
        again = asyncio.run(receipts.poll(session, now=now))
    assert again.receipts == 0


def test_receipt_poller_loop(runtime: Runtime, clock: FrozenClock, sim: Simulator) -> None:
    now = clock()
    [message] = _sent_messages(runtime, now, sim, "tencent", ["13800000031"])
    _account(runtime, now, sim, "tencent")
    runtime.clock = clock
    assert receipts.ReceiptPoller(runtime).run_once() == 0
    assert _status(runtime, message)[0] == "delivered"


@pytest.mark.parametrize("reply", ["TD", " td ", "退订", "T", "R"])
def test_uplink_unsubscribe_reply_opts_out_at_once(
    client: TestClient, runtime: Runtime, clock: FrozenClock, sim: Simulator, reply: str
) -> None:
    now = clock()
    user = helpers.customer(runtime, now, **{"$identity_mobile": "13900000001"})
    account_id, token = _account(runtime, now, sim, "aliyun")
    body = [
        {
            "phone_number": "13900000001",
            "content": reply,
            "sign_name": "飞轮证券",
            "send_time": "2026-11-02 10:00:00",
            "dest_code": "1234",
            "sequence_id": 1,
        }
    ]
    answer = client.post(f"/callbacks/sms/{account_id}/replies", json=body, params={"token": token})
    assert answer.status_code == 200
    with runtime.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, channel, purpose, source FROM compliance_opt_outs")
        ).all()
    assert [tuple(r) for r in rows] == [(user, "sms", "marketing", "sms_reply_aliyun")]


def test_other_replies_and_unknown_numbers_change_nothing(
    client: TestClient, runtime: Runtime, clock: FrozenClock, sim: Simulator
) -> None:
    now = clock()
    helpers.customer(runtime, now, **{"$identity_mobile": "13900000002"})
    account_id, token = _account(runtime, now, sim, "tencent")
    for body in (
        {"mobile": "13900000002", "text": "好的谢谢", "nationcode": "86", "sign": "x", "time": 1},
        {"mobile": "13900000999", "text": "TD", "nationcode": "86", "sign": "x", "time": 1},
    ):
        answer = client.post(
            f"/callbacks/sms/{account_id}/replies", json=body, params={"token": token}
        )
        assert answer.json() == {"result": 0, "errmsg": "OK"}
    with runtime.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compliance_opt_outs")).scalar_one() == 0
