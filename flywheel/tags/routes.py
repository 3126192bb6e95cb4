"""Placeholder: tags routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])
