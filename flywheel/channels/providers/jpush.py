"""App push through JPush v3 (极光推送) with the official ``jpush`` SDK.

Account: ``{"app_key", "master_secret", "base_url"?, "apns_production"?}`` — ``base_url``
replaces the JPush zone (a private deployment, or a local server in tests).

Recipients, by the spec's ``audience`` (default ``registration_id``):

* ``registration_id`` — the customer's ``$identity_jpush_registration_id`` (or profile
  ``jpush_registration_id``);
* ``alias`` — the customer's login id (``$identity_login_id``), the usual alias of the app;
* ``tag`` — the spec's ``tag`` (one push to every device with that tag).

Each message is one push carrying ``cid`` = ``<app_key>-<uuid5 of the idempotency key>``, JPush's
own guard against a retried call pushing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import jpush
from jpush import common as jpush_common

from flywheel.channels.base import Channel, ChannelContext, Outcome, Outgoing, register
from flywheel.channels.providers.common import (
    failed,
    first_identity,
    not_configured,
    retry,
    sent,
)

AUDIENCES = ("registration_id", "alias", "tag")


def zone_for(base_url: str | None) -> str:
    """The SDK zone name for ``base_url`` (registered on first use), or the default zone."""
    if not base_url:
        return "default"
    base = base_url.rstrip("/")
    name = "FW" + hashlib.sha256(base.encode()).hexdigest()[:10].upper()
    jpush_common.ZONES.setdefault(
        name,
        {
            "PUSH": f"{base}/v3/",
            "REPORT": f"{base}/v3/report/",
            "DEVICE": f"{base}/v3/devices/",
            "ALIAS": f"{base}/v3/aliases/",
            "TAG": f"{base}/v3/tags/",
            "SCHEDULE": f"{base}/v3/schedules/",
            "ADMIN": f"{base}/v1/",
        },
    )
    return name


def cid_for(app_key: str, idempotency_key: str) -> str:
    return f"{app_key}-{uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key)}"


def failure_outcome(exc: Exception) -> Outcome:
    """Classify what the SDK raised."""
    if isinstance(exc, jpush_common.Unauthorized):
        return failed("auth_failed", "401")
    if isinstance(exc, jpush_common.JPushFailure):
        status = exc.response.status_code if exc.response is not None else 0
        code = exc.error_code
        detail = f"{status} {code}: {str(exc.details)[:160]}"
        if status == 429 or code in (2002, 2008):
            return retry("throttled", detail)
        if code in (2003, 2005):  # app quota / daily push limit
            return retry("quota_exceeded", detail, 3600.0)
        if status >= 500:
            return retry(f"http_{status}", detail)
        if code == 1011:  # no device matches the audience
            return failed("invalid_recipient", detail)
        if code is None and 200 <= status < 300:
            return retry("malformed_response", detail)
        return failed(f"http_{status}", detail)
    if isinstance(exc, jpush_common.APIConnectionException):
        return retry("timeout", "connect timeout")
    if isinstance(exc, ValueError):
        return retry("malformed_response", type(exc).__name__)
    return retry("connection_error", type(exc).__name__)


@register("app_push")
class JPushChannel(Channel):
    """Notifications to the brokerage's app through JPush."""

    family = "push"

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        account = context.account
        self.client: jpush.JPush | None = None
        if account.get("app_key") and account.get("master_secret"):
            self.client = jpush.JPush(
                str(account["app_key"]),
                str(account["master_secret"]),
                timeout=float(account.get("timeout_seconds") or 5.0),
                zone=zone_for(account.get("base_url")),
            )
        self.limit = asyncio.Semaphore(int(account.get("concurrency") or 16))

    def address(
        self,
        *,
        profile: Mapping[str, Any],
        identities: Mapping[str, Sequence[str]],
        config: Mapping[str, Any],
    ) -> str | None:
        audience = str(config.get("audience") or "registration_id")
        if audience == "tag":
            return f"tag:{config['tag']}" if config.get("tag") else None
        if audience == "alias":
            login = first_identity(identities, "$identity_login_id")
            return f"alias:{login}" if login else None
        found = first_identity(identities, "$identity_jpush_registration_id")
        if found is None and profile.get("jpush_registration_id"):
            found = str(profile["jpush_registration_id"])
        return f"registration_id:{found}" if found else None

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        if self.client is None:
            return not_configured(messages, "jpush (app_key, master_secret)")

        async def one(message: Outgoing) -> Outcome:
            async with self.limit:
                return await asyncio.to_thread(self._push, message)

        return list(await asyncio.gather(*(one(m) for m in messages)))

    def _push(self, message: Outgoing) -> Outcome:
        assert self.client is not None
        kind, _, target = message.address.partition(":")
        if kind not in AUDIENCES or not target:
            return failed("invalid_recipient", "address is not <audience>:<value>")
        push = self.client.create_push()
        push.audience = {kind: [target]}
        push.platform = jpush.all_
        extras: dict[str, Any] = {"message_id": message.message_id}
        if message.link:
            extras["url"] = message.link
        title = message.title or message.subject
        android: dict[str, Any] = {"alert": message.body, "extras": extras}
        ios: dict[str, Any] = {"alert": message.body, "extras": extras, "sound": "default"}
        if title:
            android["title"] = title
            ios["alert"] = {"title": title, "body": message.body}
        push.notification = {"alert": message.body, "android": android, "ios": ios}
        push.options = {
            "apns_production": bool(self.context.account.get("apns_production", False)),
            "time_to_live": int(message.config.get("time_to_live") or 86400),
        }
        push.cid = cid_for(str(self.context.account["app_key"]), message.idempotency_key)
        try:
            response = push.send()
        except Exception as exc:
            return failure_outcome(exc)
        payload = response.payload if isinstance(response.payload, dict) else {}
        msg_id = payload.get("msg_id")
        if msg_id is None:
            return retry("malformed_response", "no msg_id")
        return sent(str(msg_id))
