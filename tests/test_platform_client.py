"""NGSI-LD entity encoding (no server needed)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from protocol.entities import (
    EntityError,
    entity_id,
    geo_point,
    iso_utc,
    make_entity,
    prop,
    rel,
    simplified,
    validate,
)


def test_normalised_entity_shape():
    seen = datetime(2024, 6, 1, 9, 30, tzinfo=timezone(timedelta(hours=9)))
    entity = make_entity("SafetyStatus", "p-1", "352021", status=prop("safe", observed_at=seen),
                         location=geo_point(33.95, 131.25), shelter=rel("urn:ngsi-ld:EvacuationShelter:35202-001"),
                         needs=["infant", "pet"], note=None)
    assert entity == {
        "id": "urn:ngsi-ld:SafetyStatus:p-1", "type": "SafetyStatus",
        "municipalityCode": {"type": "Property", "value": "352021"},
        "status": {"type": "Property", "value": "safe", "observedAt": "2024-06-01T00:30:00.000Z"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [131.25, 33.95]}},
        "shelter": {"type": "Relationship", "object": "urn:ngsi-ld:EvacuationShelter:35202-001"},
        "needs": {"type": "Property", "value": ["infant", "pet"]},
    }
    validate(entity)
    assert simplified(entity)["location"] == {"type": "Point", "coordinates": [131.25, 33.95]}
    assert simplified(entity)["shelter"] == "urn:ngsi-ld:EvacuationShelter:35202-001"


@pytest.mark.parametrize("call, message", [
    (lambda: entity_id("Safety Status", "x"), "entity type"),
    (lambda: entity_id("SafetyStatus", "a b"), "local id"),
    (lambda: entity_id("SafetyStatus", ""), "local id"),
    (lambda: make_entity("SafetyStatus", "x", "35202"), "6-digit"),
    (lambda: geo_point(131.25, 33.95), "outside"),
    (lambda: rel("EvacuationShelter:1"), "URN"),
    (lambda: iso_utc(datetime(2024, 1, 1)), "timezone"),
    (lambda: validate({"id": "urn:ngsi-ld:T:1", "type": "T", "a": {"type": "Relationship", "value": 1}}), "'object'"),
    (lambda: validate({"id": "x", "type": "T"}), "not a URN"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(EntityError, match=message):
        call()
