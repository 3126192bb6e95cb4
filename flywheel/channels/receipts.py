"""SMS status receipts and uplink replies: by callback and by polling.

Receipts move a ``sent`` message to ``delivered`` or ``failed`` (reason ``undelivered``, the
operator code in ``last_error``), found by ``provider_message_id`` (Aliyun
``<BizId>:<phone digest>``, Tencent ``SerialNo``), and emit ``$MessageDelivered`` /
``$MessageFailed``. Applying a receipt twice changes nothing the second time.

An uplink reply "TD", "T", "R", "N", "退订" … opts the customer (found by
``$identity_mobile``) out of marketing SMS at once, through the compliance service.

Callback formats (the bodies the providers POST):

* Aliyun 短信发送状态报告 (SmsReport): ``[{"phone_number", "success", "err_code", "err_msg",
  "biz_id", "out_id", "report_time", …}]``; 上行短信 (SmsUp): ``[{"phone_number", "content",
  "sign_name", "send_time", …}]``; answer ``{"code": 0, "msg": "成功"}``.
* Tencent 短信下发状态 ``[{"mobile", "report_status": "SUCCESS"|"FAIL", "errmsg",
  "description", "sid", …}]``; 回复短信 ``{"mobile", "text", "sign", "time", …}``; answer
  ``{"result": 0, "errmsg": "OK"}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flywheel.channels import system_events
from flywheel.channels.accounts import account_dict
from flywheel.channels.models import ChannelAccount, Message
from flywheel.channels.providers.aliyun_sms import AliyunSms
from flywheel.channels.providers.common import normalise_mobile, phone_digest
from flywheel.channels.providers.sms import sms_sender
from flywheel.channels.providers.tencent_sms import TencentSms
from flywheel.compliance import service as compliance
from flywheel.compliance.schemas import OptOutIn
from flywheel.core.clock import utc_naive
from flywheel.core.errors import NotFound
from flywheel.core.loops import LoopService
from flywheel.identity import service as identity
from flywheel.runtime import Runtime

log = structlog.get_logger(__name__)

#: Replies that mean "unsubscribe" (compared upper-cased, spaces removed).
UNSUBSCRIBE_WORDS = frozenset({"TD", "T", "R", "N", "退订", "退", "取消", "取消订阅", "TD退订"})
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Receipt:
    provider_message_id: str
    delivered: bool
    #: Operator / provider status code (``DELIVRD``, ``MK:0001`` …).
    code: str | None = None


@dataclass(frozen=True)
class Reply:
    mobile: str
    text: str


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in {"true", "1", "success"}


def parse_aliyun_reports(payload: Any) -> list[Receipt]:
    """Receipts of an Aliyun SmsReport callback body (a JSON array)."""
    found = []
    for item in payload if isinstance(payload, list) else []:
        mobile = normalise_mobile(str(item.get("phone_number") or ""))
        biz = item.get("biz_id")
        if mobile is None or not biz:
            continue
        found.append(
            Receipt(
                f"{biz}:{phone_digest(mobile)}",
                _truthy(item.get("success")),
                str(item.get("err_code") or "") or None,
            )
        )
    return found


def parse_tencent_reports(payload: Any) -> list[Receipt]:
    """Receipts of a Tencent status callback body (array, or one object)."""
    items = payload if isinstance(payload, list) else [payload] if isinstance(payload, dict) else []
    return [
        Receipt(
            str(item["sid"]),
            str(item.get("report_status", "")).upper() == "SUCCESS",
            str(item.get("errmsg") or item.get("description") or "") or None,
        )
        for item in items
        if item.get("sid")
    ]


def parse_aliyun_replies(payload: Any) -> list[Reply]:
    items = payload if isinstance(payload, list) else []
    return [
        Reply(str(i.get("phone_number") or ""), str(i.get("content") or ""))
        for i in items
        if isinstance(i, Mapping)
    ]


def parse_tencent_replies(payload: Any) -> list[Reply]:
    items = payload if isinstance(payload, list) else [payload] if isinstance(payload, dict) else []
    return [Reply(str(i.get("mobile") or ""), str(i.get("text") or "")) for i in items]


def apply_receipts(
    session: Session, *, project_id: int, receipts: Sequence[Receipt], now: datetime
) -> int:
    """Mark the messages of ``receipts`` delivered or failed; the number changed. Messages
    already delivered, opened, clicked or failed are left as they are."""
    if not receipts:
        return 0
    by_id = {r.provider_message_id: r for r in receipts}
    at = utc_naive(now)
    rows = session.execute(
        select(
            Message.id,
            Message.user_id,
            Message.channel,
            Message.journey_id,
            Message.version_id,
            Message.node_id,
            Message.variant,
            Message.provider_message_id,
        )
        .where(
            Message.project_id == project_id,
            Message.provider_message_id.in_(list(by_id)),
            Message.status.in_(("sending", "sent")),
        )
        .with_for_update()
    ).all()
    events = []
    for row in rows:
        receipt = by_id[str(row.provider_message_id)]
        values: dict[str, Any] = {"updated_at": at}
        if receipt.delivered:
            values.update(status="delivered", delivered_at=at)
        else:
            values.update(status="failed", reason="undelivered", last_error=receipt.code)
        session.execute(
            update(Message)
            .where(Message.id == row.id, Message.status.in_(("sending", "sent")))
            .values(**values)
        )
        properties: dict[str, Any] = {"message_id": row.id, "channel": row.channel}
        for name, value in (
            ("journey_id", row.journey_id),
            ("journey_version", row.version_id),
            ("node_id", row.node_id),
            ("variant", row.variant),
        ):
            if value is not None:
                properties[name] = value
        if not receipt.delivered:
            properties["reason"] = "undelivered"
        events.append(
            system_events.SystemEvent(
                id=f"msg{row.id}-{'delivered' if receipt.delivered else 'failed'}",
                user_id=int(row.user_id),
                event=(
                    system_events.MESSAGE_DELIVERED
                    if receipt.delivered
                    else system_events.MESSAGE_FAILED
                ),
                time=now,
                properties=properties,
            )
        )
    system_events.emit(session=session, project_id=project_id, events=events, now=now)
    session.flush()
    return len(rows)


def is_unsubscribe(text: str) -> bool:
    return "".join(text.split()).upper() in UNSUBSCRIBE_WORDS


def record_sms_opt_out(
    session: Session, *, project_id: int, mobile: str, source: str, now: datetime
) -> bool:
    """Opt the holder of ``mobile`` out of marketing SMS (the one call into compliance).
    False when no customer holds the number."""
    try:
        compliance.opt_out_identity(
            session=session,
            project_id=project_id,
            key="$identity_mobile",
            value=mobile,
            opt_out_in=OptOutIn(channel="sms", purpose="marketing", source=source),
            actor="system:sms_reply",
            now=now,
        )
    except NotFound:
        return False
    return True


def apply_replies(
    session: Session, *, project_id: int, replies: Iterable[Reply], source: str, now: datetime
) -> int:
    """Opt-outs recorded for the unsubscribe replies among ``replies``."""
    done = 0
    for reply in replies:
        mobile = normalise_mobile(reply.mobile)
        if mobile is None or not is_unsubscribe(reply.text):
            continue
        if record_sms_opt_out(
            session, project_id=project_id, mobile=mobile, source=source, now=now
        ):
            done += 1
            log.info("sms_reply_opted_out", project_id=project_id, source=source)
    return done


# -- polling ----------------------------------------------------------------------------------


@dataclass
class PollReport:
    receipts: int = 0
    opt_outs: int = 0


def _sms_accounts(session: Session) -> list[ChannelAccount]:
    return list(
        session.scalars(
            select(ChannelAccount).where(
                ChannelAccount.channel == "sms", ChannelAccount.enabled.is_(True)
            )
        )
    )


async def _poll_aliyun(
    session: Session, sender: AliyunSms, project_id: int, now: datetime, limit: int
) -> list[Receipt]:
    since = utc_naive(now) - timedelta(days=3)
    rows = session.execute(
        select(Message.user_id, Message.provider_message_id, Message.sent_at)
        .where(
            Message.project_id == project_id,
            Message.channel == "sms",
            Message.status == "sent",
            Message.provider_message_id.is_not(None),
            Message.sent_at >= since,
        )
        .order_by(Message.sent_at)
        .limit(limit)
    ).all()
    found = []
    for user_id, provider_id, sent_at in rows:
        biz, _, digest = str(provider_id).partition(":")
        mobiles = identity.user_identities(
            session=session, project_id=project_id, user_id=int(user_id)
        ).get("$identity_mobile", [])
        mobile = next(
            (m for m in map(normalise_mobile, mobiles) if m and phone_digest(m) == digest), None
        )
        if mobile is None or sent_at is None:
            continue
        day = sent_at.replace(tzinfo=ZoneInfo("UTC")).astimezone(SHANGHAI).strftime("%Y%m%d")
        for detail in await sender.query_details(mobile=mobile, biz_id=biz, send_date=day):
            if detail.send_status in (2, 3):
                found.append(Receipt(str(provider_id), detail.send_status == 3, detail.err_code))
    return found


async def poll(
    session: Session, *, now: datetime, limit: int = 200, project_id: int | None = None
) -> PollReport:
    """Poll every enabled SMS account: Aliyun ``QuerySendDetails`` for messages still
    ``sent`` (last 3 days), Tencent ``PullSmsSendStatus`` and ``PullSmsReplyStatus``."""
    report = PollReport()
    for row in _sms_accounts(session):
        if project_id is not None and row.project_id != project_id:
            continue
        sender = sms_sender(account_dict(row))
        if sender is None:
            continue
        try:
            if isinstance(sender, AliyunSms):
                receipts = await _poll_aliyun(session, sender, row.project_id, now, limit)
                replies: list[Reply] = []
            else:
                assert isinstance(sender, TencentSms)
                statuses = await sender.pull_status(limit=limit)
                receipts = [
                    Receipt(
                        str(s["serial_no"]),
                        str(s["report_status"]).upper() == "SUCCESS",
                        s.get("description"),
                    )
                    for s in statuses
                ]
                replies = [Reply(r["mobile"], r["text"]) for r in await sender.pull_replies()]
        except Exception:
            log.warning("sms_receipts_poll_failed", account_id=row.id, exc_info=True)
            continue
        finally:
            if isinstance(sender, TencentSms):
                await sender.aclose()
        report.receipts += apply_receipts(
            session, project_id=row.project_id, receipts=receipts, now=now
        )
        report.opt_outs += apply_replies(
            session,
            project_id=row.project_id,
            replies=replies,
            source=f"sms_reply_{row.provider}",
            now=now,
        )
    return report


class ReceiptPoller(LoopService):
    """Polls SMS receipts and replies of every enabled SMS account (``poll``) once a minute —
    the safety net behind the provider callbacks."""

    name = "sms_receipts"
    interval_seconds = 60.0

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def run_once(self) -> int:
        with self.runtime.db.unit_of_work() as session:
            report = asyncio.run(poll(session, now=self.runtime.clock()))
        if report.receipts or report.opt_outs:
            log.info("sms_receipts_polled", receipts=report.receipts, opt_outs=report.opt_outs)
        return 0  # one pass per interval: providers limit how often they may be asked
