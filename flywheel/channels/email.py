"""The email channel: SMTP through aiosmtplib, one connection per batch.

Address: the profile's ``email``, else the customer's ``$identity_email``. The Message-ID is
derived from the idempotency key, so a re-send after a crash carries the same Message-ID and
receiving systems can spot the duplicate. Extra headers come from the spec config
(``{"headers": {"List-Unsubscribe": "<…>"}}``) — the hook for unsubscribe and bounce handling.
Settings: ``smtp_host`` (unset: the channel is unavailable, so the fallback is used),
``smtp_port``, ``smtp_tls``, ``smtp_starttls``, ``smtp_user``, ``smtp_password``, ``smtp_from``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import aiosmtplib

from flywheel.channels.base import Channel, ChannelContext, Outcome, OutcomeKind, Outgoing, register

_PROTECTED = frozenset({"from", "to", "subject", "message-id", "date"})


def message_id(idempotency_key: str, sender: str) -> str:
    """``<sha256(key)[:40]@sender-domain>``: stable across re-sends of one message."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "flywheel.local"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


def build(message: Outgoing, sender: str) -> EmailMessage:
    """The MIME message: text part plus an HTML alternative when there is HTML."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = Address(addr_spec=message.address)
    mail["Subject"] = message.subject or message.title or ""
    mail["Message-ID"] = message_id(message.idempotency_key, sender)
    mail["Date"] = formatdate(usegmt=True)
    for name, value in dict(message.config.get("headers") or {}).items():
        if str(name).lower() not in _PROTECTED:
            mail[str(name)] = str(value)
    mail.set_content(message.body)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


@register("email")
class EmailChannel(Channel):
    """Sends over the configured SMTP relay (the project account may override ``from``)."""

    provider_guarded = False

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        s = context.settings
        self.host = context.account.get("host", s.smtp_host)
        self.port = int(context.account.get("port", s.smtp_port))
        self.sender = str(context.account.get("from", s.smtp_from))
        self.user = context.account.get("user", s.smtp_user)
        self.password = context.account.get("password", s.smtp_password)
        self.tls = bool(context.account.get("tls", s.smtp_tls))
        self.starttls = bool(context.account.get("starttls", s.smtp_starttls))
        self.timeout = s.smtp_timeout_seconds

    def address(
        self,
        *,
        profile: Mapping[str, Any],
        identities: Mapping[str, Sequence[str]],
        config: Mapping[str, Any],  # noqa: ARG002
    ) -> str | None:
        email = profile.get("email")
        if isinstance(email, str) and "@" in email:
            return email
        held = identities.get("$identity_email") or []
        return held[0] if held else None

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        if not self.host:
            return [Outcome(OutcomeKind.UNAVAILABLE, reason="not_configured") for _ in messages]
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.tls,
            start_tls=self.starttls if self.starttls else False,
            timeout=self.timeout,
        )
        try:
            await client.connect()
            if self.user:
                await client.login(str(self.user), str(self.password or ""))
        except (aiosmtplib.SMTPException, OSError) as exc:
            return [
                Outcome(OutcomeKind.RETRY, reason="smtp_connect", detail=type(exc).__name__)
                for _ in messages
            ]
        outcomes: list[Outcome] = []
        try:
            for message in messages:
                outcomes.append(await self._send_one(client, message))
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        return outcomes

    async def _send_one(self, client: aiosmtplib.SMTP, message: Outgoing) -> Outcome:
        mail = build(message, self.sender)
        try:
            await client.send_message(mail)
        except aiosmtplib.SMTPRecipientsRefused:
            return Outcome(OutcomeKind.FAILED, reason="recipient_refused")
        except aiosmtplib.SMTPResponseException as exc:
            kind = OutcomeKind.RETRY if 400 <= exc.code < 500 else OutcomeKind.FAILED
            return Outcome(kind, reason=f"smtp_{exc.code}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome(OutcomeKind.RETRY, reason="smtp_error", detail=type(exc).__name__)
        return Outcome(OutcomeKind.SENT, provider_message_id=str(mail["Message-ID"]))
