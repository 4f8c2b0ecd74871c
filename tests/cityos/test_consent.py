"""Consent registry: grants enforced on writes, revocation deletes data, staff see only what was shared."""
from __future__ import annotations

import uuid

import httpx

NGSI = "/ngsi-ld/v1"
CONSENTS = "/cityos/v1/consents"


def _choice(category: str, purpose: str = "disaster_response", recipient: str = "city") -> dict[str, str]:
    return {"category": category, "purpose": purpose, "recipient": recipient}


def _status(entity_id: str, with_location: bool = False) -> dict:
    body = {"id": entity_id, "type": "SafetyStatus", "status": {"type": "Property", "value": "safe"},
            "reportedBy": {"type": "Property", "value": "self"}}
    if with_location:
        body["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [131.25, 33.95]}}
    return body


def _upsert(server, headers, entities) -> httpx.Response:
    return httpx.post(server.base_url + NGSI + "/entityOperations/upsert", json=entities, headers=headers)


def _revoke_all(server, headers) -> None:
    for grant in httpx.get(server.base_url + CONSENTS, headers=headers).json():
        httpx.post(server.base_url + CONSENTS + "/revoke", json={k: grant[k] for k in ("category", "purpose", "recipient")}, headers=headers)


def test_categories_are_listed(server):
    ids = [c["id"] for c in httpx.get(server.base_url + "/cityos/v1/consent-categories").json()]
    assert ids == ["location", "safety_status", "evacuee_card", "health_activity", "care_information", "ride_history"]


def test_write_without_consent_is_refused_then_allowed(server, auth):
    me = auth("ube-resident-2")
    _revoke_all(server, me)
    entity_id = f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}"
    created = httpx.post(server.base_url + NGSI + "/entities", json=_status(entity_id), headers=me)
    assert created.status_code == 403
    assert created.json()["type"] == "urn:cityos:problem:consent-required" and "safety_status" in created.json()["detail"]
    assert httpx.post(server.base_url + CONSENTS, json=_choice("safety_status"), headers=me).status_code == 201
    assert httpx.post(server.base_url + CONSENTS, json=_choice("safety_status"), headers=me).status_code == 200  # idempotent
    assert httpx.post(server.base_url + NGSI + "/entities", json=_status(entity_id), headers=me).status_code == 201
    # Location is its own category: a status with a position needs it too.
    with_location = _upsert(server, me, [_status(entity_id, with_location=True)])
    assert with_location.status_code == 207 and "location" in with_location.json()["errors"][0]["error"]["detail"]
    assert httpx.post(server.base_url + CONSENTS, json=_choice("location"), headers=me).status_code == 201
    assert _upsert(server, me, [_status(entity_id, with_location=True)]).status_code == 204


