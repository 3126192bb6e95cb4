"""Profile, item, schema and customer-lookup API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class PropertyOut(BaseModel):
    name: str
    type: str


class EventSchemaOut(BaseModel):
    name: str
    properties: list[PropertyOut]


class SchemaOut(BaseModel):
    """Event names with their properties, and profile / item properties, with Sensors types."""

    events: list[EventSchemaOut]
    event_properties: list[PropertyOut]
    profile_properties: list[PropertyOut]
    item_properties: list[PropertyOut]


class CustomerOut(BaseModel):
    """One customer as a console or advisor sees them (PII masked unless revealed)."""

    user_id: int
    identities: dict[str, list[str]]
    properties: dict[str, Any]
    tags: dict[str, Any]


class CustomerEventOut(BaseModel):
    id: str
    event: str
    time: datetime
    distinct_id: str | None
    receive_time: datetime | None
    properties: dict[str, Any]


class CustomerEventsOut(BaseModel):
    user_id: int
    events: list[CustomerEventOut]


class ItemOut(BaseModel):
    item_type: str
    item_id: str
    properties: dict[str, Any]
