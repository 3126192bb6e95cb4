"""Placeholder: `flywheel segments …`."""

from __future__ import annotations

import typer

segments_app = typer.Typer(no_args_is_help=True)
