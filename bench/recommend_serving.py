"""Serving latency at 1,000,000 customers × 5,000 products with every filter on.

    .venv/bin/python bench/recommend_serving.py [--data-dir DIR] [--users 1000000]
        [--items 5000] [--interactions 5000000] [--requests 5000] [--http-requests 1000]
        [--random-factors]

Without ``--data-dir`` a fresh folder is built: products, customers (warehouse users table with
tolerance and assessment expiry) and a model *trained for real* (ALS + BPR + item-to-item) on
synthetic clustered interactions — or, with ``--random-factors``, random factors of the right
shape (quicker). ``--data-dir`` reuses the folder left by
``bench/recommend_training.py --keep DIR`` (model v1 trained on 10 M interaction events).

Measured: ``recommend.service.recommend`` for random customers (scene ``home``: ALS +
item-to-item + hot + new items; suitability, holdings, impressions ≥ 5 and off-sale filters,
diversity cap), each call in its own unit of work as the route does; then the same through
HTTP (uvicorn on a local port, httpx keep-alive client, bearer token, identity lookup).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sqlalchemy import delete, insert

from bench.recommend_common import (
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
from flywheel.recommend import engine, service, training
from flywheel.recommend.models import RecommendImpression, RecommendModelVersion
from flywheel.recommend.schemas import TrainingConfig
from flywheel.runtime import Runtime

NOW = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def build(runtime: Runtime, project_id: int, args: argparse.Namespace, folder: Path) -> None:
    figures: dict[str, float] = {}
    with timed("write products + customers", figures):
        write_items(runtime.warehouse, project_id, item_rows(args.items))
        write_users(runtime.warehouse, project_id, args.users)
    with timed("synthetic interactions", figures):
        users, items = interactions(args.users, args.items, args.interactions)
        matrix = sp.csr_matrix(
            (np.ones(len(users), np.float32), (users, items)), shape=(args.users, args.items)
        )
        matrix.sum_duplicates()
        keys = [("fund", f"F{i:05d}") for i in range(args.items)]
        held_mask = np.random.default_rng(5).random(matrix.nnz) < 0.05
        coo = matrix.tocoo()
        held = sp.csr_matrix(
            (np.ones(int(held_mask.sum()), np.float32), (coo.row[held_mask], coo.col[held_mask])),
            shape=matrix.shape,
        )
        inter = training.Interactions(
            user_ids=np.arange(1, args.users + 1, dtype=np.int64),
            item_keys=keys,
            matrix=matrix,
            held=held,
            popularity=np.asarray(matrix.sum(axis=0), np.float32).ravel(),
        )
    if args.random_factors:
        rng = np.random.default_rng(6)
        artifacts = training.Artifacts(interactions=inter)
        artifacts.als_user = rng.normal(size=(args.users, 32)).astype(np.float32)
        artifacts.als_item = rng.normal(size=(args.items, 32)).astype(np.float32)
        similarity = sp.random(args.items, args.items, density=0.01, random_state=7, format="csr")
        artifacts.similarity = similarity.astype(np.float32)
    else:
        with timed("train ALS + BPR + item-to-item", figures):
            artifacts = training.fit(inter, TrainingConfig())
    version_dir = service.models_dir(folder) / f"p{project_id}" / "v000001"
    training.save(artifacts, version_dir, meta={"version": 1})
    with runtime.db.unit_of_work() as session:
        session.add(
            RecommendModelVersion(
                project_id=project_id,
                version=1,
                status="ready",
                path=str(version_dir),
                trained_at=NOW.replace(tzinfo=None),
                n_users=args.users,
                n_items=args.items,
                n_interactions=int(matrix.nnz),
                algorithms=artifacts.algorithms,
                duration_seconds=0.0,
            )
        )


def add_impressions(runtime: Runtime, project_id: int, n_users: int, n_items: int) -> None:
    """Impression counters for 10,000 customers (20 items each, about half shown ≥ 5×)."""
    rng = np.random.default_rng(8)
    rows = [
        {
            "project_id": project_id,
            "user_id": int(user),
            "item_type": "fund",
            "item_id": f"F{int(item):05d}",
            "shown": int(rng.integers(1, 10)),
            "clicked": 0,
            "last_at": NOW.replace(tzinfo=None),
        }
        for user in rng.choice(np.arange(1, n_users + 1), 10_000, replace=False)
        for item in rng.choice(n_items, 20, replace=False)
    ]
    with runtime.db.unit_of_work() as session:
        session.execute(
            delete(RecommendImpression).where(RecommendImpression.project_id == project_id)
        )
        session.execute(insert(RecommendImpression), rows)


def percentiles(samples: list[float]) -> str:
    ms = np.asarray(samples) * 1000
    return (
        f"p50 {np.percentile(ms, 50):.2f} ms · p90 {np.percentile(ms, 90):.2f} ms · "
        f"p99 {np.percentile(ms, 99):.2f} ms · max {ms.max():.2f} ms · n={len(ms)}"
    )


def serve_http(runtime: Runtime, project_id: int, n_users: int, requests: int) -> str:
    import httpx
    import uvicorn

    from flywheel.app import create_app
    from flywheel.auth import service as auth_service
    from flywheel.identity import service as identity

    sample = 1000
    username = f"bench{int(time.time())}"
    with runtime.db.unit_of_work() as session:
        ids = identity.resolve_many(
            session=session,
            project_id=project_id,
            key="$identity_login_id",
            values=[f"bench-{i}" for i in range(sample)],
            now=NOW,
        )
        auth_service.create_user(
            session=session, username=username, password="Sv7-quiet-orchid-lamp", role="admin"
        )
    assert max(ids.values()) <= n_users, "identity ids must fall inside the customers table"
    app = create_app(runtime=runtime, workers=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            token = client.post(
                "/api/v1/auth/login",
                json={"username": username, "password": "Sv7-quiet-orchid-lamp"},
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            logins = list(ids)
            rng = np.random.default_rng(9)
            samples: list[float] = []
            for i in range(requests + 100):
                login = logins[int(rng.integers(0, len(logins)))]
                started = time.perf_counter()
                answer = client.get(
                    "/api/v1/recommend/home", params={"user": login}, headers=headers
                )
                elapsed = time.perf_counter() - started
                assert answer.status_code == 200, answer.text
                if i >= 100:
                    samples.append(elapsed)
        return percentiles(samples)
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--http-requests", type=int, default=1_000)
    parser.add_argument("--random-factors", action="store_true")
    args = parser.parse_args()
    fresh = args.data_dir is None
    folder = args.data_dir or Path(tempfile.mkdtemp(prefix="fw-rec-serve-"))
    figures: dict[str, float] = {}
    runtime = open_runtime(Settings(env="test", data_dir=folder, log_level="WARNING"))
    try:
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name="default").id
        if fresh:
            build(runtime, project_id, args, folder)
        with timed("impression counters (200,000 rows)", figures):
            add_impressions(runtime, project_id, args.users, args.items)
        models_root = service.models_dir(folder)
        with (
            timed("first request (loads the serving index)", figures),
            runtime.db.unit_of_work() as session,
        ):
            service.recommend(
                session=session,
                warehouse=runtime.warehouse,
                models_root=models_root,
                project_id=project_id,
                scene="home",
                user_id=1,
                now=NOW,
            )
        rng = np.random.default_rng(10)
        samples: list[float] = []
        filled: list[float] = []
        served = 0
        for i in range(args.requests + 200):
            user_id = int(rng.integers(1, args.users + 1))
            started = time.perf_counter()
            with runtime.db.unit_of_work() as session:
                answer = service.recommend(
                    session=session,
                    warehouse=runtime.warehouse,
                    models_root=models_root,
                    project_id=project_id,
                    scene="home",
                    user_id=user_id,
                    now=NOW,
                )
            elapsed = time.perf_counter() - started
            served += len(answer.items)
            if i >= 200:
                samples.append(elapsed)
                if answer.items:
                    filled.append(elapsed)
        service_figures = percentiles(samples)
        # the pipeline alone (no profile lookup, no SQL)
        from flywheel.recommend import index

        snap = index.serving_index(runtime.warehouse, models_root, project_id).snapshot(
            lambda: None
        )
        strategy = service.BUILTIN_STRATEGIES["hybrid"][1]
        engine_samples: list[float] = []
        for _ in range(args.requests):
            user_id = int(rng.integers(1, args.users + 1))
            started = time.perf_counter()
            engine.recommend(
                catalog=snap.catalog,
                model=snap.model,
                customer=engine.Customer(user_id=user_id, max_level=int(rng.integers(0, 6))),
                strategy=strategy,
                n=10,
                today=NOW.date(),
            )
            engine_samples.append(time.perf_counter() - started)
        try:
            http_figures = serve_http(runtime, project_id, args.users, args.http_requests)
        except Exception as exc:  # the HTTP leg depends on the whole app importing
            http_figures = f"not measured: {type(exc).__name__}: {exc}"
        print("RESULTS")
        print(
            f"  {args.users:,} customers × {args.items:,} products, model "
            f"{'random factors' if args.random_factors else 'trained'}"
            f"{' (reused ' + str(folder) + ')' if not fresh else ''}"
        )
        print(f"  service.recommend (filters on): {service_figures}")
        print(f"  … answers with items only: {percentiles(filled)}")
        print(
            f"  avg items per answer: {served / (args.requests + 200):.1f} (customers without a"
            " valid assessment get none: every product carries a risk level)"
        )
        print(f"  engine only: {percentiles(engine_samples)}")
        print(f"  HTTP GET /api/v1/recommend/home: {http_figures}")
        print(f"  peak RSS: {peak_rss_mib():.0f} MiB")
    finally:
        runtime.close()
        if fresh:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
