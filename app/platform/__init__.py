"""Client for the city data platform (都市OS): one HTTP link, NGSI-LD broker, consent registry.

Public surface::

    http = PlatformHttp("https://city.example", tenant="352021", auth=session.auth)
    client = PlatformClient(http)                      # NGSI-LD entities and consents
    client.upsert([make_entity("SafetyStatus", pid, "352021", status="safe")])   # protocol.entities
    for shelter in client.iter_entities("EvacuationShelter", q='status=="open"'): ...

Every feature client (check-in, points, family, rides) takes the same ``PlatformHttp``: one
long-lived ``httpx.Client`` per platform link, bearer auth with one refresh-and-retry on 401
(``BearerAuth``), and one mapping of failures to ``PlatformError`` and its subclasses.
"""
from app.platform._auth import BearerAuth, Credentials
from app.platform._client import BatchResult, Change, ChangePage, Page, PlatformClient
from app.platform._errors import (
    NotAuthorised,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
    Refused,
    ServerError,
)
from app.platform._http import PlatformHttp

__all__ = [
    "BatchResult",
    "BearerAuth",
    "Change",
    "ChangePage",
    "Credentials",
    "NotAuthorised",
    "Page",
    "PlatformClient",
    "PlatformError",
    "PlatformHttp",
    "PlatformUnavailable",
    "RateLimited",
    "Refused",
    "ServerError",
]
