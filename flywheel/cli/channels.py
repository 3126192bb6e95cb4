"""`flywheel channels …` (being built)."""

from __future__ import annotations

import typer

channels_app = typer.Typer(no_args_is_help=True)
