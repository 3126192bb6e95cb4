"""The Segment spec mapped onto Sensors semantics: one message → one or two records.

* ``track`` → ``track`` of ``event``;
* ``identify`` → ``profile_set`` of the traits, plus a ``track_id_bind`` (``$BindID``) of
  ``{$identity_login_id: userId, $identity_anonymous_id: anonymousId}`` when both are given;
* ``alias`` → ``track_signup`` (``$SignUp``) merging ``previousId`` into ``userId``;
* ``page`` → ``$pageview`` (``name``, ``category``, ``url``→``$url`` …);
* ``screen`` → ``$AppViewScreen`` (``name`` → ``$screen_name``);
* ``group`` → ``profile_set`` of ``group_id`` and the group traits (as ``group_<trait>``).

``messageId`` becomes the ``event_id``; ``timestamp`` (else ``originalTimestamp`` corrected by
the client clock skew seen through ``sentAt``, else the receive time) the ``time``;
``context.library`` the ``lib``. Segment names may hold spaces and nested objects, Sensors
names may not: event and property names are normalised (``Order Completed`` →
``Order_Completed``), nested objects flattened (``address.city`` → ``address_city``) and
lists of non-strings kept as lists of JSON strings; then the Sensors rules apply.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from flywheel.core.errors import InvalidInput
from flywheel.ingest.records import IngestRecord, RecordType
from flywheel.ingest.validation import (
    MAX_ID_CHARS,
    RecordRejected,
    check_id,
    check_name,
    check_properties,
    is_valid_name,
    require_id,
)

MESSAGE_TYPES = frozenset({"track", "identify", "alias", "page", "screen", "group"})
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_$]")
_MAX_DEPTH = 4


def decode_body(body: bytes, *, kind: str) -> tuple[list[Any], dict[str, Any]]:
    """The messages of a request body (``/v1/batch``: its ``batch`` array) and the batch-level
    ``context``; :class:`InvalidInput` when the body is not what the endpoint expects."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidInput("request body must be a JSON object")
    if kind != "batch":
        return [parsed], {}
    batch = parsed.get("batch")
    if not isinstance(batch, list):
        raise InvalidInput("/v1/batch needs a 'batch' array of messages")
    context = parsed.get("context")
    return batch, context if isinstance(context, dict) else {}


def map_message(
    message: object,
    *,
    kind: str | None,
    project: str,
    now: datetime,
    context: Mapping[str, Any] | None = None,
) -> list[IngestRecord]:
    """Map one Segment message to records; :class:`RecordRejected` with the reason otherwise.

    ``kind`` is the endpoint's type (``/v1/track`` …) or None for ``/v1/batch`` (the message's
    own ``type``). ``context`` is the batch-level context merged under the message's.
    """
    if not isinstance(message, dict):
        raise RecordRejected("a message must be a JSON object")
    message_type = message.get("type", kind) if kind is None else kind
    if not isinstance(message_type, str) or message_type not in MESSAGE_TYPES:
        raise RecordRejected(
            f"message type {message_type!r} is not one of {', '.join(sorted(MESSAGE_TYPES))}"
        )
    merged_context: dict[str, Any] = dict(context or {})
    own_context = message.get("context")
    if own_context is not None:
        if not isinstance(own_context, dict):
            raise RecordRejected("context must be an object")
        merged_context.update(own_context)

    user_id = check_id(message.get("userId"), "userId", required=False)
    anonymous_id = check_id(message.get("anonymousId"), "anonymousId", required=False)
    moment = _message_time(message, now)
    message_id = check_id(message.get("messageId"), "messageId", required=False)
    lib = _lib(merged_context)
    common = _context_properties(merged_context)

    if message_type == "alias":
        previous_id = require_id(message.get("previousId"), "previousId")
        user_id = require_id(message.get("userId"), "userId")
        return [
            IngestRecord(
                type="track_signup",
                time=moment,
                event_id=message_id or _random_id(),
                project=project,
                event="$SignUp",
                distinct_id=user_id,
                original_id=previous_id,
                login_id=user_id,
                anonymous_id=previous_id,
                identities={
                    "$identity_login_id": user_id,
                    "$identity_anonymous_id": previous_id,
                },
                properties=check_properties(common),
                lib=lib,
            )
        ]

    distinct_id = user_id or anonymous_id
    if distinct_id is None:
        raise RecordRejected("userId or anonymousId is required")
    identities: dict[str, str] = {}
    if user_id is not None:
        identities["$identity_login_id"] = user_id
    if anonymous_id is not None:
        identities["$identity_anonymous_id"] = anonymous_id

    def record(
        record_type: RecordType,
        properties: dict[str, Any],
        *,
        event: str | None = None,
        event_id: str | None = None,
    ) -> IngestRecord:
        return IngestRecord(
            type=record_type,
            time=moment,
            event_id=event_id or message_id or _random_id(),
            project=project,
            event=event,
            distinct_id=distinct_id,
            login_id=user_id,
            anonymous_id=anonymous_id,
            identities=dict(identities),
            properties=check_properties(properties),
            lib=lib,
        )

    if message_type == "track":
        event = normalise_name(message.get("event"), "event name")
        properties = {**common, **flatten(_object(message, "properties"))}
        return [record("track", properties, event=event)]
    if message_type in ("page", "screen"):
        properties = flatten(_object(message, "properties"))
        name = message.get("name")
        category = message.get("category")
        if message_type == "page":
            event = "$pageview"
            for source, target in (("url", "$url"), ("title", "$title"), ("referrer", "$referrer")):
                if source in properties and target not in properties:
                    properties[target] = properties[source]
            if "path" in properties:
                properties.setdefault("$url_path", properties["path"])
            if name is not None:
                properties.setdefault("$title", name)
        else:
            event = "$AppViewScreen"
            if name is not None:
                properties.setdefault("$screen_name", name)
        if name is not None:
            properties.setdefault("name", name)
        if category is not None:
            properties.setdefault("category", category)
        return [record("track", {**common, **properties}, event=event)]
    if message_type == "group":
        group_id = require_id(message.get("groupId"), "groupId")
        traits = flatten(_object(message, "traits"), prefix="group_")
        return [record("profile_set", {"group_id": group_id, **traits})]
    # identify
    traits = flatten(_object(message, "traits"))
    records: list[IngestRecord] = []
    if traits:
        records.append(record("profile_set", traits))
    if user_id is not None and anonymous_id is not None:
        bind_id = f"{message_id}:bind" if message_id else None
        records.append(record("track_id_bind", dict(common), event="$BindID", event_id=bind_id))
    if not records:
        raise RecordRejected("identify needs traits, or both userId and anonymousId")
    return records


