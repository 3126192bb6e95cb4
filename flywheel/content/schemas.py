"""Content API inputs and outputs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["text", "image", "link", "landing_page", "product_card", "template"]
Channel = Literal["sms", "wechat", "push", "email", "in_app"]
PhraseRule = Literal["prohibited_claim", "risk_warning", "promotion_trigger", "suitability_note"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckIn(_Strict):
    text: str = Field(max_length=200_000)
    product_card: bool = False
    risk_level: str | None = Field(default=None, max_length=8)


class FindingOut(BaseModel):
    phrase: str
    start: int
    end: int
    rule: str


class CheckOut(BaseModel):
    findings: list[FindingOut]


class PhraseIn(_Strict):
    phrase: str = Field(min_length=1, max_length=200)
    rule: PhraseRule = "prohibited_claim"
    note: str = Field(default="", max_length=2000)


class PhraseOut(BaseModel):
    id: int
    phrase: str
    rule: str
    note: str
    updated_by: str
    updated_at: datetime


class ContentIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Kind = "text"
    channel: Channel | None = None
    tags: list[str] = Field(default_factory=list, max_length=50)
    subject: str = Field(default="", max_length=1000)
    body: str = Field(default="", max_length=200_000)
    fields: dict[str, Any] = Field(default_factory=dict)
    fallbacks: dict[str, str] = Field(default_factory=dict)


class ContentEdit(_Strict):
    tags: list[str] | None = Field(default=None, max_length=50)
    subject: str | None = Field(default=None, max_length=1000)
    body: str | None = Field(default=None, max_length=200_000)
    fields: dict[str, Any] | None = None
    fallbacks: dict[str, str] | None = None


class VersionOut(BaseModel):
    id: int
    item_id: int
    number: int
    status: str
    subject: str
    body: str
    fields: dict[str, Any]
    fallbacks: dict[str, str]
    findings: list[FindingOut]
    author: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str


class ContentOut(BaseModel):
    id: int
    name: str
    kind: str
    channel: str | None
    tags: list[str]
    created_by: str
    approved_version_id: int | None
    latest: VersionOut
    usage: list[str] = Field(default_factory=list, description="Journeys using it (later).")


class DecisionIn(_Strict):
    comment: str = Field(default="", max_length=4000)


class ReviewEventOut(BaseModel):
    version_id: int
    action: str
    actor: str
    comment: str
    at: datetime


class PreviewIn(_Strict):
    user_id: int | None = Field(default=None, ge=1)
    reveal: bool = False
    draft: ContentEdit | None = Field(
        default=None,
        description="Unsaved editor fields (as PATCH would carry) rendered instead of the "
        "saved ones; never stored. Needs content:write.",
    )


class SmsOut(BaseModel):
    encoding: str
    length: int
    segments: int
    per_segment: int


class RenderedMessage(BaseModel):
    """A version rendered for one customer (what a channel sends)."""

    content_id: int
    version_id: int
    channel: str | None
    subject: str
    body: str
    html: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    sms: SmsOut | None = None
    draft: bool = Field(
        default=False, description="Rendered from unsaved fields on top of version_id."
    )


class ImportRejection(BaseModel):
    name: str
    error: str


class ImportReport(BaseModel):
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    rejected: list[ImportRejection] = Field(default_factory=list)


class ImportIn(_Strict):
    items: list[ContentIn] = Field(max_length=1000)


class ExportedContent(ContentIn):
    """An item as exported (the import format plus its state); importable as ``ContentIn``."""

    model_config = ConfigDict(extra="ignore")

    status: str = "draft"
    approved: VersionOut | None = None


class MediaOut(BaseModel):
    """A stored image: reference it from a version's ``fields`` (``{"image": name}``)."""

    name: str
    size: int
    url: str
