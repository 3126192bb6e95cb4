"""`flywheel playbooks …` (being built)."""

from __future__ import annotations

import typer

playbooks_app = typer.Typer(no_args_is_help=True)
