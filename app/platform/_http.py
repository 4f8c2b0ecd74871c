"""The one HTTP connection of a platform link, shared by every feature client."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

import httpx

from app.platform._errors import PlatformError, PlatformUnavailable, from_response, transport_error

_MAX_VALIDATED = 32


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
        self._validated: dict[str, tuple[str, Any]] = {}  # URL -> (ETag, decoded answer), oldest first

    def call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """Send one request; any error answer or transport failure raises a ``PlatformError``.
        ``what`` names the step in messages (never ids, bodies or tokens)."""
        client = self._http()
        with _failures(client, what):
            response = client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise from_response(response, what)
        return response

    def json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """``call`` and decode the JSON answer; None for 204 No Content."""
        response = self.call(method, path, what, **kwargs)
        return None if response.status_code == 204 else decode_json(response, what)

    def get_json_revalidated(self, path: str, what: str, params: dict[str, Any], *, anonymous: bool = False) -> Any:
        """GET a cacheable answer with ``If-None-Match`` when an earlier one carried an ETag;
        a ``304`` gives that earlier answer back (the platform did not even ask its database).
        ``anonymous``: public data, asked without the account's token, so that the platform's
        memory and a reverse proxy's cache can answer it (a request with a token bypasses both)."""
        key = path + "?" + "&".join(f"{k}={params[k]}" for k in sorted(params))
        kept = self._validated.get(key)
        extra: dict[str, Any] = {"auth": None} if anonymous else {}
        response = self.call("GET", path, what, params=params, headers={"If-None-Match": kept[0]} if kept else None, **extra)
        if response.status_code == 304 and kept is not None:
            return kept[1]
        body = decode_json(response, what)
        etag = response.headers.get("etag")
        with self._lock:
            if etag:
                self._validated[key] = (etag, body)
                while len(self._validated) > _MAX_VALIDATED:
                    self._validated.pop(next(iter(self._validated)))
            else:
                self._validated.pop(key, None)
        return body

    @contextmanager
    def stream(self, method: str, path: str, what: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """``call`` for a long answer read as it arrives (server-sent events); transport failures
        while reading raise ``PlatformUnavailable`` too."""
        client = self._http()
        with _failures(client, what), client.stream(method, path, **kwargs) as response:
            if response.status_code >= 400:
                response.read()
                raise from_response(response, what)
            yield response

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


@contextmanager
def _failures(client: httpx.Client, what: str) -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as err:
        raise transport_error(err, what) from None
    except RuntimeError:  # httpx refuses a client that close() (logout) shut meanwhile
        if not client.is_closed:
            raise
        raise PlatformUnavailable(f"{what}: the link was closed while sending") from None


def decode_json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PlatformError(f"{what}: HTTP {response.status_code} answer is not JSON",
                            status=response.status_code) from None
