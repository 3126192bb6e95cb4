"""HTTP routes under /api/v1/advisor (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/advisor", tags=["advisor"])
