"""Client for the city data platform (都市OS): NGSI-LD broker, consent registry.

Public surface::

    client = PlatformClient("https://city.example", tenant="352021", credentials=session)
    client.upsert([make_entity("SafetyStatus", pid, "352021", status="safe")])   # protocol.entities
    for shelter in client.iter_entities("EvacuationShelter", q='status=="open"'): ...
"""
from app.platform._client import (
                                    BatchResult,
                                    Change,
                                    ChangePage,
                                    Credentials,
                                    Page,
                                    PlatformClient,
)
from app.platform._errors import NotAuthorised, PlatformError, PlatformUnavailable

__all__ = [
                                    "BatchResult",
                                    "Change",
                                    "ChangePage",
                                    "Credentials",
                                    "NotAuthorised",
                                    "Page",
                                    "PlatformClient",
                                    "PlatformError",
                                    "PlatformUnavailable",
]
