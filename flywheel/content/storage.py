"""Image files of the materials library, stored by content hash, on disk or in S3.

:class:`MediaStore` is the small interface (put/get/delete). Two implementations:

* :class:`LocalMediaStore` keeps files under ``settings.data_dir / "media" / "p{project_id}"``
  (the default);
* :class:`S3MediaStore` keeps objects under ``{prefix}p{project_id}/<name>`` in one bucket of
  any S3-compatible service (AWS S3, MinIO, Ceph RGW, Aliyun OSS / Tencent COS in S3 mode),
  selected when ``FLYWHEEL_MEDIA_S3_BUCKET`` is set (see :func:`media_store`).

Both accept only PNG, JPEG, GIF and WebP, recognised by their magic bytes (never by the name
the uploader gave), at most :data:`MAX_IMAGE_BYTES`; both name a file ``<sha256>.<ext>``, so
storing the same image twice keeps one copy and returns the same name.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from flywheel.config import Settings
from flywheel.core.errors import InvalidInput, NotFound, PayloadTooLarge, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

MAX_IMAGE_BYTES = 5 * 1024 * 1024
_NAME = re.compile(r"^[0-9a-f]{64}\.(png|jpg|gif|webp)$")
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
}


def image_extension(data: bytes) -> str:
    """``png``/``jpg``/``gif``/``webp`` from the magic bytes; :class:`InvalidInput` otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    raise InvalidInput("not an image: only PNG, JPEG, GIF and WebP files are accepted")


def image_name(data: bytes) -> str:
    """The stored name of an image (``<sha256>.<ext>``) after the size and type checks.

    :class:`PayloadTooLarge` above :data:`MAX_IMAGE_BYTES`; :class:`InvalidInput` for a file
    that is not a PNG, JPEG, GIF or WebP image.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise PayloadTooLarge(f"image larger than {MAX_IMAGE_BYTES} bytes")
    return f"{hashlib.sha256(data).hexdigest()}.{image_extension(data)}"


def _checked_name(name: str) -> str:
    # Only names this module produced are looked up: nothing like ``../`` reaches a path or key.
    if not _NAME.match(name):
        raise NotFound("image not found")
    return name


class MediaStore(Protocol):
    def put(self, *, project_id: int, data: bytes) -> str:
        """Store an image; returns its name (``<sha256>.<ext>``)."""

    def get(self, *, project_id: int, name: str) -> tuple[bytes, str]:
        """The bytes and content type of a stored image; :class:`NotFound` when absent."""

    def delete(self, *, project_id: int, name: str) -> None:
        """Remove a stored image; :class:`NotFound` when absent."""


class LocalMediaStore:
    """Images on the local disk, one folder per project."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, *, project_id: int, data: bytes) -> str:
        name = image_name(data)
        folder = self.root / f"p{project_id}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if not target.exists():
            partial = target.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(target)
        return name

    def get(self, *, project_id: int, name: str) -> tuple[bytes, str]:
        path = self.root / f"p{project_id}" / _checked_name(name)
        if not path.is_file():
            raise NotFound("image not found")
        return path.read_bytes(), CONTENT_TYPES[name.rsplit(".", 1)[1]]

    def delete(self, *, project_id: int, name: str) -> None:
        path = self.root / f"p{project_id}" / _checked_name(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFound("image not found") from None


class S3MediaStore:
    """Images as objects of one bucket of an S3-compatible service.

    Keys are ``{prefix}p{project_id}/<sha256>.<ext>``; each object carries its
    ``Content-Type``. The bucket must exist (it is not created: buckets are provisioned with
    their policies by IT). Errors of the service other than "no such key" become
    :class:`Unavailable` (503) with the service's error code, never a stack trace.
    """

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key(self, project_id: int, name: str) -> str:
        return f"{self.prefix}p{project_id}/{_checked_name(name)}"

    def put(self, *, project_id: int, data: bytes) -> str:
        name = image_name(data)
        with _service_errors():
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(project_id, name),
                Body=data,
                ContentType=CONTENT_TYPES[name.rsplit(".", 1)[1]],
                ContentMD5=_md5_header(data),
            )
        return name

    def get(self, *, project_id: int, name: str) -> tuple[bytes, str]:
        key = self.key(project_id, name)
        with _service_errors():
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            body = answer["Body"].read()
        content_type = answer.get("ContentType") or CONTENT_TYPES[name.rsplit(".", 1)[1]]
        return body, content_type

    def delete(self, *, project_id: int, name: str) -> None:
        key = self.key(project_id, name)
        with _service_errors():
            # S3 deletes are idempotent; look first so both stores answer "absent" alike.
            self.client.head_object(Bucket=self.bucket, Key=key)
            self.client.delete_object(Bucket=self.bucket, Key=key)


def _md5_header(data: bytes) -> str:
    # Content-MD5 makes the service verify the bytes it stored (integrity on the wire).
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


@contextmanager
def _service_errors() -> Iterator[None]:
    """Map botocore failures: a missing key → NotFound, anything else → Unavailable."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404", "NotFound"}:
            raise NotFound("image not found") from None
        raise Unavailable(f"media storage refused the request ({code or 'error'})") from None
    except BotoCoreError as exc:
        raise Unavailable(f"media storage unreachable ({type(exc).__name__})") from None


def local_store(data_dir: Path) -> LocalMediaStore:
    """The default store under ``data_dir / "media"``."""
    return LocalMediaStore(data_dir / "media")


@lru_cache(maxsize=8)
def s3_store(
    *,
    endpoint: str | None,
    bucket: str,
    access_key: str,
    secret_key: str,
    region: str,
    prefix: str,
    addressing_style: Literal["path", "virtual", "auto"],
) -> S3MediaStore:
    """An :class:`S3MediaStore` with its client (cached: building a client costs ~50 ms)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        region_name=region,
        config=Config(
            s3={"addressing_style": addressing_style},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )
    return S3MediaStore(client, bucket, prefix)


def media_store(settings: Settings) -> MediaStore:
    """The store the settings select: S3 when ``media_s3_bucket`` is set, else the disk."""
    if settings.media_s3_bucket:
        return s3_store(
            endpoint=settings.media_s3_endpoint,
            bucket=settings.media_s3_bucket,
            access_key=settings.media_s3_access_key,
            secret_key=settings.media_s3_secret_key,
            region=settings.media_s3_region,
            prefix=settings.media_s3_prefix,
            addressing_style=settings.media_s3_addressing_style,
        )
    return local_store(settings.data_dir)
