"""The normalised record: what every ingest path (Sensors, Segment, bulk files, the demo)
produces and what the processor consumes from the inbox.

Semantics are Sensors Analytics': ``type`` is one of :data:`RECORD_TYPES`; ``time`` is aware
UTC; ``properties`` have already passed the SDK validation rules (names, reserved names,
lengths, value types), with ``$time``/``$project``/``$token`` lifted out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

import orjson

from flywheel.core.clock import from_epoch_ms, to_epoch_ms

RecordType = Literal[
    "track",
    "track_signup",
    "track_id_bind",
    "track_id_unbind",
    "profile_set",
    "profile_set_once",
    "profile_increment",
    "profile_append",
    "profile_unset",
    "profile_delete",
    "item_set",
    "item_delete",
]

RECORD_TYPES: frozenset[str] = frozenset(RecordType.__args__)  # type: ignore[attr-defined]
EVENT_TYPES = frozenset({"track", "track_signup", "track_id_bind", "track_id_unbind"})
PROFILE_TYPES = frozenset(t for t in RECORD_TYPES if t.startswith("profile_"))
ITEM_TYPES = frozenset({"item_set", "item_delete"})


@dataclass(slots=True)
class IngestRecord:
    """One validated record.

    * events: ``event`` set; profiles: ``event`` None; items: ``item_type``/``item_id`` set.
    * ``distinct_id``: the id the SDK sent; ``anonymous_id`` / ``login_id`` as given (IDM 2/3);
      ``original_id`` for ``track_signup`` (the anonymous id being merged).
    * ``identities``: IDM 3.0 identity key → value (e.g. ``{"$identity_login_id": "u1"}``).
    * ``event_id``: unique per record (``_track_id``-derived when the SDK sent one), used to
      de-duplicate retried batches.
    """

    type: RecordType
    time: datetime
    event_id: str
    project: str = "default"
    event: str | None = None
    distinct_id: str | None = None
    original_id: str | None = None
    anonymous_id: str | None = None
    login_id: str | None = None
    identities: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    item_type: str | None = None
    item_id: str | None = None
    lib: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """Compact JSON for the inbox (``time`` as epoch ms)."""
        # A shallow dict (not ``dataclasses.asdict``, which deep-copies every property map):
        # same JSON, a fraction of the cost on the ingest hot path.
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["time"] = to_epoch_ms(self.time)
        return orjson.dumps(data, option=orjson.OPT_PASSTHROUGH_DATETIME, default=_default)

    @classmethod
    def from_json(cls, raw: bytes | str) -> IngestRecord:
        data = orjson.loads(raw)
        data["time"] = from_epoch_ms(int(data["time"]))
        return cls(**data)


_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(IngestRecord))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
