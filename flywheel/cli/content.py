"""Placeholder: `flywheel content …`."""

from __future__ import annotations

import typer

content_app = typer.Typer(no_args_is_help=True)
