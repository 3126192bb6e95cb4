"""Pydantic shapes of the ingest API: answers of the collection endpoints, keys, rejections."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class IngestAnswer(BaseModel):
    """What a collection endpoint answers: how many records were accepted and rejected."""

    accepted: int
    rejected: int
    #: Reasons of the rejected records, in order (at most the first 100).
    errors: list[str] = Field(default_factory=list)


class RejectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int | None
    source: str
    reason: str
    raw: str
    rejected_at: datetime


class IngestKeyIn(BaseModel):
    project: str = Field(default="default", min_length=1, max_length=64)
    label: str = Field(default="", max_length=200)


class IngestKeyOut(BaseModel):
    """An ingest key as listed: never its hash nor the clear key."""

    id: int
    project_id: int
    project: str
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


class IngestKeyCreated(IngestKeyOut):
    """The answer to creating a key: the only time the clear key is shown."""

    key: str
