"""What every ``flywheel`` command shares: the ``--data-dir`` option, settings, and a runtime
whose domain errors end the command with a one-line message and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from flywheel.config import Settings
from flywheel.core.errors import FlywheelError
from flywheel.runtime import Runtime

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (default $FLYWHEEL_DATA_DIR or ./flywheel-data)."),
]

errors = Console(stderr=True)


def settings_for(data_dir: Path | None) -> Settings:
    """Settings from the environment, with ``--data-dir`` winning when given."""
    return Settings() if data_dir is None else Settings(data_dir=data_dir)


def fail(exc: FlywheelError) -> NoReturn:
    """Print the domain error's message and exit 2."""
    errors.print(f"[red]error:[/red] {exc.message}")
    raise typer.Exit(2) from exc


@contextmanager
def cli_runtime(data_dir: Path | None) -> Iterator[Runtime]:
    """Open the stores (migrating them) for one command; close them however it ends.

    A :class:`FlywheelError` — while opening (e.g. the warehouse held by a running server) or
    inside the block — becomes :func:`fail`.
    """
    from flywheel.bootstrap import open_runtime

    try:
        runtime = open_runtime(settings_for(data_dir))
    except FlywheelError as exc:
        fail(exc)
    try:
        yield runtime
    except FlywheelError as exc:
        fail(exc)
    finally:
        runtime.close()
