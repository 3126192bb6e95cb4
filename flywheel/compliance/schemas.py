"""Compliance values: settings, consents, opt-outs, list entries, and the gate's decisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CHANNEL_PATTERN = r"^(\*|[a-z][a-z0-9_]{0,31})$"
TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
Purpose = Literal["marketing", "service", "*"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cap(_Strict):
    """At most ``max`` marketing messages per customer in a rolling window of ``days``."""

    max: int = Field(ge=0, le=1000)
    days: int = Field(ge=1, le=90)


class QuietHours(_Strict):
    """No marketing message is sent between ``start`` and ``end`` (local time of ``timezone``);
    messages due then are deferred to ``end``. ``start`` later than ``end`` spans midnight."""

    enabled: bool = True
    start: str = Field(default="21:00", pattern=TIME_PATTERN)
    end: str = Field(default="08:00", pattern=TIME_PATTERN)
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def _default_channel_caps() -> dict[str, Cap]:
    return {
        "sms": Cap(max=2, days=7),
        "email": Cap(max=3, days=7),
        "wechat": Cap(max=4, days=7),
        "wecom": Cap(max=4, days=7),
        "push": Cap(max=5, days=7),
    }


class ComplianceSettingsIn(_Strict):
    """A project's compliance settings (PUT replaces them all; GET shows the effective ones)."""

    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    #: Per-channel caps on marketing messages per customer (channels not listed: no cap).
    channel_caps: dict[str, Cap] = Field(default_factory=_default_channel_caps)
    #: Cap across every customer-facing channel (None: none).
    global_cap: Cap | None = Field(default_factory=lambda: Cap(max=6, days=7))
    #: Channels on which marketing needs a recorded consent (opt-in) of the customer.
    consent_required: list[str] = Field(default_factory=lambda: ["sms", "email"])
    #: Only whitelisted customers receive anything (pilot / grey release).
    whitelist_only: bool = False
    #: Four-eyes publishing: a journey goes live only when a second person (neither its author
    #: nor whoever asked) with ``journeys:approve`` approves the publication request.
    journey_publish_review: bool = False

    @field_validator("channel_caps")
    @classmethod
    def _channel_names(cls, value: dict[str, Cap]) -> dict[str, Cap]:
        import re

        for name in value:
            if not re.match(CHANNEL_PATTERN, name) or name == "*":
                raise ValueError(f"invalid channel name {name!r}")
        return value


class ComplianceSettingsOut(ComplianceSettingsIn):
    updated_by: str = ""
    updated_at: datetime | None = None


class ConsentIn(_Strict):
    channel: str = Field(pattern=CHANNEL_PATTERN)
    purpose: Purpose = "marketing"
    granted: bool = True
    source: str = Field(default="console", min_length=1, max_length=64)
    #: When the customer gave it (default now).
    at: datetime | None = None


class ConsentOut(BaseModel):
    user_id: int
    channel: str
    purpose: str
    granted: bool
    source: str
    at: datetime
    recorded_by: str


class OptOutIn(_Strict):
    channel: str = Field(default="*", pattern=CHANNEL_PATTERN)
    purpose: Purpose = "marketing"
    source: str = Field(default="console", min_length=1, max_length=64)
    at: datetime | None = None


class OptOutOut(BaseModel):
    user_id: int
    channel: str
    purpose: str
    source: str
    at: datetime
    recorded_by: str


class CustomerCompliance(BaseModel):
    """Everything the gate knows about one customer."""

    user_id: int
    consents: list[ConsentOut]
    opt_outs: list[OptOutOut]


class ListEntryIn(_Strict):
    kind: Literal["black", "white"]
    #: ``user_id`` or an identity key such as ``$identity_mobile``.
    key: str = Field(default="user_id", min_length=1, max_length=64)
    value: str = Field(min_length=1, max_length=256)
    channel: str = Field(default="*", pattern=CHANNEL_PATTERN)
    note: str = Field(default="", max_length=256)


class ListEntryOut(BaseModel):
    id: int
    kind: str
    key: str
    value: str
    channel: str
    note: str
    created_by: str
    created_at: datetime


class Reason(StrEnum):
    """Stable codes of what the gate (and the dispatcher) decided against a message."""

    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"
    BLACKLISTED = "blacklisted"
    NOT_WHITELISTED = "not_whitelisted"
    QUIET_HOURS = "quiet_hours"
    FREQUENCY_CAP = "frequency_cap"
    UNSUITABLE_PRODUCT = "unsuitable_product"
    ASSESSMENT_EXPIRED = "assessment_expired"
    NO_ASSESSMENT = "no_assessment"
    CONTENT_NOT_APPROVED = "content_not_approved"
    PROHIBITED_CLAIMS = "prohibited_claims"
    NO_ADDRESS = "no_address"


class Verdict(StrEnum):
    ALLOW = "allow"
    DEFER = "defer"
    BLOCK = "block"


@dataclass(frozen=True)
class Decision:
    """The gate's answer for one candidate: allow, defer until ``until`` (UTC), or block."""

    verdict: Verdict
    reason: Reason | None = None
    until: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


ALLOW = Decision(Verdict.ALLOW)


@dataclass
class Candidate:
    """One message about to be sent, as the gate sees it.

    ``customer_facing`` False (advisor tasks) skips quiet hours, caps and consent; opt-outs,
    lists and suitability still apply.
    ``ref`` identifies the candidate to the caller (the outbox message id): contacts with that
    id are not counted against the caps (the message itself is already in ``sending``).
    """

    ref: int
    user_id: int
    channel: str
    purpose: str = "marketing"
    priority: int = 0
    customer_facing: bool = True
    #: Risk level of the product the message promotes: 1–5 (or ``"R3"``), None when none.
    product_risk_level: int | str | None = None
    #: Recommended items the message carries (each with ``item_type`` and ``risk_level``).
    recommendations: list[Mapping[str, Any]] = field(default_factory=list)
    #: The channel's family (``wechat`` for ``wechat_template``…): rules naming the family
    #: apply as rules naming the channel do. None: the channel is its own family.
    family: str | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        """The names a rule may use for this candidate's channel (besides ``*``)."""
        return (self.channel, self.family) if self.family else (self.channel,)


@dataclass(frozen=True)
class Contact:
    """A message that counts against frequency caps (sent or being sent) to a customer."""

    ref: int
    user_id: int
    channel: str
    purpose: str
    at: datetime
    family: str | None = None
