"""A resident's one-entity upsert: on PostgreSQL one statement (cityos/hotpath.py), on SQLite the
general path — the same answers, the same stored rows, the same change feed either way."""
from __future__ import annotations

import uuid

import httpx

NGSI = "/ngsi-ld/v1"
UPSERT = NGSI + "/entityOperations/upsert"
CONSENTS = "/cityos/v1/consents"


def _status(entity_id: str, value: str = "safe", **extra: dict) -> dict:
    return {"id": entity_id, "type": "SafetyStatus", "status": {"type": "Property", "value": value}, **extra}


def _grant(server, headers, category: str) -> None:
    answer = httpx.post(server.base_url + CONSENTS, json={"category": category, "purpose": "disaster_response", "recipient": "city"}, headers=headers)
    assert answer.status_code in (200, 201), answer.text


def _revoke(server, headers, category: str) -> None:
    httpx.post(server.base_url + CONSENTS + "/revoke", json={"category": category, "purpose": "disaster_response", "recipient": "city"},
               headers=headers)


def _upsert(server, headers, entities: list[dict], params: dict | None = None) -> httpx.Response:
    return httpx.post(server.base_url + UPSERT, json=entities, headers=headers, params=params)


def test_create_replace_and_recreate_after_delete(server, auth):
    me = auth("ube-resident-1")
    _grant(server, me, "safety_status")
    entity_id = f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}"
    created = _upsert(server, me, [_status(entity_id)])
    assert created.status_code == 201 and created.json() == [entity_id]
    assert created.headers["link"].startswith("<") and created.headers["content-type"] == "application/json"
    stored = httpx.get(server.base_url + NGSI + f"/entities/{entity_id}", params={"options": "sysAttrs"}, headers=me).json()
    assert stored["status"]["value"] == "safe" and stored["municipalityCode"]["value"] == "352021"
    assert stored["createdAt"] == stored["modifiedAt"]

    replaced = _upsert(server, me, [_status(entity_id, "needs_help")])  # the outbox resending a newer answer
    assert replaced.status_code == 204 and replaced.content == b"" and replaced.headers["link"].startswith("<")
    again = httpx.get(server.base_url + NGSI + f"/entities/{entity_id}", params={"options": "sysAttrs"}, headers=me).json()
    assert again["status"]["value"] == "needs_help" and again["createdAt"] == stored["createdAt"] < again["modifiedAt"]

    assert httpx.delete(server.base_url + NGSI + f"/entities/{entity_id}", headers=me).status_code == 204
    recreated = _upsert(server, me, [_status(entity_id, "safe")])  # a tombstone of one's own: created anew
    assert recreated.status_code == 201 and recreated.json() == [entity_id]
    fresh = httpx.get(server.base_url + NGSI + f"/entities/{entity_id}", params={"options": "sysAttrs"}, headers=me).json()
    assert fresh["createdAt"] == fresh["modifiedAt"] > again["modifiedAt"]


def test_what_it_may_not_write_is_answered_as_always(server, auth):
    me, other, staff = auth("ube-resident-1"), auth("ube-resident-2"), auth("ube-staff-1")
    _grant(server, me, "safety_status")
    _grant(server, other, "safety_status")
    entity_id = f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}"
    assert _upsert(server, me, [_status(entity_id)]).status_code == 201

    hijack = _upsert(server, other, [_status(entity_id, "needs_help")])  # someone else's id
    assert hijack.status_code == 207 and hijack.json()["errors"][0]["error"]["status"] == 403
    retyped = _upsert(server, me, [{"id": entity_id, "type": "HealthPointEvent", "points": {"type": "Property", "value": 1}}])
    assert retyped.status_code == 207 and retyped.json()["errors"][0]["error"]["status"] in (400, 403)
    foreign = _upsert(server, me, [_status(f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}", municipalityCode={"type": "Property", "value": "072028"})])
    assert foreign.status_code == 207 and foreign.json()["errors"][0]["error"]["status"] == 403
    anonymous = _upsert(server, {}, [_status(f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}")])
    assert anonymous.status_code == 207 and anonymous.json()["errors"][0]["error"]["status"] == 401
    assert httpx.get(server.base_url + NGSI + f"/entities/{entity_id}", headers=me).json()["status"]["value"] == "safe"

    # Without the consent nothing is stored; with location data the location consent is needed too.
    _revoke(server, other, "safety_status")
    refused_id = f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}"
    refused = _upsert(server, other, [_status(refused_id)])
    assert refused.status_code == 207 and refused.json()["errors"][0]["error"]["type"] == "urn:cityos:problem:consent-required"
    assert httpx.get(server.base_url + NGSI + f"/entities/{refused_id}", headers=other).status_code == 404
    point = {"type": "Point", "coordinates": [131.25, 33.95]}
    located = _status(f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}", location={"type": "GeoProperty", "value": point})
    _revoke(server, me, "location")
    no_location = _upsert(server, me, [located])
    assert no_location.status_code == 207 and "location" in no_location.json()["errors"][0]["error"]["detail"]
    _grant(server, me, "location")
    assert _upsert(server, me, [located]).status_code == 201
    near = httpx.get(server.base_url + NGSI + "/entities", headers=me,
                     params={"type": "SafetyStatus", "georel": "near;maxDistance==100", "geometry": "Point", "coordinates": "[131.25,33.95]"})
    assert located["id"] in [e["id"] for e in near.json()]  # lat/lon stored for georel

    # Staff registering a walk-in evacuee: held by the city, as before.
    card_id = f"urn:ngsi-ld:ShelterCheckIn:{uuid.uuid4().hex}"
    card = {"id": card_id, "type": "ShelterCheckIn", "needs": {"type": "Property", "value": ["infant"]}}
    assert _upsert(server, staff, [card]).status_code == 201
    assert httpx.get(server.base_url + NGSI + f"/entities/{card_id}", headers=me).status_code == 404


def test_answers_reach_the_owners_change_feed_once(server, auth):
    me = auth("ube-resident-2")
    _grant(server, me, "safety_status")
    feed = server.base_url + "/cityos/v1/changes"
    cursor = None
    while True:
        page = httpx.get(feed, params={"type": "SafetyStatus", **({"after": cursor} if cursor else {})}, headers=me).json()
        cursor = page["cursor"]
        if not page["hasMore"]:
            break
    written = [f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}" for _ in range(5)]
    for entity_id in written:
        assert _upsert(server, me, [_status(entity_id)]).status_code == 201
    assert _upsert(server, me, [_status(written[0], "needs_help")]).status_code == 204
    page = httpx.get(feed, params={"type": "SafetyStatus", "after": cursor}, headers=me).json()
    ids = [c["id"] for c in page["changes"]]
    assert ids == [*written[1:], written[0]]  # the replaced one moved to the end, once
    assert page["changes"][-1]["entity"]["status"]["value"] == "needs_help"
