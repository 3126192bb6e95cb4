"""Placeholder: `flywheel demo`."""

from __future__ import annotations


def demo_command() -> None:
    """Generate and load the demo brokerage."""
