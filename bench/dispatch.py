"""Benchmark: dispatch N outbox messages to a local webhook sink with the compliance gate on.

    .venv/bin/python bench/dispatch.py [--messages 30000] [--batch 1000] [--postgres URL]

Setup (not timed): N customers with a C3 risk tolerance and a valid assessment, a marketing
consent each on the webhook channel (made consent-required), a per-channel cap of 5 per 7 days
and a global cap, a send spec promoting an R2 product with an inline template, and N messages
due now. A sink process (raw asyncio HTTP/1.1 with keep-alive) checks every request's HMAC.
Timed: one dispatcher draining the outbox — claim, gate (opt-outs, lists, consents, caps,
suitability), render, sign, POST, record outcomes and system events. Prints msgs/s, p50/p99 of
due → delivered, and peak memory.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECRET = "bench-secret"


def sink(port_queue: multiprocessing.Queue, count: multiprocessing.Value) -> None:  # type: ignore[type-arg]
    import asyncio
    import hashlib
    import hmac

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                signature = b""
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    lowered = name.strip().lower()
                    if lowered == b"content-length":
                        length = int(value.strip())
                    elif lowered == b"x-flywheel-signature":
                        signature = value.strip()
                body = await reader.readexactly(length)
                expected = (
                    b"sha256="
                    + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest().encode()
                )
                ok = hmac.compare_digest(expected, signature)
                status = b"200 OK" if ok else b"401 Unauthorized"
                if ok:
                    with count.get_lock():
                        count.value += 1
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_queue.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres", default=None, help="database URL (default: SQLite file)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))

    from sqlalchemy import select

    from flywheel.bootstrap import open_runtime
    from flywheel.channels import outbox
    from flywheel.channels.dispatch import Dispatcher
    from flywheel.channels.models import Message
    from flywheel.compliance import service as compliance
    from flywheel.compliance.schemas import Cap, ComplianceSettingsIn
    from flywheel.config import Settings
    from flywheel.identity import service as identity
    from flywheel.profiles import service as profiles
    from flywheel.projects import service as projects

    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    received = multiprocessing.Value("l", 0)
    server = multiprocessing.Process(target=sink, args=(ports, received), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=10)}/hook"

    n = args.messages
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="test",
            data_dir=Path(tmp),
            database_url=args.postgres,
            dispatch_batch_size=args.batch,
            webhook_concurrency=args.concurrency,
        )
        runtime = open_runtime(settings)
        now = datetime.now(UTC)
        expiry = (now + timedelta(days=365)).date().isoformat()
        with runtime.db.unit_of_work() as session:
            pid = projects.get_by_name(session=session, name="default").id
            users = identity.create_users(session=session, project_id=pid, count=n, now=now)
            profiles.save_profiles(
                session=session,
                project_id=pid,
                profiles={
                    u: {
                        "name": f"客户{u}",
                        "risk_tolerance": "C3",
                        "risk_assessment_expiry": expiry,
                        "branch": f"BR{u % 20:03d}",
                    }
                    for u in users
                },
                now=now,
            )
            compliance.put_settings(
                session=session,
                project_id=pid,
                settings_in=ComplianceSettingsIn(
                    channel_caps={"webhook": Cap(max=5, days=7)},
                    global_cap=Cap(max=10, days=7),
                    consent_required=["webhook"],
                ).model_copy(
                    update={
                        "quiet_hours": ComplianceSettingsIn().quiet_hours.model_copy(
                            update={"enabled": False}
                        )
                    }
                ),
                actor="bench",
                now=now,
            )
            compliance.grant_consents(
                session=session,
                project_id=pid,
                user_ids=users,
                channel="webhook",
                purpose="marketing",
                source="bench",
                now=now,
            )
            spec_id = outbox.register_spec(
                session=session,
                project_id=pid,
                owner="bench:send",
                channel="webhook",
                purpose="marketing",
                content_id=None,
                template={
                    "text": "{{ user.name }}您好，稳健理财产品推荐：{{ recommendations[0].name }}"
                },
                config={"url": url, "secret": SECRET},
                product_risk_level=2,
            )
            recs = [
                {"item_id": "F001", "item_type": "fund", "risk_level": "R2", "name": "稳健债基"}
            ]
            outbox.enqueue(
                session=session,
                project_id=pid,
                messages=[
                    outbox.NewMessage(
                        key=f"bench:{u}",
                        user_id=u,
                        spec_id=spec_id,
                        channel="webhook",
                        purpose="marketing",
                        journey_id=1,
                        version_id=1,
                        node_id="send",
                        context={"recommendations": recs},
                    )
                    for u in users
                ],
                now=now,
            )
        if args.postgres:
            # Fresh tables have no planner statistics; autovacuum gathers them within a minute
            # in production. Without them the caps query scans the project's messages.
            with runtime.db.engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE")
                connection.commit()
        dispatcher = Dispatcher(
            db=runtime.db,
            warehouse=runtime.warehouse,
            settings=settings,
            clock=lambda: datetime.now(UTC),
        )
        start = time.perf_counter()
        handled = dispatcher.run_until_idle(max_batches=10_000)
        elapsed = time.perf_counter() - start
        dispatcher.close()
        with runtime.db.unit_of_work() as session:
            rows = session.execute(
                select(Message.status, Message.created_at, Message.delivered_at)
            ).all()
        runtime.close()
    server.terminate()
    delivered = [r for r in rows if r[0] == "delivered"]
    latencies = sorted((r[2] - r[1]).total_seconds() for r in delivered)
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r[0]] = statuses.get(r[0], 0) + 1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database          {'postgresql' if args.postgres else 'sqlite'}  (pid {os.getpid()})")
    print(f"messages          {n}  claimed {handled}  statuses {statuses}")
    print(f"sink verified     {received.value}")
    print(f"elapsed           {elapsed:.2f} s")
    print(f"throughput        {len(delivered) / elapsed:,.0f} msgs/s")
    if latencies:
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"due→delivered     p50 {statistics.median(latencies):.2f} s  p99 {p99:.2f} s")
    print(f"peak RSS          {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
