"""Email extras: List-Unsubscribe with one-click unsubscribe, and bounce handling.

* :func:`list_unsubscribe_headers` — the ``List-Unsubscribe`` (HTTPS, optionally mailto) and
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` headers (RFC 2369, RFC 8058) of one
  message; the URL carries a signed token naming (project, customer, channel, purpose).
* ``POST /u/{token}`` records the opt-out through the compliance service (what mail clients
  do on "Unsubscribe"); ``GET /u/{token}`` shows a page whose button posts it (a link scanner
  that follows the link unsubscribes nobody).
* Bounces — a DSN (``multipart/report; report-type=delivery-status``, RFC 3464) or a JSON
  bounce webhook ``{"message_id", "recipient", "type": "hard"|"soft", "status",
  "diagnostic"}``: a permanent failure marks the message ``failed`` (reason ``bounced``) and
  the address undeliverable (a compliance opt-out of the email channel, source ``bounce``);
  a transient one is only logged.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import orjson
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flywheel.channels import system_events
from flywheel.channels.base import Outgoing
from flywheel.channels.models import Message
from flywheel.compliance import service as compliance
from flywheel.compliance.schemas import OptOutIn
from flywheel.core.clock import utc_naive
from flywheel.core.errors import InvalidInput, NotFound

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class UnsubscribeClaim:
    project_id: int
    user_id: int
    channel: str
    purpose: str
    message_id: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: str, body: str) -> str:
    return _b64(hmac.new(secret_key.encode(), b"unsub|" + body.encode(), hashlib.sha256).digest())


def unsubscribe_token(secret_key: str, claim: UnsubscribeClaim) -> str:
    """A URL-safe signed token for ``claim`` (it never expires: an old email must still work)."""
    body = _b64(
        orjson.dumps(
            [claim.project_id, claim.user_id, claim.channel, claim.purpose, claim.message_id]
        )
    )
    return f"{body}.{_mac(secret_key, body)}"


def read_token(secret_key: str, token: str) -> UnsubscribeClaim:
    """The claim of a valid token; :class:`InvalidInput` for a forged or damaged one."""
    body, _, mac = token.partition(".")
    if not body or not mac or not hmac.compare_digest(_mac(secret_key, body), mac):
        raise InvalidInput("invalid unsubscribe link")
    try:
        project_id, user_id, channel, purpose, message_id = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidInput("invalid unsubscribe link") from exc
    return UnsubscribeClaim(
        int(project_id), int(user_id), str(channel), str(purpose), int(message_id)
    )


def list_unsubscribe_headers(
    message: Outgoing, *, public_url: str, secret_key: str, mailto: str | None = None
) -> dict[str, str]:
    """The List-Unsubscribe headers of one email (merge them into ``config["headers"]``)."""
    token = unsubscribe_token(
        secret_key,
        UnsubscribeClaim(
            message.project_id,
            message.user_id,
            message.channel,
            "marketing" if message.purpose == "marketing" else "*",
            message.message_id,
        ),
    )
    targets = [f"<{public_url.rstrip('/')}/u/{token}>"]
    if mailto:
        targets.append(f"<mailto:{mailto}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def unsubscribe(
    session: Session, *, token: str, secret_key: str, now: datetime
) -> UnsubscribeClaim:
    """Record the opt-out a token names (idempotent; audited by compliance).
    :class:`InvalidInput` for a bad token, :class:`NotFound` for an unknown customer."""
    claim = read_token(secret_key, token)
    compliance.opt_out(
        session=session,
        project_id=claim.project_id,
        user_id=claim.user_id,
        opt_out_in=OptOutIn(
            channel=claim.channel,
            purpose=claim.purpose,
            source="email_one_click",
        ),
        actor="customer:unsubscribe",
        now=now,
    )
    log.info("email_unsubscribed", project_id=claim.project_id, message_id=claim.message_id)
    return claim


# -- bounces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bounce:
    #: The Message-ID of the bounced email (``<…@…>``), as the email channel recorded it.
    message_id: str
    permanent: bool
    status: str | None = None
    diagnostic: str | None = None


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if value.startswith("<") else f"<{value}>"


def parse_dsn(raw: bytes) -> list[Bounce]:
    """Bounces of a delivery status notification (RFC 3464); [] when it is none."""
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(mail, EmailMessage) or mail.get_content_type() != "multipart/report":
        return []
    original: str | None = None
    statuses: list[tuple[str, str, str]] = []
    for part in mail.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload():
                if not hasattr(block, "get"):
                    continue
                action = str(block.get("Action") or "").lower()
                if action:
                    status = str(block.get("Status") or "")
                    statuses.append((action, status, str(block.get("Diagnostic-Code") or "")))
        elif kind in ("text/rfc822-headers", "message/rfc822"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and not isinstance(payload[0], str):
                original = original or payload[0].get("Message-ID")
            else:
                headers = email.message_from_string(
                    str(part.get_content()), policy=email.policy.default
                )
                original = original or headers.get("Message-ID")
    found_id = _message_id(original)
    if found_id is None:
        return []
    return [
        Bounce(found_id, action == "failed" and status.startswith("5"), status, diag[:200])
        for action, status, diag in statuses
        if action in ("failed", "delayed")
    ]


def parse_bounce_webhook(payload: Any) -> list[Bounce]:
    """Bounces of a JSON webhook body (one object or a list)."""
    items = payload if isinstance(payload, list) else [payload]
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        message_id = _message_id(item.get("message_id"))
        if message_id is None:
            continue
        status = str(item.get("status") or "")
        permanent = str(item.get("type", "")).lower() == "hard" or status.startswith("5")
        found.append(Bounce(message_id, permanent, status or None, item.get("diagnostic")))
    return found


#: Statuses a hard bounce may move a message from.
_BOUNCEABLE = ("sending", "sent", "delivered")


def apply_bounces(
    session: Session, *, project_id: int, bounces: list[Bounce], now: datetime
) -> int:
    """Fail the hard-bounced messages and mark their addresses; the number failed."""
    at = utc_naive(now)
    done = 0
    for bounce in bounces:
        if not bounce.permanent:
            log.info("email_soft_bounced", status=bounce.status)
            continue
        row = session.execute(
            select(Message.id, Message.user_id, Message.channel, Message.status).where(
                Message.project_id == project_id,
                Message.channel == "email",
                Message.provider_message_id == bounce.message_id,
            )
        ).first()
        if row is None:
            continue
        if row.status in _BOUNCEABLE:
            session.execute(
                update(Message)
                .where(Message.id == row.id, Message.status.in_(_BOUNCEABLE))
                .values(status="failed", reason="bounced", last_error=bounce.status, updated_at=at)
            )
            done += 1
            system_events.emit(
                session=session,
                project_id=project_id,
                events=[
                    system_events.SystemEvent(
                        id=f"msg{row.id}-failed",
                        user_id=int(row.user_id),
                        event=system_events.MESSAGE_FAILED,
                        time=now,
                        properties={"message_id": row.id, "channel": "email", "reason": "bounced"},
                    )
                ],
                now=now,
            )
        try:
            compliance.opt_out(
                session=session,
                project_id=project_id,
                user_id=int(row.user_id),
                opt_out_in=OptOutIn(channel="email", purpose="*", source="bounce"),
                actor="system:bounce",
                now=now,
            )
        except NotFound:
            continue
    session.flush()
    return done
