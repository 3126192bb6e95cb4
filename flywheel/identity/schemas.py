"""Identity API shapes: key rules, bind/unbind, conflicts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

KEY_PATTERN = r"^[A-Za-z_$][A-Za-z0-9_$]{0,99}$"

Overflow = Literal["refuse", "replace_oldest"]


class KeyRule(BaseModel):
    """How one identity key behaves (Sensors IDM 3.0): priority, one-or-many, limit, overflow."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    key: str = Field(pattern=KEY_PATTERN)
    #: Lower is stronger: an event belongs to the user of its strongest identity.
    priority: int = Field(ge=0, le=100_000)
    #: False: a user holds at most one value of this key (login id, 客户号, 资金账号 …).
    multi: bool = False
    value_limit: int = Field(default=1, ge=1, le=10_000)
    overflow: Overflow = "refuse"
    enabled: bool = True
    label: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _one_value_means_limit_one(self) -> KeyRule:
        if not self.multi and self.value_limit != 1:
            object.__setattr__(self, "value_limit", 1)
        return self


class KeyRulesIn(BaseModel):
    keys: list[KeyRule] = Field(min_length=1, max_length=200)


class KeyRulesOut(BaseModel):
    project: str
    keys: list[KeyRule]


class BindIn(BaseModel):
    """Identities to tie to one customer, e.g. ``{"$identity_login_id": "u1", "cust_no": "C1"}``."""

    identities: dict[str, str] = Field(min_length=1, max_length=50)


class UnbindIn(BaseModel):
    key: str = Field(pattern=KEY_PATTERN)
    value: str = Field(min_length=1, max_length=255)


class ConflictOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    value: str
    user_id: int
    other_user_id: int | None
    reason: str
    last_event_id: str | None
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime


class ConflictsOut(BaseModel):
    conflicts: list[ConflictOut]
    total: int


class BindOut(BaseModel):
    user_id: int
    bound: list[str]
    conflicts: list[str]


class UnbindOut(BaseModel):
    key: str
    user_id: int
    unbound: bool
