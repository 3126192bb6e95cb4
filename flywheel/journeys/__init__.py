"""Journeys (流程画布): definitions, validation, versions and the engine that moves customers."""
