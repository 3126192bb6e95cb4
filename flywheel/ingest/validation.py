"""The Sensors Analytics record rules: one decoded JSON record → one :class:`IngestRecord`.

The rules are the official SDKs' (``sensorsanalytics/sdk.py``): names match
:data:`NAME_PATTERN` (a letter, ``_`` or ``$`` then up to 99 of letters, digits, ``_``, ``$``;
not a reserved name), ids at most 255 characters, string values at most 8192 characters, list
items strings, values NUMBER / STRING / BOOL / DATETIME / DATE (sent as strings) / LIST,
``time`` in epoch seconds or milliseconds. ``$time`` / ``$project`` / ``$token`` are lifted out
of the properties. A record that breaks a rule raises :class:`RecordRejected` with the reason;
nothing else escapes (the decoders are fuzzed for it).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from flywheel.core.clock import from_epoch_ms
from flywheel.core.errors import InvalidInput
from flywheel.ingest.records import EVENT_TYPES, ITEM_TYPES, RECORD_TYPES, IngestRecord

NAME_PATTERN = re.compile(
    r"^((?!^distinct_id$|^original_id$|^time$|^properties$|^id$|^first_id$|^second_id$"
    r"|^users$|^events$|^event$|^event_id$|^device_id$|^user_id$|^date$|^datetime$"
    r"|^user_group|^user_tag)[a-zA-Z_$][a-zA-Z\d_$]{0,99})$",
    re.IGNORECASE,
)
#: Project names: like a variable name (what the SDK checks), lower-case in Flywheel.
PROJECT_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_ID_CHARS = 255
MAX_STRING_CHARS = 8192
MAX_LIST_ITEMS = 1000
#: 2**63: integers beyond a signed 64-bit do not fit a NUMBER column exactly.
MAX_ABS_INT = 9_223_372_036_854_775_807
#: Epoch milliseconds accepted: 2001-09-09 … 2286-11-20 (10 and 13 digit timestamps).
MIN_TIME_MS = 1_000_000_000_000
MAX_TIME_MS = 9_999_999_999_999
LIFTED = ("$time", "$project", "$token")
_EVENT_ID_NAMESPACE = uuid.UUID("6f1c3f0e-58a4-4c43-9c55-3f2f6e1f7a10")


class RecordRejected(InvalidInput):
    """One record breaks a rule; it is refused alone, with this reason kept."""

    code = "invalid_record"


@dataclass(slots=True)
class ValidatedRecord:
    """A record that passed the rules, with what the transport needs besides the record."""

    record: IngestRecord
    #: The ingest key the record carried (``token`` / ``$token``), if any.
    token: str | None


@lru_cache(maxsize=8192)
def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a valid event, property or item-type name (not reserved)."""
    return NAME_PATTERN.match(name) is not None


def check_name(name: object, what: str) -> str:
    """``name`` as a valid name, else :class:`RecordRejected` saying which ``what``."""
    if not isinstance(name, str) or not name:
        raise RecordRejected(f"{what} must be a non-empty string")
    if len(name) > 100:
        raise RecordRejected(f"{what} {name[:40]!r}… is longer than 100 characters")
    if not is_valid_name(name):
        raise RecordRejected(
            f"{what} {name!r} is not a valid name (a letter, _ or $ then letters, digits, _ or $;"
            " reserved names are refused)"
        )
    return name


def check_id(value: object, what: str, *, required: bool = True) -> str | None:
    """An id (distinct_id, original_id, item_id …): a non-empty string or number, ≤ 255."""
    if value is None or value == "":
        if required:
            raise RecordRejected(f"{what} must not be empty")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordRejected(f"{what} must be a string, not {_kind(value)}")
    text = value if isinstance(value, str) else _number_text(value)
    if len(text) > MAX_ID_CHARS:
        raise RecordRejected(f"{what} is longer than {MAX_ID_CHARS} characters")
    if not text.strip():
        raise RecordRejected(f"{what} must not be blank")
    return text


def require_id(value: object, what: str) -> str:
    """Like :func:`check_id` for a required id."""
    text = check_id(value, what)
    if text is None:  # pragma: no cover - check_id raises for a missing required id
        raise RecordRejected(f"{what} must not be empty")
    return text


