"""Placeholder: demo loading."""

from __future__ import annotations

from rich.console import Console

from flywheel.runtime import Runtime


def load_demo_if_empty(runtime: Runtime, *, console: Console) -> None:
    """Load the demo brokerage into an empty data dir."""
