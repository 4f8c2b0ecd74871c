"""Platform errors, built from RFC 7807 ProblemDetails bodies when the broker sends one."""
from __future__ import annotations

from typing import Any

import httpx


class PlatformError(Exception):
    """The platform answered with an error, or could not be reached.

    ``retryable`` tells the sync engine whether waiting and trying again can help
    (network down, 5xx, 408/429) or whether the request itself is wrong.
    """

    def __init__(self, message: str, *, status: int | None = None, problem_type: str | None = None,
                 detail: str | None = None, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the server asked us to wait (429/503 Retry-After)
        self.status = status
        self.problem_type = problem_type
        self.detail = detail
        self.retryable = retryable


class PlatformUnavailable(PlatformError):
    """No HTTP answer at all: connection refused, reset or timed out."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class NotAuthorised(PlatformError):
    """401 that a token refresh did not cure: the resident has to log in (again)."""


def from_response(response: httpx.Response, what: str) -> PlatformError:
    status = response.status_code
    problem: dict[str, Any] = {}
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
            problem = body if isinstance(body, dict) else {}
        except ValueError:
            problem = {}
    title = str(problem.get("title") or response.reason_phrase or "error")
    detail = problem.get("detail")
    message = f"{what}: HTTP {status} {title}" + (f" — {detail}" if detail else "")
    cls = NotAuthorised if status == 401 else PlatformError
    retry_after = response.headers.get("Retry-After", "")
    return cls(message, status=status, problem_type=problem.get("type"), detail=detail,
               retryable=status >= 500 or status in (408, 425, 429),
               retry_after=float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None)
