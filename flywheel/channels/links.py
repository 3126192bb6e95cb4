"""Tracked links: every http(s) link of a message becomes ``{public_url}/l/{code}``.

The code is derived from (secret, message id, URL), so rendering the same message again
(a retry, a re-send after a crash) yields the same codes and stores nothing twice. A click
(``GET /l/{code}``) records ``$MessageClicked`` — attributed to the message's journey,
version, node and variant — marks the message ``clicked`` and redirects to the stored URL.
A code can only ever lead to the URL it was made for, so the route is no open redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flywheel.channels import system_events
from flywheel.channels.base import Outgoing
from flywheel.channels.models import Message, TrackedLink
from flywheel.core.clock import utc_naive

#: A link in text or HTML: stops at whitespace, quotes, angle brackets and CJK punctuation.
LINK = re.compile(r"https?://[^\s<>\"'()（）【】，。；、]+")
CODE = re.compile(r"^[A-Za-z0-9_-]{10,16}$")
_TRAILING = ".,;:!?"
#: Statuses a click may move a message from.
_CLICKABLE = ("sending", "sent", "delivered", "opened")


def link_code(secret_key: str, message_id: int, url: str) -> str:
    """The 12-character code of ``url`` in message ``message_id``."""
    digest = hmac.new(
        secret_key.encode(), f"link|{message_id}|{url}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode()[:12]


def rewrite_links(
    session: Session,
    *,
    text: str,
    message: Outgoing,
    public_url: str,
    secret_key: str,
    now: datetime,
) -> str:
    """``text`` with each http(s) link replaced by its tracking URL (stored in the caller's
    transaction; links already pointing at ``public_url`` are left alone)."""
    base = public_url.rstrip("/")
    rows: dict[str, dict[str, Any]] = {}

    def replace(match: re.Match[str]) -> str:
        raw = match.group(0)
        url = raw.rstrip(_TRAILING)
        tail = raw[len(url) :]
        if url.startswith(base + "/") or len(url) > 4000:
            return raw
        code = link_code(secret_key, message.message_id, url)
        rows[code] = {
            "code": code,
            "project_id": message.project_id,
            "message_id": message.message_id,
            "user_id": message.user_id,
            "channel": message.channel,
            "journey_id": message.journey_id,
            "version_id": message.version_id,
            "node_id": message.node_id,
            "variant": message.variant,
            "url": url,
            "clicks": 0,
            "created_at": utc_naive(now),
        }
        return f"{base}/l/{code}{tail}"

    rewritten = LINK.sub(replace, text)
    if rows:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            stmt: Any = pg_insert(TrackedLink).on_conflict_do_nothing(index_elements=["code"])
        elif dialect == "sqlite":
            stmt = sqlite_insert(TrackedLink).on_conflict_do_nothing(index_elements=["code"])
        else:  # pragma: no cover - other dialects
            stmt = insert(TrackedLink)
        session.execute(stmt, list(rows.values()))
    return rewritten


def rewrite_message(
    session: Session, *, message: Outgoing, public_url: str, secret_key: str, now: datetime
) -> None:
    """Rewrite the links of a message's text, HTML and ``link`` in place (what the dispatcher
    calls after rendering, before the adapter's ``send``). Test sends (id 0) are skipped."""
    if message.message_id <= 0:
        return
    args: dict[str, Any] = {
        "message": message,
        "public_url": public_url,
        "secret_key": secret_key,
        "now": now,
    }
    message.body = rewrite_links(session, text=message.body, **args)
    if message.html:
        message.html = rewrite_links(session, text=message.html, **args)
    if message.link:
        message.link = rewrite_links(session, text=message.link, **args)


def record_click(session: Session, *, code: str, now: datetime) -> str | None:
    """Record a click on ``code``; the URL to redirect to, or None for an unknown code."""
    if not CODE.match(code):
        return None
    link = session.scalar(select(TrackedLink).where(TrackedLink.code == code).with_for_update())
    if link is None:
        return None
    at = utc_naive(now)
    link.clicks += 1
    if link.first_clicked_at is None:
        link.first_clicked_at = at
    session.execute(
        update(Message)
        .where(Message.id == link.message_id, Message.status.in_(_CLICKABLE))
        .values(status="clicked", updated_at=at)
    )
    properties: dict[str, Any] = {"message_id": link.message_id, "channel": link.channel}
    for name, value in (
        ("journey_id", link.journey_id),
        ("journey_version", link.version_id),
        ("node_id", link.node_id),
        ("variant", link.variant),
    ):
        if value is not None:
            properties[name] = value
    system_events.emit(
        session=session,
        project_id=link.project_id,
        events=[
            system_events.SystemEvent(
                id=f"msg{link.message_id}-click-{code}-{link.clicks}",
                user_id=link.user_id,
                event=system_events.MESSAGE_CLICKED,
                time=now,
                properties=properties,
            )
        ],
        now=now,
    )
    session.flush()
    return link.url
