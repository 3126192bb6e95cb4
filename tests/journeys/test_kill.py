"""kill -9 of the engine process at random moments: after restarts every customer has exactly
one state and one message, and no system event is duplicated."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from flywheel.bootstrap import open_runtime
from flywheel.channels.models import Message
from flywheel.config import Settings
from flywheel.journeys import service
from flywheel.journeys.models import JourneyState
from flywheel.journeys.schemas import JourneyDefinition
from flywheel.profiles import mirror
from flywheel.segments import service as segments
from flywheel.segments.schemas import SegmentIn

WORKER = Path(__file__).with_name("engine_worker.py")
CUSTOMERS = 4_000


def _prepare(data_dir: Path) -> None:
    runtime = open_runtime(Settings(env="test", data_dir=data_dir))
    try:
        now = runtime.clock()
        with runtime.db.unit_of_work() as session:
            segment = segments.create_segment(
                session=session,
                warehouse=runtime.warehouse,
                project_id=1,
                segment_in=SegmentIn(
                    name="everyone",
                    source="analysis",
                    mode="static",
                    user_ids=list(range(1, CUSTOMERS + 1)),
                ),
                actor="test",
                now=now,
            )
            definition = JourneyDefinition.model_validate(
                {
                    "name": "kill",
                    "purpose": "service",
                    "nodes": [
                        {"id": "in", "type": "entry_segment", "segment_id": segment.id},
                        {
                            "id": "s",
                            "type": "send",
                            "channel": "webhook",
                            "webhook": {"url": "http://127.0.0.1:9/h", "secret": "x"},
                            "content": {"text": "hi"},
                        },
                        {"id": "out", "type": "exit"},
                    ],
                    "edges": [{"from": "in", "to": "s"}, {"from": "s", "to": "out"}],
                }
            )
            created = service.create_journey(
                session=session, project_id=1, definition=definition, principal=None, now=now
            )
            service.publish(
                session=session, project_id=1, journey_id=created.id, actor="test", now=now
            )
    finally:
        runtime.close()


def _worker(data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(data_dir), "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_kill_9_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _prepare(data_dir)
    rng = random.Random(5)
    kills = 0
    for _ in range(4):
        proc = _worker(data_dir)
        assert proc.stdout is not None
        # Killed after a random number of committed chunks (20 in all), at a random moment
        # of the next one: whatever the machine's speed, the kill lands inside the work.
        for _ in range(rng.randint(1, 12)):
            proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.03))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(30)
        proc.stdout.close()
    assert kills >= 2
    final = _worker(data_dir)
    out, _ = final.communicate(timeout=300)
    assert final.returncode == 0 and out.strip().endswith("idle")

    runtime = open_runtime(Settings(env="test", data_dir=data_dir))
    try:
        with runtime.db.unit_of_work() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == CUSTOMERS
            assert session.scalar(select(func.count(func.distinct(Message.user_id)))) == CUSTOMERS
            assert session.scalar(select(func.count()).select_from(JourneyState)) == CUSTOMERS
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(JourneyState)
                    .where(JourneyState.status == "done")
                )
                == CUSTOMERS
            )
        mirror.drain(db=runtime.db, warehouse=runtime.warehouse, limit=10_000)
        rows = runtime.warehouse.fetch(
            'SELECT event, count(*), count(DISTINCT user_id) FROM "p1_events" GROUP BY event'
        )
        counts = {name: (n, users) for name, n, users in rows}
        for name in ("$JourneyEnter", "$MessagePrepared", "$JourneyExit"):
            assert counts[name] == (CUSTOMERS, CUSTOMERS)
    finally:
        runtime.close()
