"""What every provider adapter shares: classifying bad answers, template parameters, phones.

Classification (the contract the dispatcher and :mod:`flywheel.channels.resilience` rely on):

* RETRY — timeouts, connection errors, HTTP 429 and 5xx, malformed JSON, throttling and
  quota-per-second codes, expired tokens that survived one refresh;
* FAILED — HTTP 4xx other than 429, invalid recipient, template rejected, any provider code
  not known to be transient;
* UNAVAILABLE — the account is missing or incomplete (``not_configured``): the dispatcher
  uses the fallback channel.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from flywheel.channels.base import Outcome, OutcomeKind, Outgoing

#: ``Outcome.reason`` values that mean "the provider (not this message) is in trouble": they
#: count against the circuit breaker and may be retried.
TRANSIENT_REASONS = frozenset(
    {"timeout", "connection_error", "malformed_response", "throttled", "quota_exceeded"}
)


def is_transient(reason: str | None) -> bool:
    """Whether an outcome reason is a provider-side, retryable problem."""
    if reason is None:
        return False
    return reason in TRANSIENT_REASONS or reason == "http_429" or reason.startswith("http_5")


def retry(reason: str, detail: str | None = None, retry_after: float | None = None) -> Outcome:
    return Outcome(OutcomeKind.RETRY, reason=reason, detail=detail, retry_after=retry_after)


def failed(reason: str, detail: str | None = None) -> Outcome:
    return Outcome(OutcomeKind.FAILED, reason=reason, detail=detail)


def sent(provider_message_id: str | None) -> Outcome:
    return Outcome(OutcomeKind.SENT, provider_message_id=provider_message_id)


def not_configured(messages: Sequence[Outgoing], missing: str) -> list[Outcome]:
    return [
        Outcome(OutcomeKind.UNAVAILABLE, reason="not_configured", detail=missing) for _ in messages
    ]


def classify_exception(exc: BaseException) -> Outcome:
    """An outcome for a transport error (never raised further)."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return retry("timeout", type(exc).__name__)
    if isinstance(exc, httpx.TransportError | OSError):
        return retry("connection_error", type(exc).__name__)
    return retry("connection_error", type(exc).__name__)


def classify_status(response: httpx.Response) -> Outcome | None:
    """None when the HTTP status is 2xx, else the outcome it means."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    detail = response.text[:200]
    if status == 429 or status >= 500:
        after = response.headers.get("Retry-After")
        seconds = float(after) if after and after.isdigit() else None
        return retry(f"http_{status}", detail, seconds)
    return failed(f"http_{status}", detail)


def json_body(response: httpx.Response) -> dict[str, Any] | Outcome:
    """The JSON object of a 2xx answer, or the outcome of a bad answer (status, malformed)."""
    bad = classify_status(response)
    if bad is not None:
        return bad
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return retry("malformed_response", response.text[:200])
    if not isinstance(body, dict):
        return retry("malformed_response", response.text[:200])
    return body


def template_params(message: Outgoing, mapping: Mapping[str, str]) -> dict[str, str]:
    """Provider template parameter → value, from ``mapping`` (parameter → rendered field name).

    A field missing from the rendered fields falls back to the message context, then to "".
    """
    values: dict[str, str] = {}
    for param, field_name in mapping.items():
        value = message.fields.get(field_name)
        if value is None:
            raw = message.context.get(field_name)
            value = "" if raw is None else str(raw)
        values[param] = value
    return values


def template_for(message: Outgoing, account: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pre-registered template a message uses: the send spec's ``config.template`` names an
    entry of the account's ``templates`` (``{"code"|"id": …, "params": …}``); a spec may also
    give ``template_code`` / ``template_params`` directly."""
    config = message.config
    templates: Mapping[str, Any] = account.get("templates") or {}
    name = config.get("template")
    if name is not None and name in templates:
        found: dict[str, Any] = dict(templates[name])
        return found
    if "template_code" in config:
        return {"code": config["template_code"], "params": config.get("template_params") or {}}
    return None


_MOBILE = re.compile(r"^\+?(86)?1\d{10}$")


def normalise_mobile(value: str) -> str | None:
    """A mainland mobile number as 11 digits (``+86``/``86`` stripped), or None."""
    compact = value.replace(" ", "").replace("-", "")
    if not _MOBILE.match(compact):
        return None
    return compact[-11:]


def phone_digest(mobile: str) -> str:
    """A short stable digest of a phone number, used in provider message ids so receipts keyed
    by (batch id, phone) find their message without storing the number in clear."""
    return hashlib.sha256(mobile[-11:].encode()).hexdigest()[:16]


def first_identity(identities: Mapping[str, Sequence[str]], *keys: str) -> str | None:
    for key in keys:
        values = identities.get(key) or []
        for value in values:
            if value:
                return value
    return None
