"""Email over SMTP (aiosmtpd), in-app slots API, advisor task inbox and scope, fallback."""

from __future__ import annotations

import email
import socket
from collections.abc import Callable, Iterator
from email.message import Message as MimeMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from flywheel.channels.email import message_id
from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.channels import dispatch_helpers as h


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], MimeMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                email.message_from_bytes(envelope.content),
            )
        )
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, _Collect]]:
    handler = _Collect()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, handler
    controller.stop()


def test_email_via_smtp(
    runtime: Runtime, clock: FrozenClock, smtp: tuple[Controller, _Collect]
) -> None:
    controller, handler = smtp
    port = controller.port
    settings = runtime.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_from": "Flywheel <mk@broker.cn>"}
    )
    a, b = h.customers(
        runtime, [{"name": "张三", "email": "zs@example.com"}, {"name": "无邮箱"}], clock()
    )
    spec_id = h.spec(
        runtime,
        "mail",
        channel="email",
        purpose="service",
        template={
            "subject": "{{ user.name }}的月度账单",
            "text": "尊敬的{{ user.name }}",
            "html": "<p>{{ user.name }}</p>",
        },
        config={"headers": {"List-Unsubscribe": "<https://broker.cn/u>"}},
    )
    h.enqueue(runtime, spec_id, [a, b], clock(), channel="email", purpose="service")
    with h.dispatcher(runtime, clock, settings=settings) as d:
        d.run_until_idle()
    got = h.messages(runtime)
    assert got[a].status == "sent"
    assert (got[b].status, got[b].reason) == ("blocked", "no_address")
    ((sender, rcpts, mail),) = handler.messages
    assert sender == "mk@broker.cn" and rcpts == ["zs@example.com"]
    assert (
        str(email.header.make_header(email.header.decode_header(mail["Subject"])))
        == "张三的月度账单"
    )
    assert mail["Message-ID"] == message_id(got[a].idempotency_key, "mk@broker.cn")
    assert got[a].provider_message_id == mail["Message-ID"]
    assert mail["List-Unsubscribe"] == "<https://broker.cn/u>"
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in mail.walk()
        if not p.is_multipart()
    }
    assert "尊敬的张三" in parts["text/plain"] and "<p>张三</p>" in parts["text/html"]


def test_email_unconfigured_falls_back_to_in_app_slot(
    runtime: Runtime,
    clock: FrozenClock,
    client: TestClient,
    make_headers: Callable[..., dict[str, str]],
) -> None:
    (user,) = h.customers(runtime, [{"name": "李四", "email": "ls@example.com"}], clock())
    spec_id = h.spec(
        runtime,
        "fb",
        channel="email",
        purpose="service",
        fallback="in_app",
        template={
            "subject": "新基金",
            "title": "新基金上线",
            "text": "{{ user.name }}，来看看",
            "link": "https://app/x",
        },
        config={"slot": "home_banner"},
    )
    h.enqueue(runtime, spec_id, [user], clock(), channel="email", purpose="service")
    with h.dispatcher(runtime, clock) as d:  # smtp_host unset: email unavailable
        d.run_until_idle()
    m = h.messages(runtime)[user]
    assert (m.channel, m.status) == ("in_app", "delivered")
    app = make_headers("app_backend")
    answer = client.get(f"/api/v1/slots/home_banner?user={user}", headers=app)
    assert answer.status_code == 200, answer.text
    card = answer.json()["card"]
    assert card["title"] == "新基金上线" and card["body"] == "李四，来看看"
    # the link is a tracked short link that redirects to the original
    assert card["link"].startswith(f"{runtime.settings.public_url}/l/")
    assert h.messages(runtime)[user].status == "opened"
    mid = card["message_id"]
    assert client.post(f"/api/v1/slots/home_banner/{mid}/click", headers=app).status_code == 200
    assert h.messages(runtime)[user].status == "clicked"
    redirect = client.get(card["link"].split("8000", 1)[1], follow_redirects=False)
    assert (redirect.status_code, redirect.headers["location"]) == (302, "https://app/x")
    assert client.post(f"/api/v1/slots/home_banner/{mid}/dismiss", headers=app).status_code == 200
    assert client.get(f"/api/v1/slots/home_banner?user={user}", headers=app).json()["card"] is None
    assert client.get("/api/v1/slots/home_banner?user=nobody", headers=app).status_code == 404
    marketer = make_headers("marketer")
    assert client.get(f"/api/v1/slots/home_banner?user={user}", headers=marketer).status_code == 403
    log = client.get(f"/api/v1/channels/messages?user={user}", headers=marketer).json()
    assert [i["status"] for i in log["items"]] == ["clicked"]


def test_advisor_tasks_scope_and_update(
    runtime: Runtime,
    clock: FrozenClock,
    client: TestClient,
    make_headers: Callable[..., dict[str, str]],
) -> None:
    people = [
        {"name": "王一", "mobile": "13800001111", "branch": "BRA", "advisor_id": "ADV_A"},
        {"name": "王二", "mobile": "13800002222", "branch": "BRA", "advisor_id": "ADV_A2"},
        {"name": "王三", "mobile": "13900009999", "branch": "BRB", "advisor_id": "ADV_B"},
        {"name": "无顾问", "branch": "BRB"},
    ]
    users = h.customers(runtime, people, clock())
    spec_id = h.spec(
        runtime,
        "adv",
        channel="advisor",
        template={"text": "请致电{{ user.name }}介绍新基金"},
        config={"title": "新基金回访", "due_days": 2},
    )
    h.enqueue(runtime, spec_id, users, clock(), channel="advisor")
    with h.dispatcher(runtime, clock) as d:
        d.run_until_idle()
    got = h.messages(runtime)
    assert [got[u].status for u in users] == ["delivered"] * 3 + ["blocked"]
    assert got[users[3]].reason == "no_address"

    advisor = make_headers("advisor", advisor_id="ADV_A", branch_scope=["BRA"])
    mine = client.get("/api/v1/advisor/tasks", headers=advisor).json()
    assert [t["advisor_id"] for t in mine] == ["ADV_A"]
    assert mine[0]["script"] == "请致电王一介绍新基金" and mine[0]["title"] == "新基金回访"
    assert mine[0]["customer"]["mobile"] == "138****1111"
    manager = make_headers("analyst", branch_scope=["BRA"])
    assert client.get("/api/v1/advisor/tasks", headers=manager).status_code == 403
    admin = make_headers("admin", branch_scope=["BRA"])
    branch = client.get("/api/v1/advisor/tasks", headers=admin).json()
    assert sorted(t["advisor_id"] for t in branch) == ["ADV_A", "ADV_A2"]
    other = [
        t
        for t in client.get("/api/v1/advisor/tasks", headers=make_headers("admin")).json()
        if t["branch"] == "BRB"
    ]
    assert client.get(f"/api/v1/advisor/tasks/{other[0]['id']}", headers=advisor).status_code == 404
    task_id = mine[0]["id"]
    patched = client.patch(
        f"/api/v1/advisor/tasks/{task_id}",
        json={"status": "done", "outcome": "purchased", "notes": "客户已申购"},
        headers=advisor,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["status"], body["outcome"]) == ("done", "purchased")
    assert [e.get("status") for e in body["history"]] == ["open", "done"]
    assert (
        client.patch(
            f"/api/v1/advisor/tasks/{other[0]['id']}", json={"status": "done"}, headers=advisor
        ).status_code
        == 404
    )
    audit = client.get("/api/v1/audit?action=advisor.task_updated", headers=make_headers("auditor"))
    assert audit.status_code == 200 and f"advisor_task:{task_id}" in audit.text
