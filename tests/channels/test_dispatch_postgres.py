"""PostgreSQL: the claim uses FOR UPDATE SKIP LOCKED; two dispatchers running concurrently
never send one message twice."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.content import service as content_service
from tests.channels import dispatch_helpers as h


def test_two_dispatchers_never_send_one_message_twice(postgres_url: str, tmp_path: Path) -> None:
    runtime = open_runtime(Settings(env="test", data_dir=tmp_path, database_url=postgres_url))
    sink = h.Sink()
    try:
        now = datetime.now(UTC)
        users = h.customers(runtime, [{"name": f"p{i}"} for i in range(400)], now)
        spec_id = h.spec(
            runtime, "pg:send", purpose="service", config={"url": sink.url, "secret": h.SECRET}
        )
        h.enqueue(runtime, spec_id, users, now, purpose="service")
        with runtime.db.unit_of_work() as session:
            # Seed the content phrase list first: its lazy first-use seeding is not safe
            # against two concurrent first users (reported to the content owner).
            content_service.phrase_book(session=session, project_id=h.project_id(runtime), now=now)
        settings = runtime.settings.model_copy(update={"dispatch_batch_size": 25})
        clock = lambda: datetime.now(UTC)  # noqa: E731
        dispatchers = [h.dispatcher(runtime, clock, settings=settings) for _ in range(2)]
        handled = [0, 0]

        def run(i: int) -> None:
            handled[i] = dispatchers[i].run_until_idle()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for d in dispatchers:
            d.close()
        assert sum(handled) == 400 and all(handled), handled  # both took part
        seen = Counter(r.headers["idempotency-key"] for r in sink.received)
        assert len(seen) == 400 and max(seen.values()) == 1
        assert {m.status for m in h.by_key(runtime).values()} == {"delivered"}
    finally:
        sink.close()
        runtime.close()