def check_value(key: str, value: Any) -> Any:
    """A property value of a Sensors type, else :class:`RecordRejected`."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_STRING_CHARS:
            raise RecordRejected(
                f"property {key!r}: string longer than {MAX_STRING_CHARS} characters"
            )
        return value
    if kind is bool or value is None:
        return value
    if kind is int:
        if abs(value) > MAX_ABS_INT:
            raise RecordRejected(f"property {key!r}: number out of range")
        return value
    if kind is float:
        if not math.isfinite(value):
            raise RecordRejected(f"property {key!r}: number must be finite")
        return value
    if kind is list:
        if len(value) > MAX_LIST_ITEMS:
            raise RecordRejected(f"property {key!r}: list longer than {MAX_LIST_ITEMS} items")
        for item in value:
            if type(item) is not str:
                raise RecordRejected(
                    f"property {key!r}: list items must be strings, not {_kind(item)}"
                )
            if len(item) > MAX_STRING_CHARS:
                raise RecordRejected(
                    f"property {key!r}: list item longer than {MAX_STRING_CHARS} characters"
                )
        return value
    raise RecordRejected(
        f"property {key!r}: value must be a number, string, bool, date/datetime string or "
        f"list of strings, not {_kind(value)}"
    )


def check_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Names and values of a property map (already a dict with the lifted keys removed)."""
    checked: dict[str, Any] = {}
    for key, value in properties.items():
        if len(key) > 100 or not is_valid_name(key):
            check_name(key, "property name")
        checked[key] = check_value(key, value)
    return checked


def parse_time(value: object, what: str = "time") -> datetime:
    """Epoch seconds (10 digits) or milliseconds (13 digits) → aware UTC."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordRejected(f"{what} must be epoch seconds or milliseconds, not {_kind(value)}")
    if isinstance(value, str):
        try:
            number = float(value) if value.strip() else math.nan
        except ValueError:
            raise RecordRejected(f"{what} must be epoch seconds or milliseconds") from None
    else:
        number = float(value)
    if not math.isfinite(number):
        raise RecordRejected(f"{what} must be epoch seconds or milliseconds")
    ms = int(number)
    if 1_000_000_000 <= ms <= 9_999_999_999:
        ms *= 1000
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise RecordRejected(
            f"{what} {value!r} must be epoch seconds (10 digits) or milliseconds (13 digits)"
        )
    return from_epoch_ms(ms)


def check_identities(value: object) -> dict[str, str]:
    """IDM 3.0 identities: identity key → value, keys valid names, values ids."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordRejected(f"identities must be an object, not {_kind(value)}")
    identities: dict[str, str] = {}
    for key, item in value.items():
        check_name(key, "identity key")
        if not isinstance(item, str):
            raise RecordRejected(f"identity {key!r}: value must be a string, not {_kind(item)}")
        identities[key] = cast(str, check_id(item, f"identity {key!r}"))
    return identities


