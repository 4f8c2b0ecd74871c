"""NGSI-LD subset: CRUD, idempotent batch upsert, queries, georel, pagination, errors, tenants, change feed."""
from __future__ import annotations

import uuid

import httpx
import pytest

from cityos.entities import Point, distance_m

NGSI = "/ngsi-ld/v1"
CONTENT_TYPES = ("application/json", "application/problem+json")
UBE_CITY_HALL = (131.2467, 33.9515)  # lon, lat


def _problem(answer: httpx.Response, status: int, type_suffix: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].split(";")[0] in CONTENT_TYPES
    body = answer.json()
    assert body["status"] == status and body["type"].endswith(type_suffix)
    assert body["title"] and body["detail"]
    return body


def _alert(alert_id: str, level: int = 3, **extra) -> dict:
    return {
        "id": alert_id, "type": "Alert",
        "level": {"type": "Property", "value": level},
        "headline": {"type": "Property", "value": "大雨警報"},
        "hazardType": {"type": "Property", "value": "flood"},
        **extra,
    }


def _new_id(kind: str = "Alert") -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex}"


def test_seeded_shelters_query_by_type_with_count_and_pages(server):
    first = httpx.get(server.base_url + NGSI + "/entities", params={"type": "EvacuationShelter", "limit": 50, "count": "true"})
    assert first.status_code == 200
    total = int(first.headers["NGSILD-Results-Count"])
    assert total >= 100  # Ube's GSI files list well over a hundred sites
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in first.headers["link"]
    pages = [first.json()]
    for offset in range(50, total, 50):
        pages.append(httpx.get(server.base_url + NGSI + "/entities", params={"type": "EvacuationShelter", "limit": 50, "offset": offset}).json())
    ids = [e["id"] for page in pages for e in page]
    assert len(ids) == total == len(set(ids))
    shelter = pages[0][0]
    assert shelter["id"].startswith("urn:ngsi-ld:EvacuationShelter:")
    assert shelter["location"]["type"] == "GeoProperty" and shelter["location"]["value"]["type"] == "Point"
    assert shelter["municipalityCode"] == {"type": "Property", "value": "352021"}
    assert shelter["status"]["value"] == "closed"


def test_georel_near_returns_only_close_shelters_nearest_first(server):
    lon, lat = UBE_CITY_HALL
    answer = httpx.get(server.base_url + NGSI + "/entities", params={
        "type": "EvacuationShelter", "georel": "near;maxDistance==1500", "geometry": "Point",
        "coordinates": f"[{lon},{lat}]", "limit": 1000, "count": "true",
    })
    assert answer.status_code == 200
    found = answer.json()
    assert 0 < len(found) < int(httpx.get(server.base_url + NGSI + "/entities",
                                          params={"type": "EvacuationShelter", "count": "true", "limit": 0}).headers["NGSILD-Results-Count"])
    distances = [distance_m(Point(lat, lon),
                            Point(e["location"]["value"]["coordinates"][1], e["location"]["value"]["coordinates"][0])) for e in found]
    assert all(d <= 1500 for d in distances)
    assert distances == sorted(distances)


def test_q_filters_and_key_values(server, auth):
    city = auth("ube-city-1")
    ids = [_new_id() for _ in range(3)]
    batch = [_alert(ids[0], 1), _alert(ids[1], 4), _alert(ids[2], 5, headline={"type": "Property", "value": "土砂災害警戒情報"})]
    assert httpx.post(server.base_url + NGSI + "/entityOperations/upsert", json=batch, headers=city).status_code == 201

    def query(q: str) -> set[str]:
        return {e["id"] for e in httpx.get(server.base_url + NGSI + "/entities", params={"type": "Alert", "q": q, "limit": 1000}).json()}

    assert ids[1] in query("level>=4") and ids[2] in query("level>=4") and ids[0] not in query("level>=4")
    assert query('level==4..5;headline=="大雨警報"') & set(ids) == {ids[1]}
    assert query('level==1|headline~="土砂"') & set(ids) == {ids[0], ids[2]}
    simplified = httpx.get(server.base_url + NGSI + "/entities", params={"id": ids[1], "options": "keyValues,sysAttrs"}).json()
    assert simplified[0]["level"] == 4 and simplified[0]["headline"] == "大雨警報" and "modifiedAt" in simplified[0]


def test_create_get_delete(server, auth):
    city = auth("ube-city-1")
    alert_id = _new_id()
    created = httpx.post(server.base_url + NGSI + "/entities", json=_alert(alert_id), headers=city)
    assert created.status_code == 201 and created.headers["location"] == f"{NGSI}/entities/{alert_id}"
    _problem(httpx.post(server.base_url + NGSI + "/entities", json=_alert(alert_id), headers=city), 409, "AlreadyExists")
    got = httpx.get(server.base_url + NGSI + f"/entities/{alert_id}")
    assert got.status_code == 200 and got.json()["level"] == {"type": "Property", "value": 3}
    assert httpx.delete(server.base_url + NGSI + f"/entities/{alert_id}", headers=city).status_code == 204
    _problem(httpx.get(server.base_url + NGSI + f"/entities/{alert_id}"), 404, "ResourceNotFound")
    _problem(httpx.delete(server.base_url + NGSI + f"/entities/{alert_id}", headers=city), 404, "ResourceNotFound")


