"""Bearer authentication for every platform request, as an ``httpx.Auth``."""
from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Protocol

import httpx


class Credentials(Protocol):
    """Where bearer tokens come from; ``app.identity.Session`` implements it."""

    def access_token(self) -> str | None:
        """A token valid now (refreshing first if it is about to expire), or None when logged out."""

    def refresh_after_rejection(self) -> str | None:
        """The server said 401: refresh now and return the new token, or None."""


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer`` from ``credentials``; on 401, one refresh and exactly one retry.

    Refresh tokens rotate and the provider revokes the whole chain when one is used twice,
    so concurrent requests rejected with the same token refresh once: the first one
    refreshes under the lock, the others find a newer token and retry with it.
    """

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._credentials.access_token()
        if token is None:  # logged out: public reads only
            yield request
            return
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        fresh = self._after_rejection(token)
        if fresh is not None:
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request

    def _after_rejection(self, rejected: str) -> str | None:
        with self._lock:
            current = self._credentials.access_token()
            if current is not None and current != rejected:
                return current  # another request refreshed while this one waited
            fresh = self._credentials.refresh_after_rejection()
        return fresh if fresh != rejected else None
