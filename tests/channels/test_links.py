"""Tracked links: rewriting, the /l/{code} redirect, $MessageClicked attribution, no open
redirect."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from flywheel.channels import links
from flywheel.channels.base import Outgoing
from flywheel.channels.models import Message, TrackedLink
from flywheel.core.clock import FrozenClock
from flywheel.ingest.tasks import IngestProcessor
from flywheel.runtime import Runtime
from tests.channels.providers import helpers

PUBLIC = "https://fw.broker.example"


def _message(runtime: Runtime, clock: FrozenClock, status: str = "sent") -> Outgoing:
    user = helpers.customer(runtime, clock(), **{"$identity_login_id": "C9"})
    message_id = helpers.message(
        runtime,
        clock(),
        user_id=user,
        channel="sms",
        key="m1",
        status=status,
        journey_id=12,
        version_id=3,
        node_id="send_a",
        variant="B",
    )
    return Outgoing(
        message_id=message_id,
        idempotency_key="m1",
        project_id=helpers.project_id(runtime),
        user_id=user,
        channel="sms",
        purpose="marketing",
        address="13800000001",
        body="",
        journey_id=12,
        version_id=3,
        node_id="send_a",
        variant="B",
    )


def test_rewrite_is_deterministic_and_stores_each_link_once(
    runtime: Runtime, clock: FrozenClock
) -> None:
    message = _message(runtime, clock)
    text = (
        "基金详情 https://fund.example.com/f/000001?ch=sms。开户：http://a.example/x, "
        f"已追踪 {PUBLIC}/l/abcdefghijkl 邮箱 a@b.cn"
    )
    with runtime.db.unit_of_work() as session:
        first = links.rewrite_links(
            session, text=text, message=message, public_url=PUBLIC, secret_key="k", now=clock()
        )
        second = links.rewrite_links(
            session, text=text, message=message, public_url=PUBLIC, secret_key="k", now=clock()
        )
        stored = session.scalars(select(TrackedLink.url).order_by(TrackedLink.url)).all()
    assert first == second
    assert "fund.example.com" not in first and "a.example/x" not in first
    assert first.count(f"{PUBLIC}/l/") == 3  # two new ones and the one already tracked
    assert "。开户：" in first and ", " in first and "a@b.cn" in first
    assert stored == ["http://a.example/x", "https://fund.example.com/f/000001?ch=sms"]


def test_click_redirects_records_event_and_marks_message(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    message = _message(runtime, clock)
    message.body = "点击 https://fund.example.com/f/1 查看"
    message.html = '<a href="https://fund.example.com/f/1">查看</a>'
    with runtime.db.unit_of_work() as session:
        links.rewrite_message(
            session, message=message, public_url=PUBLIC, secret_key="k", now=clock()
        )
    code = message.body.split("/l/")[1].split()[0]
    assert f'href="{PUBLIC}/l/{code}"' in message.html
    answer = client.get(
        f"/l/{code}", follow_redirects=False, params={"url": "https://evil.example"}
    )
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://fund.example.com/f/1"
    client.get(f"/l/{code}", follow_redirects=False)
    with runtime.db.unit_of_work() as session:
        assert session.scalar(select(Message.status).where(Message.id == message.message_id)) == (
            "clicked"
        )
        assert session.scalar(select(func.sum(TrackedLink.clicks))) == 2
    IngestProcessor(runtime).run_once()
    pid = helpers.project_id(runtime)
    rows = runtime.warehouse.fetch(
        f"SELECT journey_id, journey_version, node_id, variant, channel, message_id "
        f"FROM p{pid}_events WHERE event = '$MessageClicked'"
    )
    assert [tuple(r) for r in rows] == [(12, 3, "send_a", "B", "sms", message.message_id)] * 2


def test_unknown_or_malformed_codes_are_404(client: TestClient) -> None:
    for code in ("abcdefghijkl", "a.b", "x" * 40, "https:evil.example"):
        assert client.get(f"/l/{code}", follow_redirects=False).status_code == 404


def test_test_sends_are_not_rewritten(runtime: Runtime, clock: FrozenClock) -> None:
    message = Outgoing(
        message_id=0,
        idempotency_key="t",
        project_id=1,
        user_id=0,
        channel="sms",
        purpose="service",
        address="x",
        body="https://a.example/",
    )
    with runtime.db.unit_of_work() as session:
        links.rewrite_message(
            session, message=message, public_url=PUBLIC, secret_key="k", now=clock()
        )
    assert message.body == "https://a.example/"
