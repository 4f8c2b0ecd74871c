"""The one HTTP connection of a platform link, shared by every feature client."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import httpx

from app.platform._errors import PlatformError, from_response, transport_error


class PlatformHttp:
    """One long-lived ``httpx.Client`` for one platform (``NGSILD-Tenant`` set by default).

    ``auth`` is usually ``Session.auth`` (bearer + refresh + one retry). ``close()`` ends the
    link's connections (logout, unlink); a later request opens a fresh client.
    """

    def __init__(self, base_url: str, tenant: str | None = None, *, auth: httpx.Auth | None = None,
                 timeout: float = 15.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url, self.tenant = base_url.rstrip("/"), tenant
        self._options: dict[str, Any] = {"auth": auth, "timeout": timeout, "transport": transport}
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """Send one request; any error answer or transport failure raises a ``PlatformError``.
        ``what`` names the step in messages (never ids, bodies or tokens)."""
        try:
            response = self._http().request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise transport_error(err, what) from None
        if response.status_code >= 400:
            raise from_response(response, what)
        return response

    def json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """``call`` and decode the JSON answer; None for 204 No Content."""
        response = self.call(method, path, what, **kwargs)
        return None if response.status_code == 204 else decode_json(response, what)

    @contextmanager
    def stream(self, method: str, path: str, what: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """``call`` for a long answer read as it arrives (server-sent events); transport failures
        while reading raise ``PlatformUnavailable`` too."""
        try:
            with self._http().stream(method, path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise from_response(response, what)
                yield response
        except httpx.TransportError as err:
            raise transport_error(err, what) from None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Accept": "application/json", **({"NGSILD-Tenant": self.tenant} if self.tenant else {})}
                self._client = httpx.Client(base_url=self.base_url, headers=headers, **self._options)
            return self._client


def decode_json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PlatformError(f"{what}: HTTP {response.status_code} answer is not JSON",
                            status=response.status_code) from None
