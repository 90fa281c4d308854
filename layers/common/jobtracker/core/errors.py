"""Domain errors: what a use case refuses, and why. They know nothing of HTTP; the API edge
(jobtracker.api) maps each kind to a status code and the one JSON error shape."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"

    def __init__(
        self, message: str, fields: list[dict[str, Any]] | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    """The request is well-formed but its content cannot be accepted."""

    code = "validation_error"


class MalformedInput(DomainError):
    """Part of the request is not what the API hands out or accepts (a token, a header)."""

    code = "validation_error"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """The request contradicts the job's state or an earlier request."""

    code = "conflict"


def invalid(field: str, message: str, code: str | None = None) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", [{"field": field, "message": message}], code)
