"""What every route needs: the store, the keys, the settings, and who is calling."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request

from cityos import jsonsafe
from cityos.oidc import Caller, Keys, Provider
from cityos.problems import UNSUPPORTED_MEDIA_TYPE, Problem, bad_data, invalid, unauthorized
from cityos.settings import Settings
from cityos.store import Store

if TYPE_CHECKING:
    from cityos.hotpath import HotPath

JSON_TYPES = ("application/json", "application/ld+json")


@dataclass
class Platform:
    settings: Settings
    store: Store
    keys: Keys
    provider: Provider
    issuer: str
    hot: HotPath | None = None  # one-statement writes on PostgreSQL (cityos/hotpath.py)

    @property
    def context_url(self) -> str:
        return f"{self.issuer}/ngsi-ld/v1/contexts/mamori.jsonld"

    @property
    def link_header(self) -> str:
        return f'<{self.context_url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'

    def caller(self, request: Request) -> Caller | None:
        """The verified caller, None without an Authorization header; 401 for a bad token."""
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Authorization must be 'Bearer <access token>'", error="invalid_request")
        return self.provider.verify(token.strip())


def platform_of(request: Request) -> Platform:
    return request.app.state.platform


async def read_json(request: Request) -> tuple[Any, bool]:
    """The request's JSON body and whether @context may sit in it (application/ld+json)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise Problem(415, UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be one of {', '.join(JSON_TYPES)}, got {media_type[:60] or 'none'!r}")
    raw = await request.body()
    if not raw:
        raise invalid("the request body is empty; a JSON document is required")
    try:
        return jsonsafe.loads(raw), media_type == "application/ld+json"
    except jsonsafe.JSONValueError as exc:
        raise bad_data(f"the body holds a value that is not accepted: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid(f"the body is not valid JSON: {exc}") from None


def header_tenant(request: Request) -> str | None:
    return request.headers.get("ngsild-tenant")


def int_param(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise bad_data(f"{name} must be an integer, got {value[:40]!r}") from None
    if not low <= number <= high:
        raise bad_data(f"{name} must be between {low} and {high}, got {number}")
    return number
