"""The ``sms`` channel: Aliyun or Tencent Cloud, chosen by the account's ``provider``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flywheel.channels.base import Channel, ChannelContext, Outcome, Outgoing, register
from flywheel.channels.providers.aliyun_sms import AliyunSms
from flywheel.channels.providers.common import first_identity, normalise_mobile, not_configured
from flywheel.channels.providers.tencent_sms import TencentSms

_REQUIRED = {
    "aliyun": ("access_key_id", "access_key_secret", "sign_name"),
    "tencent": ("secret_id", "secret_key", "sdk_app_id", "sign_name"),
}


def sms_sender(account: Mapping[str, Any]) -> AliyunSms | TencentSms | None:
    """The provider client of an SMS account, or None when the account is incomplete."""
    provider = str(account.get("provider") or "")
    needed = _REQUIRED.get(provider)
    if needed is None or any(not account.get(k) for k in needed):
        return None
    timeout = float(account.get("timeout_seconds") or 5.0)
    if provider == "aliyun":
        return AliyunSms(account, timeout_seconds=timeout)
    return TencentSms(account, timeout_seconds=timeout)


@register("sms")
class SmsChannel(Channel):
    """Text messages to mainland mobile numbers through a pre-registered sign and template."""

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        self.sender = sms_sender(context.account)

    def address(
        self,
        *,
        profile: Mapping[str, Any],
        identities: Mapping[str, Sequence[str]],
        config: Mapping[str, Any],  # noqa: ARG002
    ) -> str | None:
        raw = first_identity(identities, "$identity_mobile")
        if raw is None and profile.get("mobile"):
            raw = str(profile["mobile"])
        return normalise_mobile(raw) if raw else None

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        if self.sender is None:
            return not_configured(messages, "sms account (provider and credentials)")
        return await self.sender.send(messages)

    async def aclose(self) -> None:
        if isinstance(self.sender, TencentSms):
            await self.sender.aclose()
