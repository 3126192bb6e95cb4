"""Channel settings API (accounts, test send, delivery statistics) and the public endpoints
customers and providers reach: tracked links, one-click unsubscribe, receipt callbacks."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy.orm import Session

from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.channels import accounts, links, receipts, unsubscribe
from flywheel.channels.accounts import (
    AccountEdit,
    AccountIn,
    AccountOut,
    CallbacksOut,
    ChannelStats,
    TestIn,
    TestOut,
)
from flywheel.channels.models import ChannelAccount
from flywheel.core.errors import InvalidInput, NotFound
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects.deps import ProjectId

router = APIRouter(prefix="/api/v1/channels/accounts", tags=["channels"])
stats_router = APIRouter(prefix="/api/v1/channels", tags=["channels"])
#: Outside /api/v1: reached by customers (links, unsubscribe) and providers (callbacks).
public_router = APIRouter(tags=["channels-public"])

Reader = Annotated[Principal, Depends(require("channels:read"))]
Admin = Annotated[Principal, Depends(require("channels:admin"))]
Ident = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=list[AccountOut])
def list_accounts(session: SessionDep, project_id: ProjectId, _: Reader) -> list[AccountOut]:
    return accounts.list_accounts(session=session, project_id=project_id)


@router.post("", response_model=AccountOut, status_code=201)
def create_account(
    body: AccountIn, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Admin
) -> AccountOut:
    return accounts.create_account(
        session=session,
        project_id=project_id,
        account_in=body,
        actor=who.actor,
        now=runtime.clock(),
    )


@router.get("/{account_id}", response_model=AccountOut)
def get_account(
    account_id: Ident, session: SessionDep, project_id: ProjectId, _: Reader
) -> AccountOut:
    return accounts.get_account(session=session, project_id=project_id, account_id=account_id)


@router.patch("/{account_id}", response_model=AccountOut)
def update_account(
    account_id: Ident,
    body: AccountEdit,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Admin,
) -> AccountOut:
    return accounts.update_account(
        session=session,
        project_id=project_id,
        account_id=account_id,
        edit=body,
        actor=who.actor,
        now=runtime.clock(),
    )


@router.delete("/{account_id}", status_code=204)
def delete_account(
    account_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, who: Admin
) -> Response:
    accounts.delete_account(
        session=session,
        project_id=project_id,
        account_id=account_id,
        actor=who.actor,
        now=runtime.clock(),
    )
    return Response(status_code=204)


@router.get("/{account_id}/callbacks", response_model=CallbacksOut)
def account_callbacks(
    account_id: Ident, session: SessionDep, runtime: RuntimeDep, project_id: ProjectId, _: Admin
) -> CallbacksOut:
    return accounts.callbacks(
        session=session,
        project_id=project_id,
        account_id=account_id,
        public_url=runtime.settings.public_url,
    )


@router.post("/{account_id}/test", response_model=TestOut)
def send_test(
    account_id: Ident,
    body: TestIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    who: Admin,
) -> TestOut:
    return accounts.send_test(
        session=session,
        project_id=project_id,
        account_id=account_id,
        test_in=body,
        settings=runtime.settings,
        actor=who.actor,
        now=runtime.clock(),
    )


@stats_router.get("/stats", response_model=list[ChannelStats])
def channel_stats(
    session: SessionDep,
    project_id: ProjectId,
    _: Reader,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
) -> list[ChannelStats]:
    return accounts.stats(
        session=session, project_id=project_id, since=since, until=until, channel=channel
    )


# -- public -----------------------------------------------------------------------------------


@public_router.get("/l/{code}", include_in_schema=False)
def follow_link(code: str, session: SessionDep, runtime: RuntimeDep) -> Response:
    url = links.record_click(session, code=code, now=runtime.clock())
    if url is None:
        raise NotFound("link not found")
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


_CONFIRM_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>退订 / Unsubscribe</title>
</head><body style="font-family:sans-serif;max-width:32em;margin:3em auto;text-align:center">
<p>{text}</p>{form}</body></html>"""


