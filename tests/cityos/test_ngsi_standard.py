"""NGSI-LD as an independent client expects it (ETSI GS CIM 009, issue 15): attribute routes,
batch create/update/delete, status codes, error types, media types and @context handling."""
from __future__ import annotations

import uuid

import httpx

NGSI = "/ngsi-ld/v1"
PROBLEM = "application/problem+json"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"


def _problem(answer: httpx.Response, status: int, type_suffix: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].split(";")[0] == PROBLEM
    body = answer.json()
    assert body["status"] == status and body["type"].endswith(type_suffix), body
    return body


def _alert(**attrs) -> dict:
    return {"id": f"urn:ngsi-ld:Alert:{uuid.uuid4().hex}", "type": "Alert", "level": {"type": "Property", "value": 2}, **attrs}


def _create(server, headers, body) -> str:
    assert httpx.post(server.base_url + NGSI + "/entities", json=body, headers=headers).status_code == 201
    return body["id"]


def _get(server, entity_id, headers=None) -> dict:
    return httpx.get(server.base_url + NGSI + f"/entities/{entity_id}", headers=headers or {}).json()


def test_attribute_routes_update_append_patch_and_delete(server, auth):
    city = auth("ube-city-1")
    entity_id = _create(server, city, _alert(headline={"type": "Property", "value": "大雨"}))
    url = server.base_url + NGSI + f"/entities/{entity_id}/attrs"
    assert httpx.patch(url, json={"level": {"type": "Property", "value": 4}}, headers=city).status_code == 204
    partial = httpx.patch(url, json={"level": {"type": "Property", "value": 5}, "missing": {"type": "Property", "value": 1}}, headers=city)
    assert partial.status_code == 207 and partial.json() == {"updated": ["level"],
                                                             "notUpdated": [{"attributeName": "missing", "reason": "no such attribute"}]}
    assert httpx.post(url, json={"area": {"type": "Property", "value": "西岐波"}}, headers=city).status_code == 204
    kept = httpx.post(url, params={"options": "noOverwrite"}, json={"area": {"type": "Property", "value": "x"}}, headers=city)
    assert kept.status_code == 207 and kept.json()["notUpdated"][0]["attributeName"] == "area"
    assert httpx.patch(url + "/headline", json={"value": "洪水", "observedAt": "2024-05-01T00:00:00Z"}, headers=city).status_code == 204
    assert httpx.delete(url + "/area", headers=city).status_code == 204
    got = _get(server, entity_id)
    assert got["level"]["value"] == 5 and "area" not in got
    assert got["headline"] == {"type": "Property", "value": "洪水", "observedAt": "2024-05-01T00:00:00Z"}
    _problem(httpx.delete(url + "/area", headers=city), 404, "ResourceNotFound")
    _problem(httpx.patch(url + "/nothing", json={"value": 1}, headers=city), 404, "ResourceNotFound")
    _problem(httpx.patch(server.base_url + NGSI + "/entities/urn:ngsi-ld:Alert:none/attrs", json={"level": {"type": "Property", "value": 1}},
                         headers=city), 404, "ResourceNotFound")
    _problem(httpx.patch(url, json={"level": {"type": "Property", "value": 1}}, headers=auth("ube-resident-1")), 403, "forbidden")


def test_attribute_routes_keep_the_consent_rules(server, auth):
    me = auth("ube-resident-2")
    consents = server.base_url + "/cityos/v1/consents"
    assert httpx.post(consents, json={"category": "safety_status", "purpose": "disaster_response", "recipient": "city"},
                      headers=me).status_code in (200, 201)
    httpx.post(consents + "/revoke", json={"category": "location", "purpose": "disaster_response", "recipient": "city"}, headers=me)
    entity_id = _create(server, me,
                        {"id": f"urn:ngsi-ld:SafetyStatus:{uuid.uuid4().hex}", "type": "SafetyStatus",
                         "status": {"type": "Property", "value": "safe"}})
    where = {"where": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [131.25, 33.95]}}}
    _problem(httpx.post(server.base_url + NGSI + f"/entities/{entity_id}/attrs", json=where, headers=me), 403, "consent-required")
    # Someone else's entity is not found, not revealed.
    _problem(httpx.delete(server.base_url + NGSI + f"/entities/{entity_id}/attrs/status", headers=auth("ube-resident-1")), 404, "ResourceNotFound")


