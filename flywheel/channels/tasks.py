"""Background loops of the channels domain."""

from __future__ import annotations

from flywheel.core.loops import LoopService
from flywheel.runtime import Runtime


def build_loops(runtime: Runtime) -> list[LoopService]:  # noqa: ARG001
    """The channels loops."""
    return []
