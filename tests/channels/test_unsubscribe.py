"""One-click unsubscribe (List-Unsubscribe, RFC 8058) and email bounces (DSN and webhook)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from flywheel.channels import accounts, unsubscribe
from flywheel.channels.base import Outgoing
from flywheel.channels.email import build
from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.channels.providers import helpers


def _outgoing(runtime: Runtime, user: int, message_id: int = 5) -> Outgoing:
    return Outgoing(
        message_id=message_id,
        idempotency_key="k5",
        project_id=helpers.project_id(runtime),
        user_id=user,
        channel="email",
        purpose="marketing",
        address="li@example.com",
        body="本周精选基金",
        subject="精选",
    )


def _opt_outs(runtime: Runtime) -> list[tuple[object, ...]]:
    with runtime.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, channel, purpose, source FROM compliance_opt_outs")
        ).all()
    return [tuple(r) for r in rows]


def test_headers_and_one_click_post(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    user = helpers.customer(runtime, clock(), **{"$identity_email": "li@example.com"})
    message = _outgoing(runtime, user)
    secret = runtime.settings.secret_key
    headers = unsubscribe.list_unsubscribe_headers(
        message, public_url="https://fw.example", secret_key=secret, mailto="unsub@fw.example"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<https://fw.example/u/")
    assert "<mailto:unsub@fw.example?subject=unsubscribe>" in headers["List-Unsubscribe"]
    message.config = {"headers": headers}
    mail = build(message, "Broker <m@fw.example>")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = headers["List-Unsubscribe"].split(">")[0].removeprefix("<https://fw.example")
    page = client.get(path)
    assert page.status_code == 200 and 'method="post"' in page.text
    assert _opt_outs(runtime) == []  # a GET (link scanner) unsubscribes nobody
    for _ in range(2):
        answer = client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 200
    assert _opt_outs(runtime) == [(user, "email", "marketing", "email_one_click")]


def test_forged_token_is_refused(client: TestClient, runtime: Runtime, clock: FrozenClock) -> None:
    user = helpers.customer(runtime, clock(), **{"$identity_email": "li@example.com"})
    token = unsubscribe.unsubscribe_token(
        "another-secret", unsubscribe.UnsubscribeClaim(1, user, "email", "marketing", 5)
    )
    assert client.post(f"/u/{token}").status_code == 400
    good = unsubscribe.unsubscribe_token(
        runtime.settings.secret_key, unsubscribe.UnsubscribeClaim(1, user, "email", "*", 5)
    )
    body, mac = good.split(".")
    assert client.post(f"/u/{body[:-2]}AA.{mac}").status_code == 400
    assert _opt_outs(runtime) == []


DSN = """From: MAILER-DAEMON@mx.example.com
To: m@fw.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail system could not deliver your message.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; li@example.com
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--B
Content-Type: text/rfc822-headers

From: Broker <m@fw.example>
To: li@example.com
Subject: =?utf-8?b?57K+6YCJ?=
Message-ID: {message_id}

--B--
"""


def test_hard_bounce_fails_the_message_and_marks_the_address(
    client: TestClient, runtime: Runtime, clock: FrozenClock
) -> None:
    now = clock()
    user = helpers.customer(runtime, now, **{"$identity_email": "li@example.com"})
    mail_id = "<0123456789abcdef@fw.example>"
    message = helpers.message(
        runtime,
        now,
        user_id=user,
        channel="email",
        key="e1",
        status="sent",
        provider_message_id=mail_id,
    )
    soft_id = "<soft@fw.example>"
    helpers.message(
        runtime,
        now,
        user_id=user,
        channel="email",
        key="e2",
        status="sent",
        provider_message_id=soft_id,
    )
    with runtime.db.unit_of_work() as session:
        created = accounts.create_account(
            session=session,
            project_id=helpers.project_id(runtime),
            account_in=accounts.AccountIn(name="smtp", channel="email", options={"host": "x"}),
            actor="test",
            now=now,
        )
        token = session.get(accounts.ChannelAccount, created.id).credentials["callback_token"]
    url = f"/callbacks/email/{created.id}/bounces"
    soft = client.post(
        url,
        json={"message_id": soft_id, "type": "soft", "status": "4.2.2"},
        params={"token": token},
    )
    assert soft.json() == {"bounces": 1, "failed": 0}
    answer = client.post(
        url,
        content=DSN.format(message_id=mail_id).encode(),
        headers={"Content-Type": "message/rfc822"},
        params={"token": token},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"bounces": 1, "failed": 1}
    with runtime.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT provider_message_id, status, reason FROM channel_messages ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [
        (mail_id, "failed", "bounced"),
        (soft_id, "sent", None),
    ]
    assert _opt_outs(runtime) == [(user, "email", "*", "bounce")]
    assert message
    wrong = client.post(url, json={}, params={"token": "nope"})
    assert wrong.status_code == 404
