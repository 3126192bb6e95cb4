"""Placeholder: `flywheel import events|profiles|items`."""

from __future__ import annotations

import typer

import_app = typer.Typer(no_args_is_help=True)
