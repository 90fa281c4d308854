"""Errors the API turns into its one JSON error shape: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


def validation(field: str, message: str, status: int = 422) -> ApiError:
    return ApiError(
        status, "validation_error", f"{field}: {message}", [{"field": field, "message": message}]
    )
