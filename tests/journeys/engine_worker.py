"""Runs the journey engine until idle in its own process (the kill -9 test's victim).

python tests/journeys/engine_worker.py DATA_DIR CHUNK
"""

from __future__ import annotations

import sys
from pathlib import Path

from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.journeys import engine


class Reporting(engine.Engine):
    """Prints ``step`` after every committed segment chunk (the test kills between them)."""

    def _segment_chunk(self, version_id: int, node_id: str) -> tuple[bool, int]:
        result = super()._segment_chunk(version_id, node_id)
        sys.stdout.write("step\n")
        sys.stdout.flush()
        return result


def main() -> None:
    data_dir, chunk = Path(sys.argv[1]), int(sys.argv[2])
    engine.ENTRY_CHUNK = chunk
    runtime = open_runtime(Settings(env="test", data_dir=data_dir, log_level="WARNING"))
    try:
        worker = Reporting(runtime)
        while worker.run_once():
            sys.stdout.write("step\n")
            sys.stdout.flush()
    finally:
        runtime.close()
    sys.stdout.write("idle\n")


if __name__ == "__main__":
    main()
