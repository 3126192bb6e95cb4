"""Image files of the materials library, stored by content hash.

:class:`MediaStore` is the small interface (put/get); :class:`LocalMediaStore` keeps files under
``settings.data_dir / "media" / "p{project_id}"``. An S3-compatible store would implement the
same two methods (not built yet: it needs bucket settings in ``flywheel.config``).
Only PNG, JPEG, GIF and WebP are accepted, recognised by their magic bytes (never by the name
the uploader gave), at most :data:`MAX_IMAGE_BYTES`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Protocol

from flywheel.core.errors import InvalidInput, NotFound, PayloadTooLarge

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


class MediaStore(Protocol):
    def put(self, *, project_id: int, data: bytes) -> str:
        """Store an image; returns its name (``<sha256>.<ext>``)."""

    def get(self, *, project_id: int, name: str) -> tuple[bytes, str]:
        """The bytes and content type of a stored image; :class:`NotFound` when absent."""


class LocalMediaStore:
    """Images on the local disk, one folder per project."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, *, project_id: int, data: bytes) -> str:
        if len(data) > MAX_IMAGE_BYTES:
            raise PayloadTooLarge(f"image larger than {MAX_IMAGE_BYTES} bytes")
        name = f"{hashlib.sha256(data).hexdigest()}.{image_extension(data)}"
        folder = self.root / f"p{project_id}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if not target.exists():
            partial = target.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(target)
        return name

    def get(self, *, project_id: int, name: str) -> tuple[bytes, str]:
        if not _NAME.match(name):
            raise NotFound("image not found")
        path = self.root / f"p{project_id}" / name
        if not path.is_file():
            raise NotFound("image not found")
        return path.read_bytes(), CONTENT_TYPES[name.rsplit(".", 1)[1]]


def local_store(data_dir: Path) -> LocalMediaStore:
    """The default store under ``data_dir / "media"``."""
    return LocalMediaStore(data_dir / "media")
