"""Journey engine benchmarks.

    uv run python bench/journeys.py entry --customers 1000000
        a segment journey (segment → send → exit): time until every first message is in the
        outbox (target ≤ 60 s for 1,000,000), rows/s, peak memory.
    uv run python bench/journeys.py events --rate 1000 --seconds 20
        an event-triggered journey: events ingested over HTTP-equivalent ingest at a steady
        rate; latency from ingest commit to message in the outbox, p50/p99 (target p99 ≤ 1 s).

Runs on a fresh SQLite + DuckDB data folder (``--data-dir``, default a temp folder), or on
PostgreSQL with ``--database-url``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from flywheel.bootstrap import open_runtime
from flywheel.channels.models import Message
from flywheel.config import Settings
from flywheel.ingest.records import IngestRecord
from flywheel.ingest.tasks import IngestProcessor
from flywheel.journeys import service
from flywheel.journeys.engine import Engine
from flywheel.journeys.schemas import JourneyDefinition
from flywheel.runtime import Runtime
from flywheel.segments import service as segments
from flywheel.segments.schemas import SegmentIn

SEND = {
    "id": "send",
    "type": "send",
    "channel": "webhook",
    "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "s3cret"},
    "content": {"text": "感谢{{ user.name | default('客户') }}的关注"},
}


def _runtime(args: argparse.Namespace) -> Runtime:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="fw-bench-journeys-"))
    settings = Settings(
        env="test", data_dir=data_dir, database_url=args.database_url, log_level="WARNING"
    )
    return open_runtime(settings)


def _publish(runtime: Runtime, definition: dict[str, Any]) -> int:
    now = runtime.clock()
    with runtime.db.unit_of_work() as session:
        created = service.create_journey(
            session=session,
            project_id=1,
            definition=JourneyDefinition.model_validate(definition),
            principal=None,
            now=now,
        )
        service.publish(
            session=session, project_id=1, journey_id=created.id, actor="bench", now=now
        )
    return created.id


def _outbox(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def entry(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    n = args.customers
    with runtime.db.unit_of_work() as session:
        segment = segments.create_segment(
            session=session,
            warehouse=runtime.warehouse,
            project_id=1,
            segment_in=SegmentIn(
                name="all", source="analysis", mode="static", user_ids=list(range(1, n + 1))
            ),
            actor="bench",
            now=runtime.clock(),
        )
    _publish(
        runtime,
        {
            "name": "bench entry",
            "purpose": "service",
            "nodes": [
                {"id": "in", "type": "entry_segment", "segment_id": segment.id},
                SEND,
                {"id": "out", "type": "exit"},
            ],
            "edges": [{"from": "in", "to": "send"}, {"from": "send", "to": "out"}],
        },
    )
    engine = Engine(runtime)
    started = time.perf_counter()
    entered = engine.enter_segments()
    seconds = time.perf_counter() - started
    in_outbox = _outbox(runtime)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"customers        {n:,}")
    print(f"entered          {entered:,}")
    print(f"messages (outbox) {in_outbox:,}")
    print(f"seconds          {seconds:.1f}")
    print(f"customers/s      {entered / seconds:,.0f}")
    print(f"peak RSS         {peak:,.0f} MiB")
    runtime.close()


def events(args: argparse.Namespace) -> None:
    runtime = _runtime(args)
    _publish(
        runtime,
        {
            "name": "bench events",
            "purpose": "service",
            "reentry": "always",
            "nodes": [
                {"id": "in", "type": "entry_event", "event": "BuyFund"},
                SEND,
                {"id": "out", "type": "exit"},
            ],
            "edges": [{"from": "in", "to": "send"}, {"from": "send", "to": "out"}],
        },
    )
    from flywheel.ingest import service as ingest_service

    done = threading.Event()
    committed: dict[int, float] = {}

    def produce() -> None:
        # 10 batches a second at the target rate, as the HTTP writer's group commit does.
        per_tick = max(1, args.rate // 10)
        sequence = 0
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline:
            tick = time.perf_counter()
            records = []
            for _ in range(per_tick):
                sequence += 1
                records.append(
                    IngestRecord(
                        type="track",
                        time=datetime.now(UTC),
                        event_id=f"b{sequence}",
                        event="BuyFund",
                        distinct_id=f"c{sequence % 50_000}",
                        properties={"seq": sequence},
                    )
                )
            with runtime.db.unit_of_work() as session:
                ingest_service.enqueue(session=session, project_id=1, records=records, source="sa")
            at = time.perf_counter()
            for r in records:
                committed[int(r.properties["seq"])] = at
            time.sleep(max(0.0, 0.1 - (time.perf_counter() - tick)))
        done.set()

    def loop(service_: Any) -> None:
        while not done.is_set() or service_.run_once():
            if service_.run_once() == 0:
                time.sleep(0.01)

    threads = [
        threading.Thread(target=produce),
        threading.Thread(target=loop, args=(IngestProcessor(runtime),)),
        threading.Thread(target=loop, args=(Engine(runtime),)),
    ]
    for t in threads:
        t.start()
    latencies: list[float] = []
    warm: list[float] = []
    warmup = args.rate * 2  # the first two seconds: schema registration, first DuckDB writes
    last = 0
    idle_since = time.perf_counter()
    while True:
        with runtime.db.unit_of_work() as session:
            rows = session.execute(
                select(Message.id, Message.context).where(Message.id > last).order_by(Message.id)
            ).all()
        seen = time.perf_counter()
        for mid, context in rows:
            last = mid
            seq = int(context["event"]["seq"])
            (latencies if seq > warmup else warm).append(seen - committed[seq])
        if rows:
            idle_since = seen
        if done.is_set() and (
            len(latencies) + len(warm) >= len(committed) or seen - idle_since > 10
        ):
            break
        time.sleep(0.01)
    for t in threads:
        t.join()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(f"events ingested   {len(committed):,} ({args.rate}/s for {args.seconds}s)")
    print(f"messages          {len(latencies) + len(warm):,}")
    print(f"after warm-up (first 2 s excluded, {len(latencies):,} messages):")
    print(f"latency p50       {pct(0.50):.0f} ms")
    print(f"latency p99       {pct(0.99):.0f} ms")
    print(f"latency max       {latencies[-1] * 1000:.0f} ms")
    print(f"mean              {statistics.mean(latencies) * 1000:.0f} ms")
    runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["entry", "events"])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--data-dir")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    {"entry": entry, "events": events}[args.mode](args)


if __name__ == "__main__":
    main()
