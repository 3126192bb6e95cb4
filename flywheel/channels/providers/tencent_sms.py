"""Tencent Cloud SMS (2021-01-11 ``SendSms``) through ``tencentcloud-sdk-python`` (TC3-HMAC-SHA256).

Account (provider ``tencent``)::

    {"secret_id": "...", "secret_key": "...", "sdk_app_id": "1400000000",
     "sign_name": "某某证券", "region": "ap-guangzhou", "endpoint": "sms.tencentcloudapi.com",
     "protocol": "https",
     "templates": {"fund_notice": {"id": "1234567", "params": ["name", "fund"]}}}

``params`` is the ordered list of rendered field names for the template's ``{1}``, ``{2}`` …
Messages with the same template and parameters share one call (≤ 200 numbers); the provider
message id is the ``SerialNo`` of each number, which receipts (callback ``sid``, polling
``SerialNo``) carry back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as tencent_models
from tencentcloud.sms.v20210111.sms_client_async import SmsClient

from flywheel.channels.base import Outcome, Outgoing
from flywheel.channels.providers.common import (
    classify_exception,
    failed,
    normalise_mobile,
    retry,
    sent,
    template_for,
)

BATCH_LIMIT = 200
QUOTA_RETRY_SECONDS = 3600.0


def code_outcome(code: str | None, message: str | None) -> Outcome | None:
    """None when ``code`` is Ok, else the outcome of a Tencent error code."""
    if code is None or code.lower() == "ok":
        return None
    detail = f"{code}: {message}"
    if code.startswith("InternalError"):
        return retry("http_500", detail)
    if code == "RequestLimitExceeded" or code.startswith("LimitExceeded.PhoneNumber"):
        return retry("throttled", detail)
    if code in {
        "LimitExceeded.AppDailyLimit",
        "LimitExceeded.DailyLimit",
        "LimitExceeded.AppCountryOrRegionDailyLimit",
        "FailedOperation.InsufficientBalanceInSmsPackage",
    }:
        return retry("quota_exceeded", detail, QUOTA_RETRY_SECONDS)
    if code.startswith(("InvalidParameterValue.IncorrectPhoneNumber", "UnsupportedOperation")):
        return failed("invalid_recipient", detail)
    if code.startswith("AuthFailure"):
        return failed("auth_failed", detail)
    if "Template" in code or "Signature" in code:
        return failed("template_rejected", detail)
    return failed("provider_rejected", detail)


def exception_outcome(exc: Exception) -> Outcome:
    if isinstance(exc, TencentCloudSDKException):
        code = exc.get_code()
        if code == "ServerNetworkError":  # any non-200 HTTP status
            return retry("http_5xx", str(exc.get_message())[:200])
        if code == "ClientNetworkError":
            return retry("connection_error", str(exc.get_message())[:200])
        return code_outcome(code, exc.get_message()) or retry("malformed_response")
    if isinstance(exc, ValueError | KeyError | TypeError):
        return retry("malformed_response", type(exc).__name__)
    if isinstance(exc, httpx.HTTPError | OSError):
        return classify_exception(exc)
    return retry("connection_error", type(exc).__name__)


class TencentSms:
    """Sends through one Tencent Cloud account (one async SDK client, reused)."""

    def __init__(self, account: Mapping[str, Any], *, timeout_seconds: float = 5.0) -> None:
        self.account = account
        http = HttpProfile(
            protocol=str(account.get("protocol") or "https"),
            endpoint=str(account.get("endpoint") or "sms.tencentcloudapi.com"),
            reqTimeout=int(max(1, timeout_seconds)),
            keepAlive=True,
        )
        self.client = SmsClient(
            Credential(str(account["secret_id"]), str(account["secret_key"])),
            str(account.get("region") or "ap-guangzhou"),
            ClientProfile(httpProfile=http),
        )
        self.limit = asyncio.Semaphore(int(account.get("concurrency") or 16))

    async def aclose(self) -> None:
        await self.client.close()

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(messages)
        groups: dict[tuple[str, str, tuple[str, ...]], list[tuple[int, str]]] = {}
        for index, message in enumerate(messages):
            template = template_for(message, self.account)
            if template is None or not (template.get("id") or template.get("code")):
                outcomes[index] = failed("template_missing", "no pre-registered template")
                continue
            mobile = normalise_mobile(message.address)
            if mobile is None:
                outcomes[index] = failed("invalid_recipient", "not a mainland mobile number")
                continue
            names = template.get("params") or []
            if isinstance(names, Mapping):
                names = list(names.values())
            params = tuple(
                message.fields.get(n) or str(message.context.get(n) or "") for n in names
            )
            sign = str(message.config.get("sign_name") or self.account.get("sign_name") or "")
            key = (str(template.get("id") or template.get("code")), sign, params)
            groups.setdefault(key, []).append((index, mobile))
        calls = []
        for (template_id, sign, params), members in groups.items():
            for start in range(0, len(members), BATCH_LIMIT):
                chunk = members[start : start + BATCH_LIMIT]
                context = str(messages[chunk[0][0]].message_id) if len(chunk) == 1 else None
                calls.append((chunk, template_id, sign, list(params), context))

        async def call(
            chunk: list[tuple[int, str]],
            template_id: str,
            sign: str,
            params: list[str],
            context: str | None,
        ) -> None:
            async with self.limit:
                results = await self._send(
                    template_id, sign, params, [m for _, m in chunk], context
                )
            for (index, _), outcome in zip(chunk, results, strict=True):
                outcomes[index] = outcome

        await asyncio.gather(*(call(*c) for c in calls))
        return [o if o is not None else failed("internal") for o in outcomes]

    async def _send(
        self,
        template_id: str,
        sign: str,
        params: list[str],
        mobiles: list[str],
        session_context: str | None,
    ) -> list[Outcome]:
        request = tencent_models.SendSmsRequest()
        request.from_json_string(
            json.dumps(
                {
                    "PhoneNumberSet": [f"+86{m}" for m in mobiles],
                    "SmsSdkAppId": str(self.account["sdk_app_id"]),
                    "SignName": sign,
                    "TemplateId": template_id,
                    "TemplateParamSet": params,
                    **({"SessionContext": session_context} if session_context else {}),
                }
            )
        )
        try:
            response = await self.client.SendSms(request)
        except Exception as exc:
            return [exception_outcome(exc)] * len(mobiles)
        by_phone = {
            str(s.PhoneNumber)[-11:]: s for s in (getattr(response, "SendStatusSet", None) or [])
        }
        outcomes = []
        for mobile in mobiles:
            status = by_phone.get(mobile)
            if status is None:
                outcomes.append(retry("malformed_response", "number missing from SendStatusSet"))
                continue
            bad = code_outcome(status.Code, status.Message)
            outcomes.append(bad if bad is not None else sent(str(status.SerialNo)))
        return outcomes

    async def pull_status(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """``PullSmsSendStatus``: the next delivery reports (each pulled once by Tencent)."""
        request = tencent_models.PullSmsSendStatusRequest()
        request.from_json_string(
            json.dumps({"Limit": limit, "SmsSdkAppId": str(self.account["sdk_app_id"])})
        )
        response = await self.client.PullSmsSendStatus(request)
        return [
            {
                "serial_no": s.SerialNo,
                "report_status": s.ReportStatus,
                "description": s.Description,
            }
            for s in (response.PullSmsSendStatusSet or [])
        ]

    async def pull_replies(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """``PullSmsReplyStatus``: uplink replies (mobile, text)."""
        request = tencent_models.PullSmsReplyStatusRequest()
        request.from_json_string(
            json.dumps({"Limit": limit, "SmsSdkAppId": str(self.account["sdk_app_id"])})
        )
        response = await self.client.PullSmsReplyStatus(request)
        return [
            {"mobile": str(s.PhoneNumber)[-11:], "text": s.ReplyContent}
            for s in (response.PullSmsReplyStatusSet or [])
        ]
