"""HTTP plumbing shared by the WeCom and WeChat adapters: JSON calls, errcodes, tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from flywheel.channels.base import Outcome
from flywheel.channels.providers.common import classify_exception, failed, json_body, retry
from flywheel.channels.providers.tokens import TOKEN_ERRORS, TokenError


class BadAnswer(Exception):
    """A call that produced no usable JSON: carries the classified outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


async def call_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    params: Mapping[str, str],
    payload: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object answered, or :class:`BadAnswer` (timeout, 5xx, malformed …)."""
    try:
        if payload is None:
            response = await client.request(method, url, params=dict(params))
        else:
            response = await client.request(
                method,
                url,
                params=dict(params),
                content=orjson.dumps(payload),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
    except httpx.HTTPError as exc:
        raise BadAnswer(classify_exception(exc)) from exc
    body = json_body(response)
    if isinstance(body, Outcome):
        raise BadAnswer(body)
    return body


#: errcodes shared by WeCom and WeChat (https://developer.work.weixin.qq.com/document/path/90313,
#: https://developers.weixin.qq.com/doc/offiaccount/Getting_Started/Global_Return_Code.html).
_RETRY = {
    -1: "http_500",  # system busy
    45009: "quota_exceeded",  # API call frequency / daily quota reached
    45033: "throttled",  # too many concurrent calls
    45047: "throttled",  # customer message frequency
    45011: "throttled",  # API frequency limit
}
_FAIL = {
    40003: "invalid_recipient",  # invalid openid / userid
    81013: "invalid_recipient",  # user, party and tag all invalid
    60111: "invalid_recipient",  # userid not found
    43004: "not_subscribed",  # the user does not follow the account
    43101: "not_subscribed",  # the user refused subscribe messages
    40037: "template_rejected",  # invalid template id
    47003: "template_rejected",  # template data does not match the template
    44004: "content_rejected",  # empty text
    40008: "invalid_request",  # invalid message type
    40013: "auth_failed",  # invalid corpid / appid
    40125: "auth_failed",  # invalid app secret
    41001: "auth_failed",
    48002: "auth_failed",  # API forbidden for this app
    60020: "auth_failed",  # IP not on the allow list
}


def errcode_outcome(body: Mapping[str, Any]) -> Outcome | None:
    """None when ``errcode`` is 0 (or absent), else the outcome it means."""
    code = body.get("errcode", 0)
    if not isinstance(code, int):
        return retry("malformed_response", "errcode is not a number")
    if code == 0:
        return None
    detail = f"{code}: {str(body.get('errmsg', ''))[:160]}"
    if code in _RETRY:
        reason = _RETRY[code]
        return retry(reason, detail, 3600.0 if reason == "quota_exceeded" else None)
    if code in TOKEN_ERRORS:  # still invalid after one refresh
        return retry("token_rejected", detail)
    return failed(_FAIL.get(code, "provider_rejected"), detail)


def token_outcome(exc: TokenError) -> Outcome:
    """The outcome of every message when no token could be had."""
    outcome = errcode_outcome({"errcode": exc.errcode, "errmsg": exc.errmsg})
    return outcome or retry("malformed_response", "token missing")


def token_from(body: Mapping[str, Any]) -> tuple[str, float]:
    """(token, expires_in) of a gettoken answer; :class:`TokenError` when it has none."""
    token = body.get("access_token")
    if body.get("errcode", 0) != 0 or not isinstance(token, str) or not token:
        raise TokenError(int(body.get("errcode") or -1), str(body.get("errmsg") or "no token"))
    return token, float(body.get("expires_in") or 7200)
