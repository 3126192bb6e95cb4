from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    display_name: str
    require_token: bool


class ProjectIn(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    display_name: str = Field(default="", max_length=200)
    require_token: bool = False
