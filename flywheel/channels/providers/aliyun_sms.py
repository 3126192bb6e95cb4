"""Aliyun SMS (dysmsapi 2017-05-25) through the official SDK ``alibabacloud_dysmsapi20170525``.

Account (``ChannelAccount`` credentials + options, provider ``aliyun``)::

    {"access_key_id": "...", "access_key_secret": "...", "sign_name": "某某证券",
     "endpoint": "dysmsapi.aliyuncs.com", "protocol": "https",
     "templates": {"fund_notice": {"code": "SMS_12345", "params": {"name": "name"}}}}

A batch sharing one template goes as ``SendBatchSms`` (≤ 100 numbers a call), a single message
as ``SendSms`` with ``OutId`` = our message id. Requests are signed by the SDK
(ACS3-HMAC-SHA256). The provider message id is ``<BizId>:<phone digest>``, which the receipt
callback and ``QuerySendDetails`` polling map back to the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import orjson
from alibabacloud_dysmsapi20170525 import models as aliyun_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.runtime import RuntimeOptions

from flywheel.channels.base import Outcome, Outgoing
from flywheel.channels.providers.common import (
    failed,
    normalise_mobile,
    phone_digest,
    retry,
    sent,
    template_for,
    template_params,
)

BATCH_LIMIT = 100

#: Business codes (HTTP 200 answers) that are worth retrying later.
_RETRY_CODES = {
    "isv.BUSINESS_LIMIT_CONTROL": "throttled",
    "Throttling.User": "throttled",
    "Throttling.Api": "throttled",
    "isv.DAY_LIMIT_CONTROL": "quota_exceeded",
    "isv.AMOUNT_NOT_ENOUGH": "quota_exceeded",
    "isv.OUT_OF_SERVICE": "quota_exceeded",
    "isp.SYSTEM_ERROR": "http_500",
    "SignatureNonceUsed": "throttled",
}
_FAIL_CODES = {
    "isv.MOBILE_NUMBER_ILLEGAL": "invalid_recipient",
    "isv.MOBILE_COUNT_OVER_LIMIT": "invalid_recipient",
    "isv.BLACK_KEY_CONTROL_LIMIT": "content_rejected",
    "isv.SMS_TEMPLATE_ILLEGAL": "template_rejected",
    "isv.TEMPLATE_MISSING_PARAMETERS": "template_rejected",
    "isv.TEMPLATE_PARAMS_ILLEGAL": "template_rejected",
    "isv.SMS_SIGNATURE_ILLEGAL": "sign_rejected",
    "isv.INVALID_PARAMETERS": "invalid_request",
}
#: Seconds before retrying a quota problem (a day quota resets at midnight, a balance needs a
#: person): the dispatcher's dead-letter limit ends it if it lasts.
QUOTA_RETRY_SECONDS = 3600.0


def provider_id(biz_id: str, mobile: str) -> str:
    return f"{biz_id}:{phone_digest(mobile)}"


def code_outcome(code: str | None, message: str | None) -> Outcome | None:
    """None when ``code`` is OK, else the outcome of a business error code."""
    if code in (None, "OK"):
        return None
    if code in _RETRY_CODES:
        reason = _RETRY_CODES[code]
        after = QUOTA_RETRY_SECONDS if reason == "quota_exceeded" else None
        return retry(reason, f"{code}: {message}", after)
    return failed(_FAIL_CODES.get(code, "provider_rejected"), f"{code}: {message}")


def exception_outcome(exc: Exception) -> Outcome:
    """Classify what the SDK raised (it wraps transport and parsing errors)."""
    inner: Any = getattr(exc, "inner_exception", None) or exc
    if isinstance(inner, ThrottlingException):
        return retry("throttled", str(inner.code), float(inner.retry_after or 1))
    if isinstance(inner, ServerException):
        return retry(f"http_{inner.status_code or 500}", str(inner.code))
    if isinstance(inner, ClientException):
        status = inner.status_code or 400
        if status == 429:
            return retry("http_429", str(inner.code))
        if inner.code and str(inner.code).startswith("Throttling"):
            return retry("throttled", str(inner.code))
        return failed(f"http_{status}", str(inner.code))
    text = str(inner).lower()
    if isinstance(inner, ValueError) or "as json" in text:  # a 2xx answer that is not JSON
        return retry("malformed_response", type(inner).__name__)
    if "timeout" in text or "timed out" in text:
        return retry("timeout", type(inner).__name__)
    return retry("connection_error", type(inner).__name__)


class AliyunSms:
    """Sends through one Aliyun account (one SDK client, reused)."""

    def __init__(self, account: Mapping[str, Any], *, timeout_seconds: float = 5.0) -> None:
        self.account = account
        config = Config(
            access_key_id=str(account["access_key_id"]),
            access_key_secret=str(account["access_key_secret"]),
            endpoint=str(account.get("endpoint") or "dysmsapi.aliyuncs.com"),
            protocol=str(account.get("protocol") or "https"),
            read_timeout=int(timeout_seconds * 1000),
            connect_timeout=int(timeout_seconds * 1000),
        )
        self.client = Client(config)
        self.limit = asyncio.Semaphore(int(account.get("concurrency") or 16))
        self.runtime = RuntimeOptions(
            read_timeout=int(timeout_seconds * 1000), connect_timeout=int(timeout_seconds * 1000)
        )

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(messages)
        groups: dict[str, list[int]] = {}
        prepared: dict[int, tuple[str, dict[str, str]]] = {}
        for index, message in enumerate(messages):
            template = template_for(message, self.account)
            if template is None or not template.get("code"):
                outcomes[index] = failed("template_missing", "no pre-registered template")
                continue
            mobile = normalise_mobile(message.address)
            if mobile is None:
                outcomes[index] = failed("invalid_recipient", "not a mainland mobile number")
                continue
            params = template_params(message, template.get("params") or {})
            prepared[index] = (mobile, params)
            groups.setdefault(str(template["code"]), []).append(index)

        async def single(index: int, code: str) -> None:
            async with self.limit:
                outcomes[index] = await self._send_one(messages[index], code, *prepared[index])

        async def batch(chunk: list[int], code: str) -> None:
            async with self.limit:
                results = await self._send_batch(code, [prepared[i] for i in chunk])
            for index, outcome in zip(chunk, results, strict=True):
                outcomes[index] = outcome

        calls: list[Awaitable[None]] = []
        for code, indexes in groups.items():
            if len(indexes) == 1:
                calls.append(single(indexes[0], code))
                continue
            for start in range(0, len(indexes), BATCH_LIMIT):
                calls.append(batch(indexes[start : start + BATCH_LIMIT], code))
        await asyncio.gather(*calls)
        return [o if o is not None else failed("internal") for o in outcomes]

    def _sign_name(self, message: Outgoing) -> str:
        return str(message.config.get("sign_name") or self.account.get("sign_name") or "")

    async def _send_one(
        self, message: Outgoing, code: str, mobile: str, params: dict[str, str]
    ) -> Outcome:
        request = aliyun_models.SendSmsRequest(
            phone_numbers=mobile,
            sign_name=self._sign_name(message),
            template_code=code,
            template_param=orjson.dumps(params).decode() if params else None,
            out_id=str(message.message_id),
        )
        try:
            response = await self.client.send_sms_with_options_async(request, self.runtime)
        except Exception as exc:
            return exception_outcome(exc)
        body = response.body
        if body is None:
            return retry("malformed_response", "empty body")
        bad = code_outcome(body.code, body.message)
        if bad is not None:
            return bad
        if not body.biz_id:
            return retry("malformed_response", "no BizId")
        return sent(provider_id(body.biz_id, mobile))

    async def _send_batch(
        self, code: str, items: Sequence[tuple[str, dict[str, str]]]
    ) -> list[Outcome]:
        sign = str(self.account.get("sign_name") or "")
        request = aliyun_models.SendBatchSmsRequest(
            phone_number_json=orjson.dumps([m for m, _ in items]).decode(),
            sign_name_json=orjson.dumps([sign] * len(items)).decode(),
            template_code=code,
            template_param_json=orjson.dumps([p for _, p in items]).decode(),
        )
        try:
            response = await self.client.send_batch_sms_with_options_async(request, self.runtime)
        except Exception as exc:
            outcome = exception_outcome(exc)
            return [outcome] * len(items)
        body = response.body
        if body is None:
            return [retry("malformed_response", "empty body")] * len(items)
        bad = code_outcome(body.code, body.message)
        if bad is not None:
            return [bad] * len(items)
        if not body.biz_id:
            return [retry("malformed_response", "no BizId")] * len(items)
        return [sent(provider_id(body.biz_id, mobile)) for mobile, _ in items]

    async def query_details(self, *, mobile: str, biz_id: str, send_date: str) -> list[Any]:
        """``QuerySendDetails`` for one number and batch: the SDK's detail DTOs
        (``send_status`` 1 waiting, 2 failed, 3 delivered; ``err_code``)."""
        request = aliyun_models.QuerySendDetailsRequest(
            phone_number=mobile, biz_id=biz_id, send_date=send_date, page_size=50, current_page=1
        )
        response = await self.client.query_send_details_with_options_async(request, self.runtime)
        body = response.body
        if body is None or body.code != "OK":
            code = None if body is None else body.code
            raise RuntimeError(f"QuerySendDetails failed: {code}")
        dtos = body.sms_send_detail_dtos
        return list(dtos.sms_send_detail_dto or []) if dtos is not None else []
