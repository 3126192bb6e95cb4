"""Placeholder: `flywheel audit …`."""

from __future__ import annotations

import typer

audit_app = typer.Typer(no_args_is_help=True)
