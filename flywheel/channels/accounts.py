"""Channel accounts: a project's provider credentials and options, per channel.

Credentials are stored encrypted (:class:`~flywheel.auth.crypto.EncryptedJSON`) and only ever
leave this module masked (``••••3a9f``), except through :func:`load_account`, which the
dispatcher calls to build an adapter. Every change and every test send is audited (without
the secrets). Each account also holds a random ``callback_token`` that authenticates the
provider's receipt callbacks (``/callbacks/…``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.auth.pii import mask_value
from flywheel.channels.base import REGISTRY, ChannelContext, Outgoing, StoringChannel
from flywheel.channels.models import ChannelAccount, Message
from flywheel.config import Settings
from flywheel.core.clock import utc_naive
from flywheel.core.errors import Conflict, InvalidInput, NotFound

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
CALLBACK_TOKEN = "callback_token"


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    channel: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    provider: str = Field(default="", max_length=32)
    #: Secrets (keys, app secrets, robot keys): stored encrypted, returned masked.
    credentials: dict[str, str] = Field(default_factory=dict)
    #: Everything else: sign name, templates, endpoints, rate limits, advisor map …
    options: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    is_default: bool = True


class AccountEdit(BaseModel):
    """Partial update: credentials given are merged (omitted ones are kept; ``""`` removes)."""

    model_config = ConfigDict(extra="forbid")

    provider: str | None = Field(default=None, max_length=32)
    credentials: dict[str, str] | None = None
    options: dict[str, Any] | None = None
    enabled: bool | None = None
    is_default: bool | None = None


class AccountOut(BaseModel):
    id: int
    name: str
    channel: str
    provider: str
    #: Every credential masked: ``••••`` plus at most its last four characters.
    credentials: dict[str, str]
    options: dict[str, Any]
    enabled: bool
    is_default: bool
    created_at: datetime
    updated_at: datetime


class CallbacksOut(BaseModel):
    """URLs to paste into the provider's console (they carry the account's secret token)."""

    receipts: str
    replies: str


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Recipient on this channel (mobile, openid, WeCom userid, ``registration_id:…`` …).
    address: str = Field(min_length=1, max_length=256)
    text: str = Field(default="Flywheel 测试消息 / test message", min_length=1, max_length=2000)
    title: str | None = Field(default=None, max_length=128)
    #: Spec-like options for the test (``template``, ``template_code``, ``audience`` …).
    config: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)


class TestOut(BaseModel):
    kind: Literal["sent", "delivered", "retry", "failed", "unavailable"]
    provider_message_id: str | None = None
    reason: str | None = None
    detail: str | None = None


class ChannelStats(BaseModel):
    channel: str
    total: int
    #: Messages per status (prepared, sending, sent, delivered, opened, clicked, failed,
    #: blocked, dead).
    by_status: dict[str, int]
    #: Blocked messages per gate reason (opt_out, quiet_hours, frequency_cap …).
    blocked_by_reason: dict[str, int]
    #: Failed and dead messages per reason.
    failed_by_reason: dict[str, int]
    #: delivered / (sent + delivered + opened + clicked + failed + dead), when any went out.
    delivery_rate: float | None


def mask_secret(value: str) -> str:
    return "••••" + (value[-4:] if len(value) >= 12 else "")


def _out(row: ChannelAccount) -> AccountOut:
    shown = {k: mask_secret(str(v)) for k, v in row.credentials.items() if k != CALLBACK_TOKEN}
    return AccountOut(
        id=row.id,
        name=row.name,
        channel=row.channel,
        provider=row.provider,
        credentials=shown,
        options=dict(row.options or {}),
        enabled=row.enabled,
        is_default=row.is_default,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_channel(channel: str) -> None:
    from flywheel.channels.catalog import channel_names

    if channel not in channel_names():
        raise InvalidInput(f"unknown channel {channel!r}", detail={"known": channel_names()})


def _get(session: Session, project_id: int, account_id: int) -> ChannelAccount:
    row = session.get(ChannelAccount, account_id)
    if row is None or row.project_id != project_id:
        raise NotFound(f"channel account {account_id} not found")
    return row


def _only_default(session: Session, row: ChannelAccount) -> None:
    if row.is_default:
        session.execute(
            update(ChannelAccount)
            .where(
                ChannelAccount.project_id == row.project_id,
                ChannelAccount.channel == row.channel,
                ChannelAccount.id != row.id,
            )
            .values(is_default=False)
        )


def _audit_detail(row: ChannelAccount) -> dict[str, Any]:
    return {
        "name": row.name,
        "channel": row.channel,
        "provider": row.provider,
        "credential_keys": sorted(k for k in row.credentials if k != CALLBACK_TOKEN),
        "enabled": row.enabled,
        "is_default": row.is_default,
    }


def list_accounts(*, session: Session, project_id: int) -> list[AccountOut]:
    """Every account of the project, credentials masked."""
    rows = session.scalars(
        select(ChannelAccount)
        .where(ChannelAccount.project_id == project_id)
        .order_by(ChannelAccount.channel, ChannelAccount.name)
    )
    return [_out(r) for r in rows]


def get_account(*, session: Session, project_id: int, account_id: int) -> AccountOut:
    """One account, credentials masked; :class:`NotFound` outside the project."""
    return _out(_get(session, project_id, account_id))


def create_account(
    *, session: Session, project_id: int, account_in: AccountIn, actor: str, now: datetime
) -> AccountOut:
    """A new account (the channel's default unless ``is_default`` is false); audited as
    ``channels.account_created``. :class:`Conflict` when the name is taken,
    :class:`InvalidInput` for an unknown channel."""
    _check_channel(account_in.channel)
    taken = session.scalar(
        select(ChannelAccount.id).where(
            ChannelAccount.project_id == project_id, ChannelAccount.name == account_in.name
        )
    )
    if taken is not None:
        raise Conflict(f"channel account {account_in.name!r} exists")
    at = utc_naive(now)
    row = ChannelAccount(
        project_id=project_id,
        name=account_in.name,
        channel=account_in.channel,
        provider=account_in.provider,
        credentials={
            **{k: v for k, v in account_in.credentials.items() if v},
            CALLBACK_TOKEN: secrets.token_urlsafe(24),
        },
        options=account_in.options,
        enabled=account_in.enabled,
        is_default=account_in.is_default,
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    _only_default(session, row)
    audit.record(
        session=session,
        actor=actor,
        action="channels.account_created",
        target=f"channel_account:{row.id}",
        detail=_audit_detail(row),
        project_id=project_id,
        now=now,
    )
    return _out(row)


def update_account(
    *,
    session: Session,
    project_id: int,
    account_id: int,
    edit: AccountEdit,
    actor: str,
    now: datetime,
) -> AccountOut:
    """Apply a partial edit; audited as ``channels.account_updated`` (secret names only)."""
    row = _get(session, project_id, account_id)
    if edit.provider is not None:
        row.provider = edit.provider
    if edit.credentials is not None:
        merged = dict(row.credentials)
        for key, value in edit.credentials.items():
            if key == CALLBACK_TOKEN:
                continue
            if value:
                merged[key] = value
            else:
                merged.pop(key, None)
        row.credentials = merged
    if edit.options is not None:
        row.options = edit.options
    if edit.enabled is not None:
        row.enabled = edit.enabled
    if edit.is_default is not None:
        row.is_default = edit.is_default
    row.updated_at = utc_naive(now)
    session.flush()
    _only_default(session, row)
    audit.record(
        session=session,
        actor=actor,
        action="channels.account_updated",
        target=f"channel_account:{row.id}",
        detail={
            **_audit_detail(row),
            "changed_credentials": sorted((edit.credentials or {}).keys()),
        },
        project_id=project_id,
        now=now,
    )
    return _out(row)


def delete_account(
    *, session: Session, project_id: int, account_id: int, actor: str, now: datetime
) -> None:
    """Remove an account; audited as ``channels.account_deleted``."""
    row = _get(session, project_id, account_id)
    detail = _audit_detail(row)
    session.delete(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="channels.account_deleted",
        target=f"channel_account:{account_id}",
        detail=detail,
        project_id=project_id,
        now=now,
    )


def account_dict(row: ChannelAccount) -> dict[str, Any]:
    """What an adapter is built with: options, then the decrypted credentials on top."""
    return {
        **dict(row.options or {}),
        **{k: v for k, v in row.credentials.items() if k != CALLBACK_TOKEN},
        "provider": row.provider,
        "_account_id": row.id,
    }


def load_account(session: Session, project_id: int, channel: str) -> dict[str, Any]:
    """The project's enabled default account of ``channel`` as an adapter config (decrypted);
    ``{}`` when there is none. This is the dispatcher's ``AccountLoader``."""
    row = session.scalars(
        select(ChannelAccount)
        .where(
            ChannelAccount.project_id == project_id,
            ChannelAccount.channel == channel,
            ChannelAccount.enabled.is_(True),
        )
        .order_by(ChannelAccount.is_default.desc(), ChannelAccount.id)
        .limit(1)
    ).first()
    return account_dict(row) if row is not None else {}


def account_by_token(*, session: Session, account_id: int, token: str) -> ChannelAccount | None:
    """The account whose callback token is ``token`` (constant-time compare), or None."""
    row = session.get(ChannelAccount, account_id)
    if row is None:
        return None
    expected = str(row.credentials.get(CALLBACK_TOKEN) or "")
    if not expected or not secrets.compare_digest(expected, token):
        return None
    return row


def callbacks(
    *, session: Session, project_id: int, account_id: int, public_url: str
) -> CallbacksOut:
    """The receipt and reply callback URLs of an account (admin only: they hold its token)."""
    row = _get(session, project_id, account_id)
    token = str(row.credentials.get(CALLBACK_TOKEN) or "")
    base = f"{public_url.rstrip('/')}/callbacks/{row.channel}/{row.id}"
    return CallbacksOut(
        receipts=f"{base}/receipts?token={token}", replies=f"{base}/replies?token={token}"
    )


def send_test(
    *,
    session: Session,
    project_id: int,
    account_id: int,
    test_in: TestIn,
    settings: Settings,
    actor: str,
    now: datetime,
) -> TestOut:
    """Send one test message through the account's adapter (with its rate limit and breaker)
    to ``test_in.address``; audited as ``channels.test_sent`` with the address masked.
    :class:`InvalidInput` for a channel that stores rather than sends (in-app, advisor)."""
    from flywheel.channels import resilience

    row = _get(session, project_id, account_id)
    factory = REGISTRY.get(row.channel)
    if factory is None:
        raise InvalidInput(f"channel {row.channel!r} has no adapter")
    context = ChannelContext(settings=settings, project_id=project_id, account=account_dict(row))
    adapter = factory(context)
    if isinstance(adapter, StoringChannel):
        raise InvalidInput(f"channel {row.channel!r} stores messages; nothing to send")
    message = Outgoing(
        message_id=0,
        idempotency_key=f"test:{row.id}:{secrets.token_hex(8)}",
        project_id=project_id,
        user_id=0,
        channel=row.channel,
        purpose="service",
        address=test_in.address,
        body=test_in.text,
        subject=test_in.title,
        title=test_in.title,
        fields=dict(test_in.fields),
        config=dict(test_in.config),
    )
    guarded = resilience.guard(adapter)

    async def go() -> Any:
        try:
            return (await guarded.send([message]))[0]
        finally:
            await guarded.aclose()

    outcome = asyncio.run(go())
    audit.record(
        session=session,
        actor=actor,
        action="channels.test_sent",
        target=f"channel_account:{row.id}",
        detail={
            "channel": row.channel,
            "address": mask_value("", test_in.address),
            "kind": str(outcome.kind),
            "reason": outcome.reason,
        },
        project_id=project_id,
        now=now,
    )
    return TestOut(
        kind=outcome.kind.value,
        provider_message_id=outcome.provider_message_id,
        reason=outcome.reason,
        detail=outcome.detail,
    )


def stats(
    *,
    session: Session,
    project_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: str | None = None,
) -> list[ChannelStats]:
    """Delivery statistics per channel from the message outbox (``created_at`` in
    [since, until)), including blocked messages by gate reason and failures by reason."""
    filters = [Message.project_id == project_id]
    if since is not None:
        filters.append(Message.created_at >= utc_naive(since))
    if until is not None:
        filters.append(Message.created_at < utc_naive(until))
    if channel is not None:
        filters.append(Message.channel == channel)
    rows = session.execute(
        select(Message.channel, Message.status, Message.reason, func.count())
        .where(*filters)
        .group_by(Message.channel, Message.status, Message.reason)
    ).all()
    found: dict[str, dict[str, Any]] = {}
    for name, status, reason, count in rows:
        entry = found.setdefault(
            name, {"by_status": {}, "blocked_by_reason": {}, "failed_by_reason": {}}
        )
        entry["by_status"][status] = entry["by_status"].get(status, 0) + int(count)
        if status == "blocked":
            key = reason or "unknown"
            entry["blocked_by_reason"][key] = entry["blocked_by_reason"].get(key, 0) + int(count)
        if status in ("failed", "dead"):
            key = reason or "unknown"
            entry["failed_by_reason"][key] = entry["failed_by_reason"].get(key, 0) + int(count)
    out = []
    for name in sorted(found):
        entry = found[name]
        by_status: Mapping[str, int] = entry["by_status"]
        went_out = sum(
            by_status.get(s, 0)
            for s in ("sent", "delivered", "opened", "clicked", "failed", "dead")
        )
        reached = sum(by_status.get(s, 0) for s in ("delivered", "opened", "clicked"))
        out.append(
            ChannelStats(
                channel=name,
                total=sum(by_status.values()),
                by_status=dict(by_status),
                blocked_by_reason=entry["blocked_by_reason"],
                failed_by_reason=entry["failed_by_reason"],
                delivery_rate=round(reached / went_out, 4) if went_out else None,
            )
        )
    return out
