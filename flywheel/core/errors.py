"""Domain errors. Each maps to one HTTP status in ``flywheel.app`` and nowhere else."""

from __future__ import annotations

from typing import Any


class FlywheelError(Exception):
    """Base of every error a service raises on purpose.

    ``status`` is the HTTP status the error becomes; ``code`` a stable machine-readable name;
    ``detail`` optional structured context (never PII).
    """

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class InvalidInput(FlywheelError):
    status = 400
    code = "invalid_input"


class Unauthenticated(FlywheelError):
    status = 401
    code = "unauthenticated"


class Forbidden(FlywheelError):
    status = 403
    code = "forbidden"


class NotFound(FlywheelError):
    status = 404
    code = "not_found"


class Conflict(FlywheelError):
    status = 409
    code = "conflict"


class PayloadTooLarge(FlywheelError):
    status = 413
    code = "payload_too_large"


class RateLimited(FlywheelError):
    status = 429
    code = "rate_limited"


class Unavailable(FlywheelError):
    status = 503
    code = "unavailable"
