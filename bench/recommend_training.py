"""Training time on N synthetic interactions (default 10,000,000), through the real path.

    .venv/bin/python bench/recommend_training.py [--interactions 10000000] [--users 1000000]
        [--items 5000] [--keep DIR]

Writes the events into a fresh DuckDB warehouse (like ingest would), then runs
``recommend.service.train`` (aggregation with decay → ALS → BPR → item-to-item → files) and
prints the time of each phase and the peak RSS. ``--keep DIR`` leaves the data folder (the
serving benchmark can reuse it with ``--data-dir``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.recommend_common import (
    EVENT_P,
    EVENTS,
    interactions,
    item_rows,
    peak_rss_mib,
    timed,
    write_items,
    write_users,
)
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.projects import service as projects
from flywheel.recommend import service
from flywheel.runtime import Runtime
from flywheel.warehouse import PropertyType, TableKind, Warehouse

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def write_events(
    warehouse: Warehouse, project_id: int, users: np.ndarray, items: np.ndarray, seed: int = 4
) -> None:
    """One event per interaction, spread over 180 days, in chunks of 2 M rows."""
    warehouse.ensure_columns(
        project_id,
        TableKind.EVENTS,
        {"item_id": PropertyType.STRING, "item_type": PropertyType.STRING},
    )
    rng = np.random.default_rng(seed)
    item_ids = np.array([f"F{i:05d}" for i in range(items.max() + 1)], dtype=object)
    chunk = 2_000_000
    start_time = np.datetime64(NOW.replace(tzinfo=None) - timedelta(days=180), "us")
    for start in range(0, len(users), chunk):
        u = users[start : start + chunk] + 1
        size = len(u)
        seconds = rng.integers(0, 180 * 86400, size).astype("timedelta64[s]")
        times = start_time + seconds.astype("timedelta64[us]")
        table = pa.table(
            {
                "id": pa.array(np.char.add("e", np.arange(start, start + size).astype(str))),
                "user_id": pa.array(u),
                "distinct_id": pa.array(u.astype(str)),
                "event": pa.array(rng.choice(EVENTS, size, p=EVENT_P)),
                "time": pa.array(times),
                "$receive_time": pa.array(times),
                "item_id": pa.array(item_ids[items[start : start + chunk]], pa.string()),
                "item_type": pa.array(np.full(size, "fund")),
            }
        )
        warehouse.append(project_id, TableKind.EVENTS, table)


def generate(
    runtime: Runtime, project_id: int, args: argparse.Namespace, figures: dict[str, float]
) -> None:
    with timed("generate + write events/users/items", figures):
        users, items = interactions(args.users, args.items, args.interactions)
        write_items(runtime.warehouse, project_id, item_rows(args.items))
        write_users(runtime.warehouse, project_id, args.users)
        write_events(runtime.warehouse, project_id, users, items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="--keep DIR already holds the events: train only"
    )
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="fw-rec-train-"))
    figures: dict[str, float] = {}
    print(
        f"recommend training bench: {args.interactions:,} interactions, {args.users:,} customers,"
        f" {args.items:,} products (data in {folder})"
    )
    runtime = open_runtime(Settings(env="test", data_dir=folder, log_level="WARNING"))
    try:
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name="default").id
        if args.reuse:
            print("  reusing the events already in", folder)
        else:
            generate(runtime, project_id, args, figures)
        rss_before = peak_rss_mib()
        started = time.perf_counter()
        with runtime.db.unit_of_work() as session:
            version = service.train(
                session=session,
                warehouse=runtime.warehouse,
                models_root=service.models_dir(folder),
                project_id=project_id,
                now=NOW,
            )
        wall = time.perf_counter() - started
        meta = json.loads(
            (
                service.models_dir(folder)
                / f"p{project_id}"
                / f"v{version.version:06d}"
                / "meta.json"
            ).read_text()
        )
        timings: dict[str, float] = meta["timings"]
        print("RESULTS")
        print(f"  interactions (events): {args.interactions:,}")
        print(
            f"  matrix: {version.n_users:,} customers × {version.n_items:,} items, "
            f"{version.n_interactions:,} distinct (customer, item) pairs"
        )
        print(f"  ALS: {timings['als']:.1f} s")
        print(f"  BPR: {timings.get('bpr', 0):.1f} s")
        print(f"  item-to-item: {timings.get('item_to_item', 0):.1f} s")
        print(f"  read + aggregate + save: {wall - sum(timings.values()):.1f} s")
        print(f"  service.train end to end: {wall:.1f} s (model v{version.version})")
        print(f"  peak RSS: {peak_rss_mib():.0f} MiB (before training: {rss_before:.0f} MiB)")
    finally:
        runtime.close()
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
