"""The one mapping from platform answers to typed errors, used by every feature client.

RFC 9457 ProblemDetails bodies (``type``, ``title``, ``detail``, and the ride service's
``code``) are read when the platform sends one; messages never carry bodies or tokens.
"""
from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class PlatformError(Exception):
    """The platform answered with an error, or could not be reached.

    ``retryable`` tells the sync engine whether waiting and trying again can help
    (network down, 5xx, 408/425/429) or whether the request itself is wrong.
    """

    def __init__(self, message: str, *, status: int | None = None, problem_type: str | None = None,
                 detail: str | None = None, code: str | None = None, retryable: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem_type = problem_type
        self.detail = detail
        self.code = code  # the ride service's machine-readable reason, when given
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the server asked us to wait (429/503 Retry-After)


class PlatformUnavailable(PlatformError):
    """No HTTP answer at all: connection refused, reset or timed out."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class Refused(PlatformError):
    """A 4xx answer: the request is wrong for the platform (sending it again will not help,
    except 408/425 which are marked retryable)."""


class NotAuthorised(Refused):
    """401 that a token refresh did not cure: the resident has to log in (again)."""


class RateLimited(PlatformError):
    """429: the platform asks to slow down; ``retry_after`` says for how long when it said so."""


class ServerError(PlatformError):
    """5xx: the platform failed; retry later (``retry_after`` set from a 503's Retry-After)."""


def transport_error(err: httpx.TransportError, what: str) -> PlatformUnavailable:
    kind = "timed out" if isinstance(err, httpx.TimeoutException) else "platform unreachable"
    return PlatformUnavailable(f"{what}: {kind} ({type(err).__name__})")


def from_response(response: httpx.Response, what: str) -> PlatformError:
    """The typed error for an answer with status >= 400."""
    status = response.status_code
    problem = _problem(response)
    title = str(problem.get("title") or response.reason_phrase or "error")
    detail = problem.get("detail")
    message = f"{what}: HTTP {status} {title}" + (f" — {detail}" if detail else "")
    cls: type[PlatformError] = (NotAuthorised if status == 401 else RateLimited if status == 429
                                else ServerError if status >= 500 else Refused)
    code = problem.get("code")
    return cls(message, status=status, problem_type=problem.get("type"), detail=str(detail) if detail else None,
               code=str(code) if code is not None else None,
               retryable=status >= 500 or status in (408, 425, 429),
               retry_after=retry_after(response.headers.get("Retry-After")))


def retry_after(value: str | None) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time()) if moment.tzinfo else None


def _problem(response: httpx.Response) -> dict[str, Any]:
    if "json" not in response.headers.get("content-type", ""):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
