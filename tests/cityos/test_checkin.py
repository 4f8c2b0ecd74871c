"""Shelter check-in router: device keys, the municipality's seal and poster keys, desk events
with latest-wins and flags, and the occupancy published on EvacuationShelter (SQLite and PG)."""
from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)

from app.checkin import device_kid, verify_poster
from protocol.checkin import b64u, iso_utc, raw_public, unb64u

API = "/cityos/v1/checkin"
CODE = "352021"


class Keys:
    """The public keys a phone or desk learned from GET /keys (``app.checkin.KeyDirectory``)."""

    def __init__(self, body: dict) -> None:
        self.posters = {bytes.fromhex(k["kid"]): Ed25519PublicKey.from_public_bytes(unb64u(k["publicKey"]))
                        for k in body["posterKeys"]}

    def device_key(self, kid: bytes) -> None:
        return None

    def shelter_seal_key(self, code: str) -> None:
        return None

    def poster_key(self, kid: bytes) -> Ed25519PublicKey | None:
        return self.posters.get(kid)


@pytest.fixture(scope="module")
def shelters(server) -> list[str]:
    found = httpx.get(server.base_url + "/ngsi-ld/v1/entities", params={"type": "EvacuationShelter", "limit": 3},
                      headers={"NGSILD-Tenant": CODE}).json()
    return [e["id"].rsplit(":", 1)[1] for e in found]


def _event(ref: str, shelter: str, at: float, action: str = "check_in", size: int = 2, code: str = CODE) -> dict:
    return {"id": uuid.uuid4().hex, "action": action, "ref": ref, "householdSize": size, "shelterId": shelter,
            "municipalityCode": code, "at": iso_utc(at)}


def _post(server, headers, events, **extra) -> httpx.Response:
    return httpx.post(server.base_url + API + "/desk/events", json={"events": events, **extra}, headers=headers)


def _entity(server, shelter: str) -> dict:
    return httpx.get(server.base_url + f"/ngsi-ld/v1/entities/urn:ngsi-ld:EvacuationShelter:{shelter}",
                     headers={"NGSILD-Tenant": CODE}).json()


def test_resident_registers_and_revokes_a_device_key_and_desks_see_both(server, auth):
    key = Ed25519PrivateKey.generate().public_key()
    kid, body = device_kid(key).hex(), {"publicKey": b64u(raw_public(key))}
    url = server.base_url + API + f"/device-keys/{kid}"
    staff = auth("ube-staff-1")
    since = httpx.get(server.base_url + API + "/desk/device-keys", headers=staff).json()["cursor"]
    assert httpx.put(url, json=body, headers=auth("ube-resident-1")).status_code == 201
    assert httpx.put(url, json=body, headers=auth("ube-resident-1")).status_code == 200  # a retry
    taken = httpx.put(url, json=body, headers=auth("ube-resident-2"))
    assert taken.status_code == 409 and "another account" in taken.json()["detail"]
    wrong = httpx.put(server.base_url + API + "/device-keys/00112233aabbccdd", json=body, headers=auth("ube-resident-1"))
    assert wrong.status_code == 400
    assert httpx.put(url, json=body).status_code == 401
    page = httpx.get(server.base_url + API + "/desk/device-keys", params={"since": since}, headers=staff).json()
    assert page["keys"] == [{"kid": kid, "publicKey": body["publicKey"]}] and not page["hasMore"]
    assert httpx.delete(url, headers=auth("ube-resident-2")).status_code == 404  # not theirs
    assert httpx.delete(url, headers=auth("ube-resident-1")).status_code == 204
    after = httpx.get(server.base_url + API + "/desk/device-keys", params={"since": page["cursor"]}, headers=staff).json()
    assert after["keys"] == [{"kid": kid, "publicKey": None}]  # desks drop it on their next sync


def test_keys_are_made_once_per_municipality_and_only_desks_get_the_private_half(server, auth):
    mine = httpx.get(server.base_url + API + "/keys", headers=auth("ube-resident-1")).json()
    again = httpx.get(server.base_url + API + "/keys", headers=auth("ube-resident-2")).json()
    aizu = httpx.get(server.base_url + API + "/keys", headers=auth("aizu-resident-1")).json()
    assert mine == again and mine["municipalityCode"] == CODE and aizu["sealKey"] != mine["sealKey"]
    assert httpx.get(server.base_url + API + "/keys").status_code == 401
    refused = httpx.get(server.base_url + API + "/desk/keys", headers=auth("ube-resident-1"))
    assert refused.status_code == 403 and refused.json()["type"] == "urn:cityos:problem:forbidden"
    assert "shelter_staff" in refused.json()["detail"]
    desk = httpx.get(server.base_url + API + "/desk/keys", headers=auth("ube-staff-1"))
    assert desk.headers["cache-control"] == "no-store"
    [seal] = desk.json()["sealKeys"]
    private = X25519PrivateKey.from_private_bytes(unb64u(seal["privateKey"]))
    assert b64u(raw_public(private.public_key())) == mine["sealKey"]["publicKey"] == seal["publicKey"]
    assert isinstance(X25519PublicKey.from_public_bytes(unb64u(seal["publicKey"])), X25519PublicKey)


