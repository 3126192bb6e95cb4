"""Rate limits: token buckets (in process and Redis), login limits, the ingest middleware."""

from __future__ import annotations

import base64
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flywheel.app import create_app
from flywheel.auth.ratelimit import (
    Limit,
    RateLimiter,
    RedisTokenBuckets,
    TokenBuckets,
    ingest_rate_key,
)
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_burst_then_refills() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(clock=clock)
    limit = Limit(rate_per_second=2.0, burst=3)
    assert [buckets.take("k", limit).allowed for _ in range(4)] == [True, True, True, False]
    refused = buckets.take("k", limit)
    assert not refused.allowed and refused.retry_after == pytest.approx(0.5)
    assert buckets.take("other", limit).allowed  # buckets are per key
    clock.now += 0.5
    assert buckets.take("k", limit).allowed
    assert not buckets.take("k", limit).allowed
    clock.now += 100
    assert buckets.take("k", limit).remaining == pytest.approx(2.0)  # capped at burst


def test_idle_buckets_are_forgotten() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(clock=clock, max_keys=10)
    limit = Limit(rate_per_second=10, burst=10)
    for i in range(10):
        buckets.take(f"k{i}", limit)
    clock.now += 5
    buckets.take("fresh", limit)
    assert len(buckets._buckets) == 1


@pytest.fixture
def redis_limiter() -> Iterator[RateLimiter]:
    url = os.environ.get("FLYWHEEL_TEST_REDIS_URL")
    if not url:
        pytest.skip("FLYWHEEL_TEST_REDIS_URL is not set: Redis rate-limit suite skipped")
    limiter = RedisTokenBuckets(url, prefix=f"flywheel:test:{uuid.uuid4().hex}:")
    yield limiter
    limiter.close()


def test_redis_buckets_share_one_limit(redis_limiter: RateLimiter) -> None:
    url = os.environ["FLYWHEEL_TEST_REDIS_URL"]
    limit = Limit(rate_per_second=0.001, burst=5)
    assert [redis_limiter.take("k", limit).allowed for _ in range(3)] == [True] * 3
    # A second process (another client on the same prefix) sees the same bucket.
    prefix = redis_limiter._prefix  # type: ignore[attr-defined]
    other = RedisTokenBuckets(url, prefix=prefix)
    assert [other.take("k", limit).allowed for _ in range(3)] == [True, True, False]
    assert redis_limiter.take("k", limit).retry_after > 100
    other.close()


def test_redis_outage_fails_open() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    limiter = RedisTokenBuckets(f"redis://127.0.0.1:{port}/0")
    assert limiter.take("k", Limit(rate_per_second=1, burst=1)).allowed
    limiter.close()


def test_ingest_rate_key() -> None:
    sensors = {"path": "/sa", "query_string": b"project=shop&token=x", "headers": []}
    assert ingest_rate_key(sensors) == "ingest:project:shop"
    assert ingest_rate_key({**sensors, "query_string": b""}) == "ingest:project:default"
    basic = base64.b64encode(b"fwk_secret:").decode()
    segment = {"path": "/v1/track", "headers": [(b"authorization", f"Basic {basic}".encode())]}
    key = ingest_rate_key(segment)
    assert key is not None and key.startswith("ingest:key:") and "fwk_secret" not in key
    assert ingest_rate_key({"path": "/api/v1/projects", "headers": []}) is None


@pytest.fixture
def strict_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        env="test",
        data_dir=tmp_path / "data",
        login_rate_per_user_per_minute=3,
        login_rate_per_ip_per_minute=5,
        ingest_rate_per_second=0.01,
        ingest_burst=2,
    )
    runtime = open_runtime(settings)
    with TestClient(create_app(runtime=runtime, workers=False)) as client:
        yield client
    runtime.close()


def test_login_is_limited_per_user_and_per_ip(strict_client: TestClient) -> None:
    attempts = [
        strict_client.post("/api/v1/auth/login", json={"username": "eve", "password": "x"})
        for _ in range(4)
    ]
    assert [a.status_code for a in attempts] == [401, 401, 401, 429]
    assert "retry" in attempts[-1].json()["message"]
    assert int(attempts[-1].headers["retry-after"]) >= 1
    # Other usernames from the same address: the per-IP bucket (5) runs out too.
    others = [
        strict_client.post("/api/v1/auth/login", json={"username": f"u{i}", "password": "x"})
        for i in range(3)
    ]
    assert [a.status_code for a in others] == [401, 401, 429]


def test_ingest_paths_are_limited_per_project(strict_client: TestClient) -> None:
    codes = [strict_client.get("/sa.gif", params={"project": "p1"}).status_code for _ in range(3)]
    assert codes[2] == 429 and 429 not in codes[:2]
    refused = strict_client.get("/sa.gif", params={"project": "p1"})
    assert refused.json()["error"] == "rate_limited"
    assert refused.headers["x-content-type-options"] == "nosniff"
    # Another project has its own bucket; API routes are not ingest-limited.
    assert strict_client.get("/sa.gif", params={"project": "p2"}).status_code != 429
    assert strict_client.get("/api/v1/projects").status_code == 401
