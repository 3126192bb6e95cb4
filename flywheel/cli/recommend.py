"""Placeholder: `flywheel recommend …`."""

from __future__ import annotations

import typer

recommend_app = typer.Typer(no_args_is_help=True)