def test_posters_are_signed_by_the_platform_for_staff_only(server, auth, shelters):
    made = httpx.post(server.base_url + API + "/desk/posters", json={"shelterId": shelters[0]}, headers=auth("ube-staff-1"))
    assert made.status_code == 201
    keys = Keys(httpx.get(server.base_url + API + "/keys", headers=auth("ube-resident-1")).json())
    poster = verify_poster(made.json()["poster"], keys, time.time())
    assert (poster.shelter_id, poster.municipality_code) == (shelters[0], CODE)
    assert poster.shelter_name == _entity(server, shelters[0])["name"]["value"]
    assert poster.valid_until - poster.valid_from == 30 * 86400
    refused = httpx.post(server.base_url + API + "/desk/posters", json={"shelterId": shelters[0]}, headers=auth("ube-resident-1"))
    assert refused.status_code == 403


def test_desk_events_publish_occupancy_latest_wins_and_replays_count_once(server, auth, shelters):
    staff, now = auth("ube-staff-1"), time.time()
    a, b = shelters[1], shelters[2]
    ref = os.urandom(8).hex()
    first = [_event(ref, a, now - 600, size=3)]
    sent = _post(server, staff, first, capacity={a: 3}, after=0)
    assert sent.status_code == 200 and sent.json()["accepted"] == [first[0]["id"]]
    [state] = sent.json()["shelters"]
    assert (state["shelterId"], state["occupancy"], state["capacity"], state["status"]) == (a, 3, 3, "full")
    shown = _entity(server, a)
    assert (shown["occupancy"]["value"], shown["status"]["value"], shown["capacity"]["value"]) == (3, "full", 3)
    assert shown["status"]["observedAt"].endswith("Z") and shown["name"]["value"]  # seeded attributes stay
    replay = _post(server, staff, first)  # the desk lost the answer and sends again
    assert replay.json()["accepted"] == [first[0]["id"]] and replay.json()["shelters"] == []
    assert _entity(server, a)["occupancy"]["value"] == 3
    # A second desk checked the same household in later at b: b wins, both are flagged.
    moved = _post(server, staff, [_event(ref, b, now - 60, size=3)], after=sent.json()["cursor"])
    by_id = {s["shelterId"]: s for s in moved.json()["shelters"]}
    assert (by_id[a]["occupancy"], by_id[a]["status"], by_id[b]["occupancy"]) == (0, "open", 3)
    assert by_id[b]["flaggedHouseholds"] == 1
    assert [e["shelterId"] for e in moved.json()["events"]] == [b]  # everything after the cursor
    # The earlier one arriving late again changes nothing.
    assert _post(server, staff, first).json()["shelters"] == []
    out = _post(server, staff, [_event(ref, b, now - 30, action="check_out", size=3)])
    assert {s["shelterId"]: s["occupancy"] for s in out.json()["shelters"]} == {b: 0}


def test_staff_close_a_shelter_and_the_change_feed_carries_it(server, auth, shelters):
    staff, shelter = auth("ube-staff-1"), shelters[0]
    cursor = httpx.get(server.base_url + "/cityos/v1/changes", params={"type": "EvacuationShelter", "limit": 1000},
                       headers=staff).json()["cursor"]
    for _ in range(50):  # seeding shelters fills several pages
        page = httpx.get(server.base_url + "/cityos/v1/changes",
                         params={"type": "EvacuationShelter", "after": cursor, "limit": 1000}, headers=staff).json()
        if not page["changes"]:
            break
        cursor = page["cursor"]
    closed = httpx.put(server.base_url + API + f"/desk/shelters/{shelter}", json={"status": "closed"}, headers=staff)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    feed = httpx.get(server.base_url + "/cityos/v1/changes", params={"type": "EvacuationShelter", "after": cursor},
                     headers=auth("ube-resident-1")).json()["changes"]
    assert [c["entity"]["status"]["value"] for c in feed] == ["closed"]
    assert httpx.put(server.base_url + API + f"/desk/shelters/{shelter}", json={"status": "open"},
                     headers=staff).json()["status"] == "open"
    refused = httpx.put(server.base_url + API + f"/desk/shelters/{shelter}", json={"status": "closed"},
                        headers=auth("ube-resident-1"))
    assert refused.status_code == 403 and refused.json()["type"] == "urn:cityos:problem:forbidden"


def test_bad_events_are_refused_one_by_one(server, auth, shelters):
    ref, now = os.urandom(8).hex(), time.time()
    good = _event(ref, shelters[0], now)
    wrong_town = _event(ref, shelters[0], now, code="072028")
    future = _event(ref, shelters[0], now + 86400)
    answer = _post(server, auth("ube-staff-1"), [good, wrong_town, future, {"id": "x", "action": "dance"}]).json()
    assert answer["accepted"] == [good["id"]]
    assert set(answer["rejected"]) == {wrong_town["id"], future["id"], "x"}
    assert "clock" in answer["rejected"][future["id"]]
    assert _post(server, auth("ube-resident-1"), [good]).status_code == 403
    assert _post(server, auth("ube-staff-1"), "nope").status_code == 400