def test_revoking_deletes_that_category_only(server, auth):
    me = auth("ube-resident-1")
    _revoke_all(server, me)
    for category in ("safety_status", "location", "health_activity"):
        httpx.post(server.base_url + CONSENTS, json=_choice(category), headers=me)
    httpx.post(server.base_url + CONSENTS, json=_choice("safety_status", "care", "family"), headers=me)
    status_id = f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}"
    points_id = f"urn:ngsi-ld:HealthPointEvent:{uuid.uuid4().hex}"
    points = {"id": points_id, "type": "HealthPointEvent", "points": {"type": "Property", "value": 10}}
    assert _upsert(server, me, [_status(status_id, with_location=True), points]).status_code == 201

    def get(entity_id: str) -> httpx.Response:
        return httpx.get(server.base_url + NGSI + f"/entities/{entity_id}", headers=me)

    # Revoking location strips the position but keeps the status.
    stripped = httpx.post(server.base_url + CONSENTS + "/revoke", json=_choice("location"), headers=me).json()
    assert stripped == {"revoked": True, "deletedEntities": 0, "strippedAttributes": 1}
    assert get(status_id).status_code == 200 and "location" not in get(status_id).json()

    # One of two grants for safety_status revoked: the data stays; the last one: it goes.
    assert httpx.post(server.base_url + CONSENTS + "/revoke", json=_choice("safety_status"), headers=me).json()["deletedEntities"] == 0
    assert get(status_id).status_code == 200
    last = httpx.post(server.base_url + CONSENTS + "/revoke", json=_choice("safety_status", "care", "family"), headers=me).json()
    assert last == {"revoked": True, "deletedEntities": 1, "strippedAttributes": 0}
    assert get(status_id).status_code == 404
    assert get(points_id).status_code == 200  # other categories untouched
    again = httpx.post(server.base_url + CONSENTS + "/revoke", json=_choice("safety_status"), headers=me).json()
    assert again["revoked"] is False

    history = httpx.get(server.base_url + CONSENTS + "/history", headers=me).json()
    actions = [(h["category"], h["action"]) for h in history[-3:]]
    assert actions == [("location", "revoke"), ("safety_status", "revoke"), ("safety_status", "revoke")]
    active = {(g["category"], g["recipient"]) for g in httpx.get(server.base_url + CONSENTS, headers=me).json()}
    assert active == {("health_activity", "city")}


def test_others_cannot_touch_a_residents_data_and_staff_need_city_consent(server, auth):
    owner, other, staff = auth("ube-resident-2"), auth("ube-resident-1"), auth("ube-staff-1")
    httpx.post(server.base_url + CONSENTS, json=_choice("ride_history", "transport", "transport_operator"), headers=owner)
    ride_id = f"urn:ngsi-ld:RideRequest:{uuid.uuid4().hex}"
    ride = {"id": ride_id, "type": "RideRequest", "pickupStop": {"type": "Property", "value": "宇部新川駅"}}
    assert _upsert(server, owner, [ride]).status_code == 201
    httpx.post(server.base_url + CONSENTS, json=_choice("ride_history", "transport", "transport_operator"), headers=other)
    hijack = _upsert(server, other, [ride])
    assert hijack.status_code == 207 and hijack.json()["errors"][0]["error"]["status"] == 403
    assert httpx.get(server.base_url + NGSI + f"/entities/{ride_id}", headers=other).status_code == 404
    assert httpx.delete(server.base_url + NGSI + f"/entities/{ride_id}", headers=other).status_code == 404
    assert httpx.get(server.base_url + NGSI + f"/entities/{ride_id}").status_code == 404  # anonymous
    # Staff see it only once the resident shares ride_history with the city.
    assert httpx.get(server.base_url + NGSI + f"/entities/{ride_id}", headers=staff).status_code == 404
    httpx.post(server.base_url + CONSENTS, json=_choice("ride_history", "transport", "city"), headers=owner)
    assert httpx.get(server.base_url + NGSI + f"/entities/{ride_id}", headers=staff).status_code == 200
    # The owner may always delete their own data, consent or not.
    httpx.post(server.base_url + CONSENTS + "/revoke", json=_choice("ride_history", "transport", "city"), headers=owner)
    assert httpx.delete(server.base_url + NGSI + f"/entities/{ride_id}", headers=owner).status_code == 204


def test_staff_register_walk_in_evacuees(server, auth):
    staff = auth("ube-staff-1")
    card_id = f"urn:ngsi-ld:ShelterCheckIn:{uuid.uuid4().hex}"
    card = {"id": card_id, "type": "ShelterCheckIn", "shelter": {"type": "Relationship", "object": "urn:ngsi-ld:EvacuationShelter:x"},
            "needs": {"type": "Property", "value": ["infant"]}}
    assert _upsert(server, staff, [card]).status_code == 201
    assert httpx.get(server.base_url + NGSI + f"/entities/{card_id}", headers=staff).status_code == 200
    assert httpx.get(server.base_url + NGSI + f"/entities/{card_id}", headers=auth("ube-resident-1")).status_code == 404
    assert httpx.get(server.base_url + NGSI + f"/entities/{card_id}", headers=auth("aizu-staff-1")).status_code == 404