def test_ld_json_with_context_in_body(server, auth):
    body = {**_alert(_new_id()), "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"}
    headers = {**auth("ube-city-1"), "Content-Type": "application/ld+json"}
    assert httpx.post(server.base_url + NGSI + "/entities", content=httpx.Request("POST", "/", json=body).content, headers=headers).status_code == 201
    _problem(httpx.post(server.base_url + NGSI + "/entities", json={**body, "id": _new_id()}, headers=auth("ube-city-1")), 400, "BadRequestData")
    as_ld = httpx.get(server.base_url + NGSI + f"/entities/{body['id']}", headers={"Accept": "application/ld+json"})
    assert as_ld.headers["content-type"].startswith("application/ld+json") and as_ld.json()["@context"].endswith("mamori.jsonld")
    assert "@context" not in httpx.get(server.base_url + NGSI + f"/entities/{body['id']}").json()


def test_upsert_is_idempotent_and_replaces(server, auth):
    city = auth("ube-city-1")
    alert_id = _new_id()
    url = server.base_url + NGSI + "/entityOperations/upsert"
    first = httpx.post(url, json=[_alert(alert_id, 2)], headers=city)
    assert first.status_code == 201 and first.json() == [alert_id]
    again = httpx.post(url, json=[_alert(alert_id, 2)], headers=city)  # a client retrying after a lost answer
    assert again.status_code == 204
    assert httpx.post(url, json=[_alert(alert_id, 3), _alert(alert_id, 5)], headers=city).status_code == 204
    matches = httpx.get(server.base_url + NGSI + "/entities", params={"id": alert_id, "count": "true"})
    assert matches.headers["NGSILD-Results-Count"] == "1" and matches.json()[0]["level"]["value"] == 5
    merged = httpx.post(url + "?options=update", json=[{"id": alert_id, "type": "Alert", "area": {"type": "Property", "value": "東岐波"}}],
                        headers=city)
    assert merged.status_code == 204
    entity = httpx.get(server.base_url + NGSI + f"/entities/{alert_id}").json()
    assert entity["area"]["value"] == "東岐波" and entity["level"]["value"] == 5


def test_upsert_reports_per_entity_errors(server, auth):
    good = _new_id()
    batch = [_alert(good), {"id": "not a uri", "type": "Alert"}, {"id": _new_id(), "type": "Alert", "level": 3},
             {"id": _new_id(), "type": "Nonsense"}]
    answer = httpx.post(server.base_url + NGSI + "/entityOperations/upsert", json=batch, headers=auth("ube-city-1"))
    assert answer.status_code == 207
    body = answer.json()
    assert body["success"] == [good]
    assert len(body["errors"]) == 3 and all(e["error"]["status"] == 400 for e in body["errors"])
    assert httpx.get(server.base_url + NGSI + f"/entities/{good}").status_code == 200


@pytest.mark.parametrize("content, content_type, status, kind", [
    (b"{not json", "application/json", 400, "InvalidRequest"),
    (b"", "application/json", 400, "InvalidRequest"),
    (b'{"id": "urn:ngsi-ld:Alert:1", "type": "Alert"}', "text/plain", 415, "unsupported-media-type"),
    (b'[1, 2]', "application/json", 400, "BadRequestData"),
    (b'{"id": "urn:ngsi-ld:Alert:x", "type": "Alert", "level": {"type": "Property"}}', "application/json", 400, "BadRequestData"),
    (b'{"id": "urn:ngsi-ld:Alert:x", "type": "Alert", "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [200, 33]}}}',
     "application/json", 400, "BadRequestData"),
    (b'{"id": "urn:ngsi-ld:Alert:x", "type": "Alert", "owner": {"type": "Relationship", "object": "nope"}}', "application/json", 400,
     "BadRequestData"),
])
def test_malformed_bodies_get_problem_details(server, auth, content, content_type, status, kind):
    answer = httpx.post(server.base_url + NGSI + "/entities", content=content, headers={**auth("ube-city-1"), "Content-Type": content_type})
    _problem(answer, status, kind)


@pytest.mark.parametrize("params", [
    {}, {"type": "Alert", "limit": "5000"}, {"type": "Alert", "limit": "x"}, {"type": "Alert", "q": "level>>3"},
    {"type": "Alert", "georel": "near;maxDistance==10", "geometry": "Point", "coordinates": "[33.9,131.2"},
    {"type": "Alert", "georel": "near", "geometry": "Point", "coordinates": "[131.2,33.9]"}, {"type": "no such type!"},
])
def test_bad_queries_get_problem_details(server, params):
    _problem(httpx.get(server.base_url + NGSI + "/entities", params=params), 400, "BadRequestData")


