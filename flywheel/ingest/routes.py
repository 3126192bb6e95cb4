"""Placeholder: collection endpoints (Sensors /sa, Segment /v1/*) and ingest admin API."""

from __future__ import annotations

from fastapi import APIRouter

collect_router = APIRouter(tags=["collect"])
api_router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])
