"""Segments in and out, previews, refresh results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["rule", "tags", "upload", "analysis"]
Mode = Literal["dynamic", "static"]
Schedule = Literal["daily", "hourly", "manual"]


class SegmentIn(BaseModel):
    """A segment to create.

    * ``source`` ``rule`` / ``tags``: ``rule`` (the DSL; ``tags`` when built from tag rules);
      ``mode`` dynamic (recomputed on ``schedule``) or static (a snapshot taken now);
    * ``source`` ``analysis``: ``user_ids`` from an analysis result; always static;
    * file uploads go through ``POST /api/v1/segments/upload``.
    """

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    source: Source = "rule"
    mode: Mode = "dynamic"
    rule: dict[str, Any] | None = None
    user_ids: list[Annotated[int, Field(ge=0, le=2**63 - 1)]] | None = Field(
        default=None, max_length=1_000_000
    )
    schedule: Schedule = "daily"


class SegmentUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    rule: dict[str, Any] | None = None
    schedule: Schedule | None = None


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    source: str
    mode: str
    rule: dict[str, Any] | None
    schedule: str
    size: int | None
    refreshed_at: datetime | None
    created_by: str
    created_at: datetime


class PreviewIn(BaseModel):
    """A rule being edited; ``sample`` user ids come back with the count."""

    rule: dict[str, Any]
    sample: int = Field(default=10, ge=0, le=100)


class PreviewOut(BaseModel):
    count: int
    sample_user_ids: list[int]
    warnings: list[str] = Field(default_factory=list)
    elapsed_ms: float


class RefreshOut(BaseModel):
    segment_id: int
    size: int
    entered: int
    left: int
    seconds: float


class CountOut(BaseModel):
    segment_id: int
    count: int


class MembersOut(BaseModel):
    total: int
    offset: int
    user_ids: list[int]


class SegmentRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    size: int
    entered: int
    left: int
    seconds: float
