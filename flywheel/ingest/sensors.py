"""The Sensors Analytics transport: request fields → decoded JSON records.

What the SDKs send (read from their sources):

* Python / Java / server SDKs: ``POST /sa?project=…`` urlencoded ``data=<b64(gzip(json))>``
  or ``data_list=<b64(gzip(json array))>`` with ``gzip=1``;
* JS SDK: ``GET /sa.gif?data=<b64(json)>`` (image beacon), ``POST`` urlencoded or
  ``text/plain`` (sendBeacon) bodies of the same fields, ``data_list`` batches;
* Android / iOS SDKs: urlencoded ``data_list`` with ``gzip=1`` (or ``9``) and ``crc``;
* ``DebugConsumer``: ``POST /debug`` with the same fields and an optional ``Dry-Run: true``.

The same fields are also accepted in a JSON object body (``{"data_list": "…", "gzip": 1}``),
and a JSON body may carry records directly (an object or an array of objects). Whether a
payload is gzip is decided by its magic bytes, so a wrong ``gzip`` flag is harmless.
Every failure raises a :class:`~flywheel.core.errors.FlywheelError` saying what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from flywheel.core.errors import InvalidInput, PayloadTooLarge

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(slots=True)
class SensorsPayload:
    """The decoded records of one request plus the fields that travel beside them."""

    records: list[Any]
    project: str | None
    token: str | None


def decode_post(
    body: bytes, content_type: str, query: Mapping[str, str], *, max_bytes: int
) -> SensorsPayload:
    """Decode a POST: urlencoded fields (also ``text/plain`` beacons) or a JSON body.

    ``query`` holds the URL parameters (``project``, ``token``, even ``data``); body fields
    win over them. ``max_bytes`` bounds the decompressed size.
    """
    fields = dict(query)
    stripped = body.lstrip()
    if "json" in content_type or stripped[:1] in (b"{", b"["):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}") from None
        if not (isinstance(parsed, dict) and ("data" in parsed or "data_list" in parsed)):
            return SensorsPayload(
                records=_as_records(parsed, "body"),
                project=fields.get("project") or None,
                token=fields.get("token") or None,
            )
        fields.update({str(k): _field_text(v) for k, v in parsed.items() if v is not None})
    elif stripped:
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise InvalidInput("request body is not UTF-8 urlencoded form data") from None
        try:
            fields.update(parse_qsl(text, keep_blank_values=True, max_num_fields=64))
        except ValueError as exc:
            raise InvalidInput(f"request body is not urlencoded form data: {exc}") from None
    return decode_fields(fields, max_bytes=max_bytes)


def decode_fields(fields: Mapping[str, str], *, max_bytes: int) -> SensorsPayload:
    """Decode ``data`` / ``data_list`` (base64, optionally gzip) into JSON records.

    ``max_bytes`` bounds the decompressed size (a zip bomb gets :class:`PayloadTooLarge`).
    """
    name = "data_list" if fields.get("data_list") else "data"
    encoded = fields.get(name)
    if not encoded:
        raise InvalidInput("missing form field 'data' or 'data_list'")
    payload = decode_base64(encoded, name)
    declared_gzip = fields.get("gzip", "0") not in ("", "0")
    if payload[:2] == GZIP_MAGIC:
        payload = gunzip(payload, max_bytes=max_bytes, what=name)
    elif len(payload) > max_bytes:
        raise PayloadTooLarge(f"{name} decodes to more than {max_bytes} bytes")
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if declared_gzip and payload[:2] != GZIP_MAGIC:
            raise InvalidInput(f"{name} is declared gzip but is neither gzip nor JSON") from None
        raise InvalidInput(f"{name} is not valid JSON: {exc}") from None
    return SensorsPayload(
        records=_as_records(parsed, name),
        project=fields.get("project") or None,
        token=fields.get("token") or None,
    )


def decode_base64(encoded: str, what: str) -> bytes:
    """Standard or URL-safe base64, tolerant of missing padding and of ``+`` turned into
    spaces by a form decoder."""
    text = encoded.strip().replace(" ", "+").replace("\n", "").replace("\r", "")
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what} is not valid base64") from None


def gunzip(payload: bytes, *, max_bytes: int, what: str) -> bytes:
    """Decompress gzip ``payload``, refusing more than ``max_bytes`` of output."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(payload, max_bytes + 1)
    except zlib.error:
        raise InvalidInput(f"{what} is not valid gzip") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"{what} decompresses to more than {max_bytes} bytes")
    if not inflater.eof:
        raise InvalidInput(f"{what} is truncated gzip")
    return out


def _as_records(parsed: Any, what: str) -> list[Any]:
    if isinstance(parsed, list):
        return parsed
    if isinstance(parsed, dict):
        return [parsed]
    raise InvalidInput(f"{what} must hold a JSON object or an array of objects")


def _field_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()