def test_consent_api_needs_a_token_and_valid_ids(server, auth):
    assert httpx.get(server.base_url + CONSENTS).status_code == 401
    bad = httpx.post(server.base_url + CONSENTS, json={"category": "dna", "purpose": "x", "recipient": "city"}, headers=auth("ube-resident-1"))
    assert bad.status_code == 400 and "unknown category" in bad.json()["detail"]


def test_location_consent_covers_location_under_any_name(server, auth):
    """Location data needs the location consent whatever the attribute is called, and revoking
    location strips every such attribute."""
    me = auth("ube-resident-2")
    _revoke_all(server, me)
    assert httpx.post(server.base_url + CONSENTS, json=_choice("safety_status"), headers=me).status_code == 201
    point = {"type": "Point", "coordinates": [131.25, 33.95]}
    hidden = {
        "position": {"type": "GeoProperty", "value": point},
        "status": {"type": "Property", "value": {"state": "safe", "coordinates": [131.25, 33.95]}},
        "note": {"type": "Property", "value": "safe", "where": {"type": "GeoProperty", "value": point}},
        "place": {"type": "Property", "value": [{"name": "home", "lat": 33.95, "lng": 131.25}]},
    }
    for name, attribute in hidden.items():
        entity_id = f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}"
        answer = _upsert(server, me, [{"id": entity_id, "type": "SafetyStatus", name: attribute}])
        assert answer.status_code == 207, answer.text
        error = answer.json()["errors"][0]["error"]
        assert error["type"] == "urn:cityos:problem:consent-required" and name in error["detail"]
    assert httpx.post(server.base_url + CONSENTS, json=_choice("location"), headers=me).status_code == 201
    entity_id = f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}"
    kept = {"reportedBy": {"type": "Property", "value": "self"}}
    assert _upsert(server, me, [{"id": entity_id, "type": "SafetyStatus", **hidden, **kept}]).status_code == 201
    revoked = httpx.post(server.base_url + CONSENTS + "/revoke", json=_choice("location"), headers=me).json()
    assert revoked["strippedAttributes"] == len(hidden)
    stored = httpx.get(server.base_url + NGSI + f"/entities/{entity_id}", headers=me).json()
    assert not set(hidden) & set(stored) and stored["reportedBy"]["value"] == "self"
    _revoke_all(server, me)


def test_staff_hear_only_of_deletions_they_could_have_read(server, auth):
    me, staff = auth("ube-resident-1"), auth("ube-staff-1")
    _revoke_all(server, me)
    family_only = _choice("care_information", purpose="care", recipient="family")
    assert httpx.post(server.base_url + CONSENTS, json=family_only, headers=me).status_code == 201
    private = f"urn:ngsi-ld:CareInformation:{uuid.uuid4().hex}"
    body = {"id": private, "type": "CareInformation", "needs": {"type": "Property", "value": "wheelchair"}}
    assert _upsert(server, me, [body]).status_code == 201
    assert httpx.delete(server.base_url + NGSI + f"/entities/{private}", headers=me).status_code == 204
    shared_once = f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}"
    assert httpx.post(server.base_url + CONSENTS, json=_choice("safety_status"), headers=me).status_code == 201
    assert _upsert(server, me, [_status(shared_once)]).status_code == 201
    _revoke_all(server, me)  # deletes the status: staff held a copy and must hear of it
    ids = set()
    after = None
    while True:
        page = httpx.get(server.base_url + "/cityos/v1/changes", params={"after": after} if after else {}, headers=staff).json()
        ids |= {c["id"] for c in page["changes"]}
        after = page["cursor"]
        if not page["hasMore"]:
            break
    assert shared_once in ids and private not in ids
