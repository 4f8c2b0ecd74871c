"""A small NGSI-LD (ETSI GS CIM 009) client over httpx.

It speaks only the standard API, so it works against the reference server in ``cityos/``,
FIWARE Orion-LD or any conformant broker behind an API gateway. It never logs bodies
or tokens.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import httpx

from app.platform._errors import (
    NotAuthorised,
    PlatformError,
    PlatformUnavailable,
    from_response,
)
from protocol.entities import CORE_CONTEXT, Entity, validate

_API = "/ngsi-ld/v1"
PAGE_LIMIT = 1000  # Orion-LD's maximum page size


class Credentials(Protocol):
    """Where the client gets its bearer token; ``app.identity.Session`` implements it."""

    def access_token(self) -> str | None:
        """A token valid now (refreshing first if it is about to expire), or None when logged out."""

    def refresh_after_rejection(self) -> str | None:
        """The server said 401: refresh once and return the new token, or None."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Outcome of one batch upsert: ids stored, and ids refused with the broker's reason."""

    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    id: str
    type: str
    deleted: bool
    modified_at: str | None
    entity: Entity | None  # None for a tombstone


@dataclass(frozen=True, slots=True)
class ChangePage:
    changes: list[Change]
    cursor: str  # opaque; send back as ``after``
    has_more: bool


@dataclass(frozen=True, slots=True)
class Page:
    entities: list[Entity]
    total: int | None  # NGSILD-Results-Count, when the broker sends it


