"""ProblemDetails (RFC 7807 / NGSI-LD §5.5.2) errors: raise ``Problem``, the app renders it."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cityos.jsonsafe import JSONResponse

NGSI = "https://uri.etsi.org/ngsi-ld/errors/"
INVALID_REQUEST = NGSI + "InvalidRequest"
BAD_REQUEST_DATA = NGSI + "BadRequestData"
ALREADY_EXISTS = NGSI + "AlreadyExists"
NOT_FOUND = NGSI + "ResourceNotFound"
NOT_SUPPORTED = NGSI + "OperationNotSupported"
INTERNAL = NGSI + "InternalError"
NOT_ACCEPTABLE = "urn:cityos:problem:not-acceptable"
UNSUPPORTED_MEDIA_TYPE = "urn:cityos:problem:unsupported-media-type"
MEDIA_TYPE = "application/problem+json"  # RFC 9457 §3
CONSENT_REQUIRED = "urn:cityos:problem:consent-required"
FORBIDDEN = "urn:cityos:problem:forbidden"
UNAUTHORIZED = "urn:cityos:problem:unauthorized"
TOO_LARGE = "urn:cityos:problem:payload-too-large"
RATE_LIMITED = "urn:cityos:problem:rate-limited"

_TITLES = {
    INVALID_REQUEST: "Invalid request",
    BAD_REQUEST_DATA: "Bad request data",
    ALREADY_EXISTS: "Already exists",
    NOT_FOUND: "Resource not found",
    NOT_SUPPORTED: "Operation not supported",
    CONSENT_REQUIRED: "Consent required",
    FORBIDDEN: "Forbidden",
    UNAUTHORIZED: "Unauthorized",
    TOO_LARGE: "Payload too large",
    RATE_LIMITED: "Too many requests",
    INTERNAL: "Internal error",
    NOT_ACCEPTABLE: "Not acceptable",
    UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
}


class ProblemDetails(BaseModel):
    """The error body every cityos API error uses (OpenAPI schema)."""

    type: str
    title: str
    status: int
    detail: str


class Problem(Exception):
    def __init__(self, status: int, type_: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.type, self.detail, self.headers = status, type_, detail, headers or {}

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "title": _TITLES.get(self.type, "Error"), "status": self.status, "detail": self.detail}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers, media_type=MEDIA_TYPE)


def bad_data(detail: str) -> Problem:
    return Problem(400, BAD_REQUEST_DATA, detail)


def invalid(detail: str) -> Problem:
    return Problem(400, INVALID_REQUEST, detail)


def not_found(detail: str) -> Problem:
    return Problem(404, NOT_FOUND, detail)


def forbidden(detail: str) -> Problem:
    return Problem(403, FORBIDDEN, detail)


def unauthorized(detail: str, error: str = "invalid_token") -> Problem:
    return Problem(401, UNAUTHORIZED, detail, {"WWW-Authenticate": f'Bearer error="{error}"'})


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries: these statuses answer with ProblemDetails."""
    return {status: {"content": {MEDIA_TYPE: {"schema": ProblemDetails.model_json_schema()}}, "description": "ProblemDetails"} for status in statuses}
