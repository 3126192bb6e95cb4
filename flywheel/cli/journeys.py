"""`flywheel journeys …` (being built)."""

from __future__ import annotations

import typer

journeys_app = typer.Typer(no_args_is_help=True)