@public_router.get("/u/{token}", include_in_schema=False)
def unsubscribe_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    unsubscribe.read_token(runtime.settings.secret_key, token)  # a bad link fails here
    form = (
        f'<form method="post" action="/u/{escape(token)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">确认退订 / Unsubscribe</button></form>'
    )
    return HTMLResponse(_CONFIRM_PAGE.format(text="您将不再收到此类营销邮件。", form=form))


@public_router.post("/u/{token}", include_in_schema=False)
def unsubscribe_one_click(token: str, session: SessionDep, runtime: RuntimeDep) -> HTMLResponse:
    unsubscribe.unsubscribe(
        session, token=token, secret_key=runtime.settings.secret_key, now=runtime.clock()
    )
    return HTMLResponse(_CONFIRM_PAGE.format(text="已退订 / You are unsubscribed.", form=""))


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]
Token = Annotated[str, Query(max_length=128)]


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("body is not JSON") from exc


def _account(session: Session, channel: str, account_id: int, token: str) -> ChannelAccount:
    row = accounts.account_by_token(session=session, account_id=account_id, token=token)
    if row is None or row.channel != channel:
        raise NotFound("callback not found")
    return row


@public_router.post("/callbacks/sms/{account_id}/receipts", include_in_schema=False)
def sms_receipts(
    account_id: Ident, body: RawBody, session: SessionDep, runtime: RuntimeDep, token: Token = ""
) -> JSONResponse:
    """Delivery reports pushed by Aliyun (SmsReport) or Tencent (status callback)."""
    row = _account(session, "sms", account_id, token)
    payload = _json(body)
    if row.provider == "tencent":
        parsed = receipts.parse_tencent_reports(payload)
    else:
        parsed = receipts.parse_aliyun_reports(payload)
    receipts.apply_receipts(
        session, project_id=row.project_id, receipts=parsed, now=runtime.clock()
    )
    return _ack(row.provider)


@public_router.post("/callbacks/sms/{account_id}/replies", include_in_schema=False)
def sms_replies(
    account_id: Ident, body: RawBody, session: SessionDep, runtime: RuntimeDep, token: Token = ""
) -> JSONResponse:
    """Uplink replies pushed by Aliyun (SmsUp) or Tencent (reply callback): "TD" opts out."""
    row = _account(session, "sms", account_id, token)
    payload = _json(body)
    if row.provider == "tencent":
        parsed = receipts.parse_tencent_replies(payload)
    else:
        parsed = receipts.parse_aliyun_replies(payload)
    receipts.apply_replies(
        session,
        project_id=row.project_id,
        replies=parsed,
        source=f"sms_reply_{row.provider or 'sms'}",
        now=runtime.clock(),
    )
    return _ack(row.provider)


def _ack(provider: str) -> JSONResponse:
    if provider == "tencent":
        return JSONResponse({"result": 0, "errmsg": "OK"})
    return JSONResponse({"code": 0, "msg": "成功"})


@public_router.post("/callbacks/email/{account_id}/bounces", include_in_schema=False)
def email_bounces(
    account_id: Ident,
    request: Request,
    body: RawBody,
    session: SessionDep,
    runtime: RuntimeDep,
    token: Token = "",
) -> dict[str, int]:
    """Bounces: a DSN (``message/rfc822`` body) or a JSON bounce webhook."""
    row = _account(session, "email", account_id, token)
    if request.headers.get("content-type", "").startswith("application/json"):
        parsed = unsubscribe.parse_bounce_webhook(_json(body))
    else:
        parsed = unsubscribe.parse_dsn(body)
    failed = unsubscribe.apply_bounces(
        session, project_id=row.project_id, bounces=parsed, now=runtime.clock()
    )
    return {"bounces": len(parsed), "failed": failed}
