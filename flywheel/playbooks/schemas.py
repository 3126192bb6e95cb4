"""Playbook API shapes: the gallery, previews and what an apply created."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flywheel.content.schemas import ContentIn, FindingOut
from flywheel.journeys.schemas import Problem
from flywheel.segments.schemas import SegmentIn
from flywheel.tags.schemas import TagIn


class PlaybookSummary(BaseModel):
    """One card of the gallery."""

    name: str
    title_zh: str
    title_en: str
    description: str
    #: What an apply creates, e.g. ``{"tags": 1, "segments": 1, "content": 2, "journeys": 1}``.
    creates: dict[str, int]


class PlaybookOut(PlaybookSummary):
    #: JSON schema of the parameters (defaults included): the console renders its form from it.
    parameters: dict[str, Any]


class ParamsIn(BaseModel):
    """Parameters of a preview or apply; omitted ones take their defaults."""

    model_config = ConfigDict(extra="forbid")
    parameters: dict[str, Any] = Field(default_factory=dict)


class ContentPreview(BaseModel):
    key: str
    content: ContentIn
    #: Findings of the claims checker on this text (empty for every built-in playbook).
    findings: list[FindingOut]


class SegmentPreview(BaseModel):
    segment: SegmentIn
    #: Customers the rule selects now (``None`` when it cannot be counted yet, e.g. it reads
    #: a tag the playbook creates and that has not run).
    estimated_size: int | None
    warnings: list[str] = Field(default_factory=list)


class PreviewOut(BaseModel):
    """What an apply with these parameters would create (names already suffixed)."""

    playbook: str
    parameters: dict[str, Any]
    #: 1 when the names are free; n ≥ 2 when an earlier apply took them (names end in n).
    suffix: int
    tags: list[TagIn]
    segment: SegmentPreview
    content: list[ContentPreview]
    #: The journey definition; references to what the apply creates are written
    #: ``"@segment"`` and ``"@content:<key>"`` until then.
    journey: dict[str, Any]
    problems: list[Problem]


class AppliedOut(BaseModel):
    """Everything an apply created, all in draft: content is to be submitted and approved by
    people, the journey to be reviewed and published by people."""

    playbook: str
    parameters: dict[str, Any]
    suffix: int
    tag_ids: list[int]
    segment_id: int
    content_ids: dict[str, int]
    journey_id: int
    journey_status: str