def normalise_name(value: object, what: str) -> str:
    """A Segment name as a valid Sensors name: invalid characters become ``_``."""
    if not isinstance(value, str) or not value.strip():
        raise RecordRejected(f"{what} must be a non-empty string")
    name = value.strip()
    if not is_valid_name(name):
        name = _INVALID_NAME_CHARS.sub("_", name)[:100]
        if name[0].isdigit():
            name = "_" + name[:99]
    return check_name(name, what)


def flatten(properties: Mapping[str, Any], *, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Nested objects → ``parent_child`` keys; names normalised; lists of non-strings → lists
    of JSON strings."""
    flat: dict[str, Any] = {}
    for key, value in properties.items():
        name = f"{prefix}{key}"
        if not is_valid_name(name):
            name = normalise_name(name, "property name")
        if isinstance(value, dict):
            if depth >= _MAX_DEPTH:
                flat[name] = orjson.dumps(value).decode()
            else:
                flat.update(flatten(value, prefix=f"{name}_", depth=depth + 1))
        elif isinstance(value, list):
            flat[name] = [
                item if isinstance(item, str) else orjson.dumps(item).decode() for item in value
            ]
        else:
            flat[name] = value
    return flat


def parse_timestamp(value: object, what: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or an offset; naive is taken as UTC) → aware UTC."""
    if not isinstance(value, str):
        raise RecordRejected(f"{what} must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordRejected(f"{what} {value[:40]!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise RecordRejected(f"{what} {value[:40]!r} is out of range") from None


def _message_time(message: Mapping[str, Any], now: datetime) -> datetime:
    if message.get("timestamp") is not None:
        return parse_timestamp(message["timestamp"], "timestamp")
    if message.get("originalTimestamp") is not None:
        original = parse_timestamp(message["originalTimestamp"], "originalTimestamp")
        if message.get("sentAt") is not None:
            # Segment's rule: correct the device clock by how far its sentAt is from now.
            sent_at = parse_timestamp(message["sentAt"], "sentAt")
            try:
                return original + (now - sent_at)
            except OverflowError:
                raise RecordRejected("originalTimestamp/sentAt are out of range") from None
        return original
    return now


def _object(message: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordRejected(f"{key} must be an object")
    return value


def _lib(context: Mapping[str, Any]) -> dict[str, Any]:
    library = context.get("library")
    if not isinstance(library, dict):
        return {}
    lib: dict[str, Any] = {"$lib_method": "code"}
    if isinstance(library.get("name"), str):
        lib["$lib"] = library["name"][:MAX_ID_CHARS]
    if isinstance(library.get("version"), str):
        lib["$lib_version"] = library["version"][:MAX_ID_CHARS]
    return lib


def _context_properties(context: Mapping[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for source, target in (("ip", "$ip"), ("userAgent", "$user_agent"), ("locale", "$locale")):
        value = context.get(source)
        if isinstance(value, str):
            properties[target] = value
    return properties


def _random_id() -> str:
    return uuid.uuid4().hex