def test_public_writes_need_a_staff_role(server, auth):
    url = server.base_url + NGSI + "/entityOperations/upsert"
    denied = httpx.post(url, json=[_alert(_new_id())], headers=auth("ube-resident-1"))
    assert denied.status_code == 207 and denied.json()["errors"][0]["error"]["status"] == 403
    _problem(httpx.post(server.base_url + NGSI + "/entities", json=_alert(_new_id())), 401, "unauthorized")
    shelter = httpx.get(server.base_url + NGSI + "/entities", params={"type": "EvacuationShelter", "limit": 1}).json()[0]
    shelter["status"]["value"], shelter["occupancy"]["value"] = "open", 42
    assert httpx.post(url, json=[shelter], headers=auth("ube-staff-1")).status_code == 204
    assert httpx.get(server.base_url + NGSI + f"/entities/{shelter['id']}").json()["occupancy"]["value"] == 42


def test_tenants_never_see_each_other(server, auth):
    ube_alert = _new_id()
    assert httpx.post(server.base_url + NGSI + "/entities", json=_alert(ube_alert), headers=auth("ube-city-1")).status_code == 201
    aizu = {"NGSILD-Tenant": "072028"}
    _problem(httpx.get(server.base_url + NGSI + f"/entities/{ube_alert}", headers=aizu), 404, "ResourceNotFound")
    aizu_shelters = httpx.get(server.base_url + NGSI + "/entities", params={"type": "EvacuationShelter", "limit": 1000}, headers=aizu).json()
    assert aizu_shelters and all(e["municipalityCode"]["value"] == "072028" for e in aizu_shelters)
    # A token's municipality wins; a header naming another one is refused.
    _problem(httpx.get(server.base_url + NGSI + "/entities", params={"type": "Alert"},
                       headers={**auth("aizu-resident-1"), "NGSILD-Tenant": "352021"}), 403, "forbidden")
    seen = httpx.get(server.base_url + NGSI + "/entities", params={"type": "Alert", "limit": 1000}, headers=auth("aizu-resident-1")).json()
    assert ube_alert not in {e["id"] for e in seen}
    # Writing another municipality's code into a body is refused too.
    foreign = _alert(_new_id(), municipalityCode={"type": "Property", "value": "072028"})
    _problem(httpx.post(server.base_url + NGSI + "/entities", json=foreign, headers=auth("ube-city-1")), 403, "forbidden")
    # The same id in two municipalities is two entities.
    aizu_copy = _alert(ube_alert)
    staff_aizu = auth("aizu-staff-1")
    shelter = aizu_shelters[0]
    shelter["occupancy"]["value"] = 7
    assert httpx.post(server.base_url + NGSI + "/entityOperations/upsert", json=[shelter], headers=staff_aizu).status_code == 204
    assert httpx.post(server.base_url + NGSI + "/entities", json=aizu_copy, headers=staff_aizu).status_code == 403  # Alert needs city_staff
    assert httpx.get(server.base_url + NGSI + f"/entities/{ube_alert}").status_code == 200


def test_change_feed_pages_by_cursor_and_reports_deletions(server, auth):
    city = auth("ube-city-1")

    def feed(after: str | None = None, limit: int = 500) -> dict:
        params = {"type": "Alert", "limit": limit, **({"after": after} if after else {})}
        return httpx.get(server.base_url + "/cityos/v1/changes", params=params).json()

    page = feed()
    while page["hasMore"]:
        page = feed(page["cursor"])
    cursor = page["cursor"]
    ids = [_new_id() for _ in range(5)]
    httpx.post(server.base_url + NGSI + "/entityOperations/upsert", json=[_alert(i) for i in ids], headers=city)
    httpx.delete(server.base_url + NGSI + f"/entities/{ids[0]}", headers=city)
    first = feed(cursor, limit=3)
    assert first["hasMore"] and len(first["changes"]) == 3
    rest = feed(first["cursor"], limit=3)
    assert not rest["hasMore"]
    changes = first["changes"] + rest["changes"]
    assert [c["id"] for c in changes] == [*ids[1:], ids[0]]  # commit order; the deleted one moved to the end
    assert changes[-1]["deleted"] is True and changes[-1]["entity"] is None
    assert all(c["entity"]["modifiedAt"] for c in changes[:-1])
    assert feed(rest["cursor"])["changes"] == []
    assert httpx.get(server.base_url + "/cityos/v1/changes", params={"after": "garbage!"}).status_code == 400


@pytest.mark.parametrize("cursor", ["garbage!", "djE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "djE6LTE", ""])
def test_change_feed_rejects_forged_cursors(server, cursor):
    answer = httpx.get(server.base_url + "/cityos/v1/changes", params={"after": cursor})
    assert answer.status_code == (200 if cursor == "" else 400)
