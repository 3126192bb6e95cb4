"""Offline evaluation: the split, and models beating popularity on real MovieLens data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flywheel.recommend import evaluation


def test_split_holds_out_each_users_latest_fifth() -> None:
    users = np.repeat(np.arange(3, dtype=np.int64), [10, 4, 5])
    times = np.concatenate([np.arange(10)[::-1], np.arange(4), np.arange(5)]).astype(np.int64)
    items = [("movie", f"{u}-{t}") for u, t in zip(users, times, strict=True)]
    log = evaluation.EventLog(
        users=users, items=items, weights=np.ones(19, np.float32), times=times, names={}
    )
    train, test = evaluation.split(log)
    assert test[0] == {("movie", "0-8"), ("movie", "0-9")}  # the two latest of ten
    assert 1 not in test  # four interactions: too few to hold any out
    assert test[2] == {("movie", "2-4")}
    assert int((~train).sum()) == 3


def test_metrics() -> None:
    relevant = {("m", "a"), ("m", "b")}
    precision, recall, ndcg = evaluation._metrics([("m", "a"), ("m", "x")], relevant, 2)
    assert (precision, recall) == (0.5, 0.5)
    assert ndcg == pytest.approx(1 / (1 + 1 / np.log2(3)))


@pytest.mark.shared_data
def test_models_beat_popularity_on_movielens_100k(shared_data: Path) -> None:
    log = evaluation.load_dataset("movielens-100k", data_root=shared_data)
    rows = {r.strategy: r for r in evaluation.evaluate(log, dataset="movielens-100k")}
    assert rows["popularity"].users == 943
    baseline = rows["popularity"].ndcg
    for strategy in ("als", "bpr", "item_to_item", "hybrid"):
        assert rows[strategy].ndcg > baseline, (strategy, rows[strategy], baseline)
        assert rows[strategy].coverage > rows["popularity"].coverage
