"""`flywheel compliance …` (being built)."""

from __future__ import annotations

import typer

compliance_app = typer.Typer(no_args_is_help=True)