def validate_record(raw: object, *, project: str, now: datetime) -> ValidatedRecord:
    """Check one decoded Sensors record and build its :class:`IngestRecord`.

    ``project`` is the request's project (``?project=``), used when the record names none.
    ``now`` is used when the record carries no ``time``. Raises :class:`RecordRejected`.
    """
    if not isinstance(raw, dict):
        raise RecordRejected(f"a record must be a JSON object, not {_kind(raw)}")
    record_type = raw.get("type")
    if not isinstance(record_type, str) or record_type not in RECORD_TYPES:
        raise RecordRejected(
            f"type {record_type!r} is not one of {', '.join(sorted(RECORD_TYPES))}"
        )
    given = raw.get("properties")
    if given is None:
        properties: dict[str, Any] = {}
    elif isinstance(given, dict):
        properties = dict(given)
    else:
        raise RecordRejected(f"properties must be an object, not {_kind(given)}")

    lifted_time = properties.pop("$time", None)
    lifted_project = properties.pop("$project", None)
    lifted_token = properties.pop("$token", None)
    is_login_id = properties.pop("$is_login_id", None) is True

    record_project = raw.get("project") or lifted_project
    if record_project is not None and record_project != "":
        if not isinstance(record_project, str) or not PROJECT_PATTERN.match(record_project):
            raise RecordRejected(f"project {record_project!r} is not a valid project name")
        project_name = record_project
    else:
        project_name = project
    token = raw.get("token") or lifted_token
    if token is not None and not isinstance(token, str):
        raise RecordRejected(f"token must be a string, not {_kind(token)}")

    time_value = lifted_time if lifted_time is not None else raw.get("time")
    moment = now if time_value is None else parse_time(time_value)

    properties = check_properties(properties)
    lib = raw.get("lib")
    if lib is None:
        lib = {}
    elif not isinstance(lib, dict):
        raise RecordRejected(f"lib must be an object, not {_kind(lib)}")

    identities = check_identities(raw.get("identities"))
    login_id = check_id(raw.get("login_id"), "login_id", required=False)
    anonymous_id = check_id(raw.get("anonymous_id"), "anonymous_id", required=False)
    distinct_id = check_id(raw.get("distinct_id"), "distinct_id", required=False)
    if distinct_id is None and identities:
        distinct_id = _distinct_id_of(identities)
    if login_id is None:
        if "$identity_login_id" in identities:
            login_id = identities["$identity_login_id"]
        elif is_login_id and distinct_id is not None:
            login_id = distinct_id

    event: str | None = None
    original_id: str | None = None
    item_type: str | None = None
    item_id: str | None = None
    if record_type in ITEM_TYPES:
        item_type = check_name(raw.get("item_type"), "item_type")
        item_id = require_id(raw.get("item_id"), "item_id")
    else:
        if distinct_id is None:
            raise RecordRejected("distinct_id (or identities) must not be empty")
        if record_type in EVENT_TYPES:
            event = check_name(raw.get("event"), "event name")
            if record_type == "track_signup":
                original_id = require_id(raw.get("original_id"), "original_id")
            elif record_type == "track_id_bind" and len(identities) < 2:
                raise RecordRejected("track_id_bind needs at least two identities")
            elif record_type == "track_id_unbind" and len(identities) != 1:
                raise RecordRejected("track_id_unbind needs exactly one identity")
        elif record_type == "profile_increment":
            for key, value in properties.items():
                if type(value) not in (int, float):
                    raise RecordRejected(
                        f"profile_increment: property {key!r} must be a number, not {_kind(value)}"
                    )
        elif record_type == "profile_append":
            for key, value in properties.items():
                if type(value) is not list:
                    raise RecordRejected(
                        f"profile_append: property {key!r} must be a list of strings, "
                        f"not {_kind(value)}"
                    )

    event_id = _event_id(raw.get("_track_id"), project_name, distinct_id or item_id, moment)
    record = IngestRecord(
        type=record_type,  # type: ignore[arg-type]  # checked against RECORD_TYPES above
        time=moment,
        event_id=event_id,
        project=project_name,
        event=event,
        distinct_id=distinct_id,
        original_id=original_id,
        anonymous_id=anonymous_id,
        login_id=login_id,
        identities=identities,
        properties=properties,
        item_type=item_type,
        item_id=item_id,
        lib=lib,
    )
    return ValidatedRecord(record=record, token=token or None)


def _distinct_id_of(identities: dict[str, str]) -> str:
    """The SDK's rule: the login id when present, else ``key+value`` of the first identity."""
    login = identities.get("$identity_login_id")
    if login is not None:
        return login
    key, value = next(iter(identities.items()))
    return f"{key}+{value}"[:MAX_ID_CHARS]


def _event_id(track_id: object, project: str, who: str | None, moment: datetime) -> str:
    """Stable for a retried record (same ``_track_id``), random otherwise."""
    if track_id is None or isinstance(track_id, bool) or not isinstance(track_id, int | str):
        return uuid.uuid4().hex
    name = f"{project}\x1f{who or ''}\x1f{track_id}\x1f{int(moment.timestamp() * 1000)}"
    return uuid.uuid5(_EVENT_ID_NAMESPACE, name).hex


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    return str(value)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a bool",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)
