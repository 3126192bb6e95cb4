"""Placeholder: `flywheel tags …`."""

from __future__ import annotations

import typer

tags_app = typer.Typer(no_args_is_help=True)
