"""The collector pause: resumes only when the last batch ends, and never turns on a collector
that was off."""

from __future__ import annotations

import gc
import threading

import pytest

from flywheel.core import memory
from flywheel.core.memory import gc_paused


def test_nested_and_concurrent_batches_share_one_pause() -> None:
    assert gc.isenabled()
    inside = threading.Event()
    release = threading.Event()

    def other_batch() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    with gc_paused():
        assert not gc.isenabled()
        worker = threading.Thread(target=other_batch)
        worker.start()
        assert inside.wait(5)
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block ended, the outer one has not
    assert not gc.isenabled()  # the other thread's batch still runs
    release.set()
    worker.join(5)
    assert gc.isenabled()


def test_a_collector_switched_off_stays_off() -> None:
    gc.disable()
    try:

        @gc_paused()
        def batch() -> int:
            return 1

        assert batch() == 1
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_batches_still_collect_when_overdue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "COLLECT_EVERY_SECONDS", 0.0)
    collected: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["generation"])

    gc.callbacks.append(watch)
    try:
        with gc_paused():  # a long batch of one thread …
            with gc_paused():  # … while another thread's batch ends
                pass
            assert collected == [2]  # a full collection although the collector is paused
            assert not gc.isenabled()
    finally:
        gc.callbacks.remove(watch)
    assert gc.isenabled()
