"""HTTP routes under /api/v1/analytics/journeys (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/analytics/journeys", tags=["analytics"])