class PlatformClient:
    """NGSI-LD broker client for one municipality (``NGSILD-Tenant``)."""

    def __init__(self, base_url: str, tenant: str, *, credentials: Credentials | None = None,
                 context: str = CORE_CONTEXT, timeout: float = 15.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.tenant = tenant
        self._credentials = credentials
        self._link = f'<{context}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
                                  headers={"Accept": "application/json", "NGSILD-Tenant": tenant})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes -----------------------------------------------------------------------
    def upsert(self, entities: Sequence[Entity]) -> BatchResult:
        """Create or replace ``entities`` in one request (POST entityOperations/upsert).

        Upsert by id is what makes retries safe: sending a batch twice stores each entity once.
        """
        if not entities:
            return BatchResult()
        for entity in entities:
            validate(entity)
        response = self._send("POST", f"{_API}/entityOperations/upsert", "upsert batch",
                              json=list(entities), headers={"Content-Type": "application/json", "Link": self._link})
        if response.status_code == 204:  # all updated, nothing to report
            return BatchResult(succeeded=[e["id"] for e in entities])
        body = _json(response)
        if isinstance(body, list):  # 201: ids created
            return BatchResult(succeeded=[e["id"] for e in entities])
        if isinstance(body, dict):  # 207: BatchOperationResult
            failed = {str(err.get("entityId")): _problem_text(err.get("error")) for err in body.get("errors", [])}
            return BatchResult(succeeded=[str(i) for i in body.get("success", [])], failed=failed)
        raise PlatformError(f"upsert batch: unexpected HTTP {response.status_code} body", status=response.status_code)

    def delete_entity(self, ident: str) -> bool:
        """Delete one entity; False if the broker did not have it."""
        try:
            self._send("DELETE", f"{_API}/entities/{ident}", f"delete {_kind(ident)}")
        except PlatformError as err:
            if err.status == 404:
                return False
            raise
        return True

    # -- reads ------------------------------------------------------------------------
    def get_entity(self, ident: str) -> Entity | None:
        try:
            response = self._send("GET", f"{_API}/entities/{ident}", f"get {_kind(ident)}",
                                  headers={"Link": self._link})
        except PlatformError as err:
            if err.status == 404:
                return None
            raise
        return _json(response)

    def query(self, entity_type: str, *, q: str | None = None, id_pattern: str | None = None,
              georel: str | None = None, geometry: str | None = None, coordinates: str | None = None,
              attrs: Sequence[str] = (), limit: int = PAGE_LIMIT, offset: int = 0) -> Page:
        """One page of ``GET /entities?type=&q=&georel=...`` (normalised representation)."""
        params: dict[str, Any] = {"type": entity_type, "limit": limit, "offset": offset, "count": "true"}
        optional = {"q": q, "idPattern": id_pattern, "georel": georel, "geometry": geometry,
                    "coordinates": coordinates, "attrs": ",".join(attrs) or None}
        params.update({k: v for k, v in optional.items() if v is not None})
        response = self._send("GET", f"{_API}/entities", f"query {entity_type}", params=params,
                              headers={"Link": self._link})
        body = _json(response)
        if not isinstance(body, list):
            raise PlatformError(f"query {entity_type}: expected a JSON array", status=response.status_code)
        count = response.headers.get("NGSILD-Results-Count")
        return Page(entities=body, total=int(count) if count and count.isdigit() else None)

    def iter_entities(self, entity_type: str, *, page_size: int = PAGE_LIMIT, **filters: Any) -> Iterator[Entity]:
        """Every matching entity, page by page."""
        offset = 0
        while True:
            page = self.query(entity_type, limit=page_size, offset=offset, **filters)
            yield from page.entities
            offset += len(page.entities)
            if len(page.entities) < page_size or (page.total is not None and offset >= page.total):
                return

    def changes(self, types: Sequence[str], after: str | None, limit: int = 1000) -> ChangePage:
        """One page of the platform's delta feed (cityos ``/cityos/v1/changes``), in commit order."""
        params: dict[str, Any] = {"type": ",".join(types), "limit": limit}
        if after:
            params["after"] = after
        body = _json(self._send("GET", "/cityos/v1/changes", "change feed", params=params))
        try:
            return ChangePage([Change(c["id"], c["type"], bool(c["deleted"]), c.get("modifiedAt"), c.get("entity"))
                               for c in body["changes"]], str(body["cursor"]), bool(body["hasMore"]))
        except (KeyError, TypeError):
            raise PlatformError("change feed: answer lacks changes/cursor/hasMore") from None

    # -- consent registry (cityos /cityos/v1/consents) -------------------------------------------
    def grant_consent(self, category: str, purpose: str, recipient: str) -> None:
        self._send("POST", "/cityos/v1/consents", f"grant consent {category}",
                   json={"category": category, "purpose": purpose, "recipient": recipient})

    def revoke_consent(self, category: str, purpose: str, recipient: str) -> dict[str, Any]:
        """Withdraw a grant; the platform deletes the resident's data of that category."""
        response = self._send("POST", "/cityos/v1/consents/revoke", f"revoke consent {category}",
                              json={"category": category, "purpose": purpose, "recipient": recipient})
        return _json(response)

    def consents(self) -> list[dict[str, Any]]:
        """The resident's active grants as the platform records them."""
        return _json(self._send("GET", "/cityos/v1/consents", "list consents"))

    def consent_history(self) -> list[dict[str, Any]]:
        """Every grant and revoke the platform recorded for the resident, oldest first."""
        return _json(self._send("GET", "/cityos/v1/consents/history", "consent history"))

    # -- transport ----------------------------------------------------------------------

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        token = self._credentials.access_token() if self._credentials else None
        response = self._once(method, path, what, token, **kwargs)
        if response.status_code == 401 and self._credentials is not None:
            token = self._credentials.refresh_after_rejection()  # expired mid-batch: refresh once
            if token is not None:
                response = self._once(method, path, what, token, **kwargs)
        if response.status_code >= 400:
            raise from_response(response, what)
        return response

    def _once(self, method: str, path: str, what: str, token: str | None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as err:
            raise PlatformUnavailable(f"{what}: timed out ({type(err).__name__})") from None
        except httpx.TransportError as err:
            raise PlatformUnavailable(f"{what}: platform unreachable ({type(err).__name__})") from None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PlatformError(f"HTTP {response.status_code}: body is not JSON", status=response.status_code) from None


def _problem_text(problem: Any) -> str:
    if isinstance(problem, dict):
        return str(problem.get("title") or problem.get("type") or "error") + (
            f": {problem['detail']}" if problem.get("detail") else "")
    return str(problem)


def _kind(ident: str) -> str:
    """Entity type from its URN, for error messages that must not carry personal ids."""
    parts = ident.split(":")
    return parts[2] if len(parts) > 3 and parts[:2] == ["urn", "ngsi-ld"] else "entity"


__all__ = ["BatchResult", "Change", "ChangePage", "Credentials", "NotAuthorised", "Page", "PlatformClient", "PlatformError",
           "PlatformUnavailable"]
