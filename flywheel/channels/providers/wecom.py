"""WeCom (企业微信): application messages to employees, group robots, customer-contact templates.

Channels:

* ``wecom_app`` — ``message/send`` from a self-built app to employees (advisor notifications).
  Account: ``{"corp_id", "agent_id", "agent_secret", "base_url"?}``. Recipient: the spec's
  ``touser``, else the customer's advisor (profile ``advisor_id`` through the account's
  ``advisor_userids`` map, or the advisor id itself when it is the WeCom userid).
* ``wecom_robot`` — a group robot webhook (``webhook/send?key=``), markdown or text. Recipient:
  the spec's ``robot_key``, else the account's. Internal (not customer-facing).
* ``wecom_customer`` — ``externalcontact/add_msg_template`` (1v1, sender = the advisor): the
  advisor confirms the send in WeCom. Account: ``{"corp_id", "contact_secret"}``. Recipient:
  the customer's ``$identity_wecom_external_userid`` (or profile ``wecom_external_userid``).

Tokens come from ``gettoken`` and are cached (:mod:`flywheel.channels.providers.tokens`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from flywheel.channels.base import Channel, ChannelContext, Outcome, Outgoing, register
from flywheel.channels.providers.common import failed, first_identity, not_configured, sent
from flywheel.channels.providers.tokens import TokenError, call_with_token, tokens_for
from flywheel.channels.providers.weixin import (
    BadAnswer,
    call_json,
    errcode_outcome,
    token_from,
    token_outcome,
)

WECOM_BASE = "https://qyapi.weixin.qq.com"


class _WeixinChannel(Channel):
    """An adapter calling a Weixin-style JSON API, ``concurrency`` calls at a time."""

    default_base: str = WECOM_BASE

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        account = context.account
        self.base_url = str(account.get("base_url") or self.default_base).rstrip("/")
        self.client = httpx.AsyncClient(timeout=float(account.get("timeout_seconds") or 5.0))
        self.limit = asyncio.Semaphore(int(account.get("concurrency") or 16))
        self.tokens = tokens_for(context.settings.redis_url)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _each(
        self, messages: Sequence[Outgoing], one: Callable[[Outgoing], Awaitable[Outcome]]
    ) -> list[Outcome]:
        async def guarded(message: Outgoing) -> Outcome:
            async with self.limit:
                try:
                    return await one(message)
                except BadAnswer as bad:
                    return bad.outcome
                except TokenError as exc:
                    return token_outcome(exc)

        return list(await asyncio.gather(*(guarded(m) for m in messages)))


class _WeComTokenChannel(_WeixinChannel):
    secret_field = "agent_secret"

    def _configured(self) -> bool:
        return bool(
            self.context.account.get("corp_id") and self.context.account.get(self.secret_field)
        )

    async def _fetch_token(self) -> tuple[str, float]:
        account = self.context.account
        body = await call_json(
            self.client,
            "GET",
            f"{self.base_url}/cgi-bin/gettoken",
            params={
                "corpid": str(account["corp_id"]),
                "corpsecret": str(account[self.secret_field]),
            },
        )
        return token_from(body)

    async def _post(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        account = self.context.account
        key = self.tokens.key(
            self.base_url, str(account["corp_id"]), str(account[self.secret_field])
        )

        async def call(token: str) -> dict[str, Any]:
            return await call_json(
                self.client,
                "POST",
                f"{self.base_url}{path}",
                params={"access_token": token},
                payload=payload,
            )

        return await call_with_token(key, self._fetch_token, call, tokens=self.tokens)


def advisor_userid(
    profile: Mapping[str, Any], config: Mapping[str, Any], account: Mapping[str, Any]
) -> str | None:
    """The WeCom userid of the customer's advisor (or the spec's fixed ``touser``)."""
    if config.get("touser"):
        return str(config["touser"])
    advisor = profile.get("advisor_id")
    if not advisor:
        return None
    mapping: Mapping[str, Any] = account.get("advisor_userids") or {}
    return str(mapping.get(str(advisor), advisor))


def _text_payload(message: Outgoing, markdown: bool) -> dict[str, Any]:
    if markdown:
        return {"msgtype": "markdown", "markdown": {"content": message.body}}
    if message.link and message.title:
        return {
            "msgtype": "textcard",
            "textcard": {
                "title": message.title,
                "description": message.body,
                "url": message.link,
                "btntxt": message.config.get("button") or "详情",
            },
        }
    return {"msgtype": "text", "text": {"content": message.body}}


@register("wecom_app")
class WeComAppChannel(_WeComTokenChannel):
    """Application messages to employees (the customer's advisor by default)."""

    family = "wecom"
    customer_facing = False

    def address(
        self,
        *,
        profile: Mapping[str, Any],
        identities: Mapping[str, Sequence[str]],  # noqa: ARG002
        config: Mapping[str, Any],
    ) -> str | None:
        return advisor_userid(profile, config, self.context.account)

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        if not self._configured() or not self.context.account.get("agent_id"):
            return not_configured(messages, "wecom app (corp_id, agent_id, agent_secret)")
        return await self._each(messages, self._send_one)

    async def _send_one(self, message: Outgoing) -> Outcome:
        payload = {
            "touser": message.address,
            "agentid": int(self.context.account["agent_id"]),
            "safe": 0,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": 1800,
            **_text_payload(message, bool(message.config.get("markdown"))),
        }
        body = await self._post("/cgi-bin/message/send", payload)
        bad = errcode_outcome(body)
        if bad is not None:
            return bad
        if body.get("invaliduser"):
            return failed("invalid_recipient", "81013: invaliduser")
        return sent(str(body.get("msgid") or "") or None)


@register("wecom_robot")
class WeComRobotChannel(_WeixinChannel):
    """A group robot: markdown (default) or text into a WeCom group chat."""

    family = "wecom"
    customer_facing = False

    def address(
        self,
        *,
        profile: Mapping[str, Any],  # noqa: ARG002
        identities: Mapping[str, Sequence[str]],  # noqa: ARG002
        config: Mapping[str, Any],
    ) -> str | None:
        key = config.get("robot_key") or self.context.account.get("robot_key")
        return str(key) if key else None

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        return await self._each(messages, self._send_one)

    async def _send_one(self, message: Outgoing) -> Outcome:
        markdown = message.config.get("msgtype", "markdown") == "markdown"
        payload = _text_payload(message, markdown)
        body = await call_json(
            self.client,
            "POST",
            f"{self.base_url}/cgi-bin/webhook/send",
            params={"key": message.address},
            payload=payload,
        )
        return errcode_outcome(body) or sent(None)


@register("wecom_customer")
class WeComCustomerChannel(_WeComTokenChannel):
    """Customer-contact message templates: the advisor's 1v1 outreach to a WeChat customer."""

    family = "wecom"

    secret_field = "contact_secret"

    def address(
        self,
        *,
        profile: Mapping[str, Any],
        identities: Mapping[str, Sequence[str]],
        config: Mapping[str, Any],  # noqa: ARG002
    ) -> str | None:
        found = first_identity(identities, "$identity_wecom_external_userid")
        if found is None and profile.get("wecom_external_userid"):
            found = str(profile["wecom_external_userid"])
        return found

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        if not self._configured():
            return not_configured(messages, "wecom customer contact (corp_id, contact_secret)")
        return await self._each(messages, self._send_one)

    async def _send_one(self, message: Outgoing) -> Outcome:
        payload: dict[str, Any] = {
            "chat_type": "single",
            "external_userid": [message.address],
            "text": {"content": message.body},
        }
        profile = message.profile or message.context
        sender = advisor_userid(profile, message.config, self.context.account)
        if message.config.get("sender"):
            sender = str(message.config["sender"])
        if sender:
            payload["sender"] = str(sender)
        attachments = []
        mini = message.config.get("miniprogram")
        if mini:
            attachments.append({"msgtype": "miniprogram", "miniprogram": dict(mini)})
        elif message.link:
            attachments.append(
                {
                    "msgtype": "link",
                    "link": {"title": message.title or message.body[:30], "url": message.link},
                }
            )
        if attachments:
            payload["attachments"] = attachments
        body = await self._post("/cgi-bin/externalcontact/add_msg_template", payload)
        bad = errcode_outcome(body)
        if bad is not None:
            return bad
        if message.address in (body.get("fail_list") or []):
            return failed("invalid_recipient", "external_userid in fail_list")
        return sent(str(body.get("msgid") or "") or None)
