"""Audit answers and filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    project_id: int | None
    detail: dict[str, Any]
    hash: str


class AuditFilter(BaseModel):
    """Filters of ``GET /api/v1/audit``; every field optional, combined with AND."""

    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(default=None, max_length=128)
    action: str | None = Field(default=None, max_length=64)
    #: Prefix of the target, e.g. ``user:`` or ``journey:12``.
    target: str | None = Field(default=None, max_length=256)
    project_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Only entries with ``seq`` below this (paging backwards, newest first).
    before_seq: int | None = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    #: Pass as ``before_seq`` to get the next (older) page; null at the end.
    next_before_seq: int | None


class VerifyReport(BaseModel):
    """Outcome of walking the chain. ``ok`` false names the first bad row in ``bad_seq``."""

    ok: bool
    checked: int
    head_seq: int
    bad_seq: int | None = None
    problem: str | None = None