def test_batch_create_update_delete(server, auth):
    city = auth("ube-city-1")
    ops = server.base_url + NGSI + "/entityOperations"
    first, second = _alert(), _alert()
    created = httpx.post(ops + "/create", json=[first, second], headers=city)
    assert created.status_code == 201 and created.json() == [first["id"], second["id"]]
    empty = httpx.post(ops + "/create", json=[], headers=city)
    assert empty.status_code == 201 and empty.json() == []  # a create answers with what it created, even nothing
    again = httpx.post(ops + "/create", json=[first, {"type": "Alert"}], headers=city)
    assert again.status_code == 207
    errors = again.json()["errors"]
    assert errors[0]["entityId"] == first["id"] and errors[0]["error"]["type"].endswith("AlreadyExists")
    assert errors[1]["entityId"] == "urn:cityos:batch-item:1"  # a URI even for an item without an id
    update = [{"id": first["id"], "type": "Alert", "level": {"type": "Property", "value": 5}}]
    assert httpx.post(ops + "/update", json=update, headers=city).status_code == 204
    assert _get(server, first["id"])["level"]["value"] == 5
    missing = httpx.post(ops + "/update", json=[{"id": "urn:ngsi-ld:Alert:none", "type": "Alert"}], headers=city)
    assert missing.status_code == 207 and missing.json()["errors"][0]["error"]["type"].endswith("ResourceNotFound")
    deleted = httpx.post(ops + "/delete", json=[first["id"], second["id"], "urn:ngsi-ld:Alert:none"], headers=city)
    assert deleted.status_code == 207 and deleted.json()["success"] == [first["id"], second["id"]]
    assert httpx.get(server.base_url + NGSI + f"/entities/{first['id']}").status_code == 404


def test_put_is_operation_not_supported_422(server, auth):
    entity_id = _create(server, auth("ube-city-1"), _alert())
    _problem(httpx.put(server.base_url + NGSI + f"/entities/{entity_id}", json=_alert(), headers=auth("ube-city-1")), 422, "OperationNotSupported")


def test_context_rules_for_ld_json(server, auth):
    headers = {**auth("ube-city-1"), "Content-Type": "application/ld+json"}
    body = _alert()
    no_context = httpx.post(server.base_url + NGSI + "/entities", content=httpx.Request("POST", "/", json=body).content, headers=headers)
    _problem(no_context, 400, "BadRequestData")
    link = {"Link": f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}
    mixed = httpx.post(server.base_url + NGSI + "/entities", content=httpx.Request("POST", "/", json={**body, "@context": CORE}).content,
                       headers={**headers, **link})
    _problem(mixed, 400, "BadRequestData")
    ok = httpx.post(server.base_url + NGSI + "/entities", content=httpx.Request("POST", "/", json={**body, "@context": CORE}).content,
                    headers=headers)
    assert ok.status_code == 201


def test_queries_that_the_standard_answers_200(server, auth):
    url = server.base_url + NGSI + "/entities"
    entity_id = _create(server, auth("ube-city-1"), _alert(rareAttribute={"type": "Property", "value": 1}))
    nothing = httpx.get(url, params={"type": "WeatherObserved"})
    assert nothing.status_code == 200 and nothing.json() == []
    for expanded in ("urn:mamori:ngsi-ld:Alert", "https://uri.etsi.org/ngsi-ld/default-context/Alert"):
        answer = httpx.get(url, params={"type": expanded, "limit": 1000})
        assert answer.status_code == 200 and entity_id in [e["id"] for e in answer.json()]
    by_attrs = httpx.get(url, params={"attrs": "rareAttribute"})
    assert by_attrs.status_code == 200 and [e["id"] for e in by_attrs.json()] == [entity_id]


def test_media_types_and_context(server):
    url = server.base_url + NGSI + "/entities"
    _problem(httpx.get(url, params={"type": "Alert"}, headers={"Accept": "text/html"}), 406, "not-acceptable")
    assert httpx.get(url, params={"type": "Alert"}, headers={"Accept": "text/html, */*;q=0.1"}).status_code == 200
    _problem(httpx.get(url, params={"type": "Alert"}, headers={"Accept": "application/json;q=0, text/html"}), 406, "not-acceptable")
    _problem(httpx.post(url, content=b"<x/>", headers={"Content-Type": "application/xml"}), 415, "unsupported-media-type")
    _problem(httpx.get(url), 400, "BadRequestData")
    context = httpx.get(server.base_url + NGSI + "/contexts/mamori.jsonld").json()["@context"]
    assert context[0] == CORE and context[-1] == {"@vocab": "urn:mamori:ngsi-ld:"}
