"""Media storage: the disk store and the S3 store obey one contract; the S3 store is checked
against a real S3 wire-protocol server (moto in server mode on a local port)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from flywheel.app import create_app
from flywheel.auth import service as auth_service
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.content import storage
from flywheel.core.errors import InvalidInput, NotFound, PayloadTooLarge, Unavailable

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x02" * 40
GIF = b"GIF89a" + b"\x03" * 40
WEBP = b"RIFF\x00\x00\x00\x00WEBP" + b"\x04" * 40
BUCKET = "flywheel-media"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _raw_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)


@pytest.fixture
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test (names differ so tests never see each other's objects)."""
    name = f"{BUCKET}-{abs(hash(request.node.name)) % 10**8}"
    _raw_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def _s3(endpoint: str, bucket: str, prefix: str = "fw/") -> storage.S3MediaStore:
    return storage.s3_store(
        endpoint=endpoint,
        bucket=bucket,
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        prefix=prefix,
        addressing_style="path",
    )


@pytest.fixture(params=["disk", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str, bucket: str
) -> storage.MediaStore:
    if request.param == "disk":
        return storage.local_store(tmp_path)
    return _s3(s3_endpoint, bucket)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_put_get_delete_round_trip(
    store: storage.MediaStore, data: bytes, content_type: str
) -> None:
    name = store.put(project_id=1, data=data)
    assert name == storage.image_name(data)
    assert store.put(project_id=1, data=data) == name  # same bytes, same object
    assert store.get(project_id=1, name=name) == (data, content_type)
    with pytest.raises(NotFound):
        store.get(project_id=2, name=name)  # projects are apart
    store.delete(project_id=1, name=name)
    with pytest.raises(NotFound):
        store.get(project_id=1, name=name)
    with pytest.raises(NotFound):
        store.delete(project_id=1, name=name)


def test_limits_and_names_are_enforced(store: storage.MediaStore) -> None:
    with pytest.raises(PayloadTooLarge):
        store.put(project_id=1, data=PNG + b"\x00" * storage.MAX_IMAGE_BYTES)
    with pytest.raises(InvalidInput):
        store.put(project_id=1, data=b"<svg onload=alert(1)>")
    for bad in ("../flywheel.db", "x.png", "0" * 64 + ".svg", "0" * 64 + ".png/../a"):
        with pytest.raises(NotFound):
            store.get(project_id=1, name=bad)
        with pytest.raises(NotFound):
            store.delete(project_id=1, name=bad)
    largest = PNG + b"\x00" * (storage.MAX_IMAGE_BYTES - len(PNG))
    name = store.put(project_id=1, data=largest)
    assert store.get(project_id=1, name=name)[0] == largest


def test_s3_objects_carry_key_prefix_and_content_type(s3_endpoint: str, bucket: str) -> None:
    store = _s3(s3_endpoint, bucket, prefix="media/")
    name = store.put(project_id=7, data=JPEG)
    head = _raw_client(s3_endpoint).head_object(Bucket=bucket, Key=f"media/p7/{name}")
    assert head["ContentType"] == "image/jpeg"
    assert head["ContentLength"] == len(JPEG)
    listed = _raw_client(s3_endpoint).list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == [f"media/p7/{name}"]


def test_s3_failures_are_service_unavailable(s3_endpoint: str) -> None:
    with pytest.raises(Unavailable, match="NoSuchBucket"):
        _s3(s3_endpoint, "no-such-bucket").put(project_id=1, data=PNG)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(Unavailable, match="unreachable"):
        _s3(f"http://127.0.0.1:{closed}", BUCKET).get(project_id=1, name=storage.image_name(PNG))


def test_settings_select_the_store(tmp_path: Path, s3_endpoint: str) -> None:
    disk = storage.media_store(Settings(env="test", data_dir=tmp_path))
    assert isinstance(disk, storage.LocalMediaStore) and disk.root == tmp_path / "media"
    s3 = storage.media_store(
        Settings(
            env="test",
            data_dir=tmp_path,
            media_s3_endpoint=s3_endpoint,
            media_s3_bucket=BUCKET,
            media_s3_prefix="p/",
        )
    )
    assert isinstance(s3, storage.S3MediaStore)
    assert (s3.bucket, s3.prefix) == (BUCKET, "p/")


@pytest.fixture
def s3_client(
    settings: Settings, s3_endpoint: str, bucket: str
) -> Iterator[tuple[TestClient, Callable[[str], dict[str, str]]]]:
    configured = Settings(
        env="test",
        data_dir=settings.data_dir,
        media_s3_endpoint=s3_endpoint,
        media_s3_bucket=bucket,
        media_s3_access_key="testing",
        media_s3_secret_key="testing",
        media_s3_prefix="flywheel/",
    )
    runtime = open_runtime(configured)
    counter = iter(range(100))

    def headers(role: str) -> dict[str, str]:
        username = f"{role}{next(counter)}"
        with runtime.db.unit_of_work() as session:
            auth_service.create_user(
                session=session, username=username, password="correct-horse-42", role=role
            )
        answer = client.post(
            "/api/v1/auth/login", json={"username": username, "password": "correct-horse-42"}
        )
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    try:
        with TestClient(create_app(runtime=runtime, workers=False)) as client:
            yield client, headers
    finally:
        runtime.close()


def test_api_stores_images_in_s3_when_configured(
    s3_client: tuple[TestClient, Callable[[str], dict[str, str]]], s3_endpoint: str, bucket: str
) -> None:
    client, headers = s3_client
    author, reader = headers("marketer"), headers("analyst")
    stored = client.post(
        "/api/v1/content/media", files={"file": ("a.png", PNG, "image/png")}, headers=author
    )
    assert stored.status_code == 201, stored.text
    name = stored.json()["name"]
    keys = [o["Key"] for o in _raw_client(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"flywheel/p1/{name}"]
    fetched = client.get(stored.json()["url"], headers=reader)
    assert fetched.status_code == 200 and fetched.content == PNG
    assert fetched.headers["content-type"] == "image/png"

    # An image a content version references cannot be deleted.
    item = client.post(
        "/api/v1/content/items",
        json={"name": "banner", "kind": "image", "fields": {"image": name}},
        headers=author,
    )
    assert item.status_code == 201, item.text
    refused = client.delete(f"/api/v1/content/media/{name}", headers=author)
    assert refused.status_code == 409 and "banner" not in refused.text
    assert client.delete(f"/api/v1/content/media/{name}", headers=reader).status_code == 403

    other = client.post(
        "/api/v1/content/media", files={"file": ("b.gif", GIF, "image/gif")}, headers=author
    )
    gif = other.json()["name"]
    assert client.delete(f"/api/v1/content/media/{gif}", headers=author).status_code == 204
    assert client.get(f"/api/v1/content/media/{gif}", headers=reader).status_code == 404
    assert client.delete(f"/api/v1/content/media/{gif}", headers=author).status_code == 404
    keys = [o["Key"] for o in _raw_client(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"flywheel/p1/{name}"]
    audit = client.get("/api/v1/audit?action=content.media_deleted", headers=headers("admin"))
    assert audit.status_code == 200, audit.text
    assert [e["target"] for e in audit.json()["entries"]] == [f"media:{gif}"]
