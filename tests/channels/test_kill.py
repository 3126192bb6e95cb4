"""kill -9 of a dispatcher process mid-run, several times: every message reaches the sink;
a key arrives twice only if its message was in flight (``sending``) at a kill."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from flywheel.channels.models import Message
from flywheel.runtime import Runtime
from tests.channels import dispatch_helpers as h

HERE = Path(__file__).resolve().parent


def _start(runtime: Runtime, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FLYWHEEL_ENV": "test",
        "FLYWHEEL_DATA_DIR": str(runtime.settings.data_dir),
        "FLYWHEEL_DISPATCH_LEASE_SECONDS": "1",
        "FLYWHEEL_DISPATCH_BATCH_SIZE": "20",
        "FLYWHEEL_DISPATCH_RETRY_BASE_SECONDS": "0.2",
        "FLYWHEEL_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, str(HERE / "kill_dispatcher.py"), *args],
        env=env,
        cwd=HERE.parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_minus_nine_loses_nothing_and_duplicates_only_in_flight(runtime: Runtime) -> None:
    sink = h.Sink(on_request=lambda _: time.sleep(0.01))
    try:
        now = datetime.now(UTC)
        users = h.customers(runtime, [{"name": f"k{i}"} for i in range(600)], now)
        spec_id = h.spec(
            runtime, "kill:send", purpose="service", config={"url": sink.url, "secret": h.SECRET}
        )
        h.enqueue(runtime, spec_id, users, now, purpose="service")
        in_flight: set[str] = set()
        rng = random.Random(7)
        kills = 0
        for _ in range(4):
            process = _start(runtime)
            before = len(sink.received)
            deadline = time.monotonic() + 60
            while len(sink.received) < before + 30 and time.monotonic() < deadline:
                time.sleep(0.01)  # wait until this dispatcher is sending
            time.sleep(rng.uniform(0.0, 0.15))
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
            with runtime.db.unit_of_work() as session:
                in_flight |= set(
                    session.scalars(
                        select(Message.idempotency_key).where(Message.status == "sending")
                    )
                )
        final = _start(runtime, "--drain")
        assert final.wait(timeout=120) == 0
        stored = h.by_key(runtime)
        assert {m.status for m in stored.values()} == {"delivered"}
        seen = Counter(r.headers["idempotency-key"] for r in sink.received)
        assert set(seen) == set(stored)  # every message reached the sink
        assert all(r.signature_ok for r in sink.received)
        duplicated = {key for key, n in seen.items() if n > 1}
        assert duplicated <= in_flight, duplicated - in_flight
        assert kills == 4 and in_flight  # the kills did land mid-batch
    finally:
        sink.close()
