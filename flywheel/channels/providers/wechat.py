"""WeChat Official Account (公众号): template messages and subscribe messages.

Account: ``{"app_id", "app_secret", "base_url"?, "openid_identity"?,
"templates": {"fund_notice": {"id": "<template id>", "params": {"thing1": "name"},
"miniprogram": {"appid": "...", "pagepath": "pages/fund?code=1"}}}}``.

The recipient is the customer's openid for this account: the identity named by
``openid_identity`` (default ``$identity_wechat_openid``). A customer known only by unionid has no
openid here, so the dispatcher falls back. ``params`` maps template keywords to rendered fields;
a message's link becomes the template's ``url`` (``page`` for subscribe messages) unless a
mini-program page is set. Template messages carry ``client_msg_id`` = the idempotency key, so
WeChat drops a repeated send of the same message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flywheel.channels.base import Outcome, Outgoing, register
from flywheel.channels.providers.common import (
    failed,
    first_identity,
    not_configured,
    sent,
    template_for,
    template_params,
)
from flywheel.channels.providers.tokens import call_with_token
from flywheel.channels.providers.wecom import _WeixinChannel
from flywheel.channels.providers.weixin import call_json, errcode_outcome, token_from

WECHAT_BASE = "https://api.weixin.qq.com"


class _WeChatChannel(_WeixinChannel):
    default_base = WECHAT_BASE
    path: str = ""

    def address(
        self,
        *,
        profile: Mapping[str, Any],  # noqa: ARG002
        identities: Mapping[str, Sequence[str]],
        config: Mapping[str, Any],  # noqa: ARG002
    ) -> str | None:
        key = str(self.context.account.get("openid_identity") or "$identity_wechat_openid")
        return first_identity(identities, key)

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        account = self.context.account
        if not account.get("app_id") or not account.get("app_secret"):
            return not_configured(messages, "wechat official account (app_id, app_secret)")
        return await self._each(messages, self._send_one)

    async def _fetch_token(self) -> tuple[str, float]:
        account = self.context.account
        body = await call_json(
            self.client,
            "GET",
            f"{self.base_url}/cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": str(account["app_id"]),
                "secret": str(account["app_secret"]),
            },
        )
        return token_from(body)

    def _payload(self, message: Outgoing, template: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _send_one(self, message: Outgoing) -> Outcome:
        template = template_for(message, self.context.account)
        if template is None or not (template.get("id") or template.get("code")):
            return failed("template_missing", "no pre-registered template")
        payload = self._payload(message, template)
        account = self.context.account
        key = self.tokens.key(self.base_url, str(account["app_id"]), str(account["app_secret"]))

        async def call(token: str) -> dict[str, Any]:
            return await call_json(
                self.client,
                "POST",
                f"{self.base_url}{self.path}",
                params={"access_token": token},
                payload=payload,
            )

        body = await call_with_token(key, self._fetch_token, call, tokens=self.tokens)
        bad = errcode_outcome(body)
        if bad is not None:
            return bad
        return sent(str(body["msgid"]) if body.get("msgid") is not None else None)


def _data(message: Outgoing, template: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    values = template_params(message, template.get("params") or {})
    return {name: {"value": value} for name, value in values.items()}


def _miniprogram(message: Outgoing, template: Mapping[str, Any]) -> dict[str, str] | None:
    mini = message.config.get("miniprogram") or template.get("miniprogram")
    if not mini:
        return None
    return {"appid": str(mini["appid"]), "pagepath": str(mini.get("pagepath") or "")}


@register("wechat_template")
class WeChatTemplateChannel(_WeChatChannel):
    """Template messages (``message/template/send``) to followers of the account."""

    family = "wechat"

    path = "/cgi-bin/message/template/send"

    def _payload(self, message: Outgoing, template: Mapping[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "touser": message.address,
            "template_id": str(template.get("id") or template.get("code")),
            "data": _data(message, template),
            "client_msg_id": message.idempotency_key[:64],
        }
        if message.link:
            payload["url"] = message.link
        mini = _miniprogram(message, template)
        if mini:
            payload["miniprogram"] = mini
        return payload


@register("wechat_subscribe")
class WeChatSubscribeChannel(_WeChatChannel):
    """Subscribe messages (``message/subscribe/bizsend``) the customer agreed to receive."""

    family = "wechat"

    path = "/cgi-bin/message/subscribe/bizsend"

    def _payload(self, message: Outgoing, template: Mapping[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "touser": message.address,
            "template_id": str(template.get("id") or template.get("code")),
            "data": _data(message, template),
        }
        if message.link:
            payload["page"] = message.link
        mini = _miniprogram(message, template)
        if mini:
            payload["miniprogram"] = mini
        return payload
