"""A small NGSI-LD (ETSI GS CIM 009) client over httpx.

It speaks only the standard API, so it works against the reference server in ``cityos/``,
FIWARE Orion-LD or any conformant broker behind an API gateway. It never logs bodies
or tokens.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.platform._errors import PlatformError
from app.platform._http import PlatformHttp, decode_json
from protocol.entities import CORE_CONTEXT, Entity, validate

_API = "/ngsi-ld/v1"
PAGE_LIMIT = 1000  # Orion-LD's maximum page size


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

    def __init__(self, http: PlatformHttp, *, context: str = CORE_CONTEXT) -> None:
        self._http = http
        self._link = f'<{context}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'

    # -- writes -----------------------------------------------------------------------
    def upsert(self, entities: Sequence[Entity]) -> BatchResult:
        """Create or replace ``entities`` in one request (POST entityOperations/upsert).

        Upsert by id is what makes retries safe: sending a batch twice stores each entity once.
        """
        if not entities:
            return BatchResult()
        for entity in entities:
            validate(entity)
        response = self._http.call("POST", f"{_API}/entityOperations/upsert", "upsert batch",
                                   json=list(entities), headers={"Content-Type": "application/json", "Link": self._link})
        if response.status_code == 204:  # all updated, nothing to report
            return BatchResult(succeeded=[e["id"] for e in entities])
        body = decode_json(response, "upsert batch")
        if isinstance(body, list):  # 201: ids created
            return BatchResult(succeeded=[e["id"] for e in entities])
        if isinstance(body, dict):  # 207: BatchOperationResult
            failed = {str(err.get("entityId")): _problem_text(err.get("error")) for err in body.get("errors", [])}
            return BatchResult(succeeded=[str(i) for i in body.get("success", [])], failed=failed)
        raise PlatformError(f"upsert batch: unexpected HTTP {response.status_code} body", status=response.status_code)

    def delete_entity(self, ident: str) -> bool:
        """Delete one entity; False if the broker did not have it."""
        try:
            self._http.call("DELETE", f"{_API}/entities/{ident}", f"delete {_kind(ident)}")
        except PlatformError as err:
            if err.status == 404:
                return False
            raise
        return True

    # -- reads ------------------------------------------------------------------------
    def get_entity(self, ident: str) -> Entity | None:
        try:
            return self._http.json("GET", f"{_API}/entities/{ident}", f"get {_kind(ident)}", headers={"Link": self._link})
        except PlatformError as err:
            if err.status == 404:
                return None
            raise

    def query(self, entity_type: str, *, q: str | None = None, id_pattern: str | None = None,
              georel: str | None = None, geometry: str | None = None, coordinates: str | None = None,
              attrs: Sequence[str] = (), limit: int = PAGE_LIMIT, offset: int = 0) -> Page:
        """One page of ``GET /entities?type=&q=&georel=...`` (normalised representation)."""
        params: dict[str, Any] = {"type": entity_type, "limit": limit, "offset": offset, "count": "true"}
        optional = {"q": q, "idPattern": id_pattern, "georel": georel, "geometry": geometry,
                    "coordinates": coordinates, "attrs": ",".join(attrs) or None}
        params.update({k: v for k, v in optional.items() if v is not None})
        response = self._http.call("GET", f"{_API}/entities", f"query {entity_type}", params=params,
                                   headers={"Link": self._link})
        body = decode_json(response, f"query {entity_type}")
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

    def changes(self, types: Sequence[str], after: str | None, limit: int = 1000, *, public: bool = False) -> ChangePage:
        """One page of the platform's delta feed (cityos ``/cityos/v1/changes``), in commit order.
        Asked again with the same cursor, an unchanged public feed answers 304 (``If-None-Match``).
        ``public``: only public entities are wanted, so ask without the token (cacheable)."""
        params: dict[str, Any] = {"type": ",".join(types), "limit": limit}
        if after:
            params["after"] = after
        body = self._http.get_json_revalidated("/cityos/v1/changes", "change feed", params, anonymous=public)
        try:
            return ChangePage([Change(c["id"], c["type"], bool(c["deleted"]), c.get("modifiedAt"), c.get("entity"))
                               for c in body["changes"]], str(body["cursor"]), bool(body["hasMore"]))
        except (KeyError, TypeError):
            raise PlatformError("change feed: answer lacks changes/cursor/hasMore") from None

    # -- consent registry (cityos /cityos/v1/consents) -------------------------------------------
    def grant_consent(self, category: str, purpose: str, recipient: str) -> None:
        self._http.call("POST", "/cityos/v1/consents", f"grant consent {category}",
                        json={"category": category, "purpose": purpose, "recipient": recipient})

    def revoke_consent(self, category: str, purpose: str, recipient: str) -> dict[str, Any]:
        """Withdraw a grant; the platform deletes the resident's data of that category."""
        return self._http.json("POST", "/cityos/v1/consents/revoke", f"revoke consent {category}",
                               json={"category": category, "purpose": purpose, "recipient": recipient})

    def consents(self) -> list[dict[str, Any]]:
        """The resident's active grants as the platform records them."""
        return self._http.json("GET", "/cityos/v1/consents", "list consents")

    def consent_history(self) -> list[dict[str, Any]]:
        """Every grant and revoke the platform recorded for the resident, oldest first."""
        return self._http.json("GET", "/cityos/v1/consents/history", "consent history")



def _problem_text(problem: Any) -> str:
    if isinstance(problem, dict):
        return str(problem.get("title") or problem.get("type") or "error") + (
            f": {problem['detail']}" if problem.get("detail") else "")
    return str(problem)


def _kind(ident: str) -> str:
    """Entity type from its URN, for error messages that must not carry personal ids."""
    parts = ident.split(":")
    return parts[2] if len(parts) > 3 and parts[:2] == ["urn", "ngsi-ld"] else "entity"
