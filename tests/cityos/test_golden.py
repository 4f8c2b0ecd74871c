"""The golden wire-format vectors (tests/fixtures/golden) fed to the real platform: what the app's
encoders produce is what the platform accepts, and what it returns is what the app decodes."""
from __future__ import annotations

import httpx

from tests.golden import vector

API = "/cityos/v1"


def test_platform_stores_the_golden_desk_event_in_its_normalised_form(server, auth):
    v = vector("checkin_desk_event")
    shelter = httpx.get(server.base_url + "/ngsi-ld/v1/entities", params={"type": "EvacuationShelter", "limit": 1},
                        headers={"NGSILD-Tenant": "352021"}).json()[0]["id"].rsplit(":", 1)[1]
    sent, normalised = {**v["sent"], "shelterId": shelter}, {**v["normalised"], "shelterId": shelter}
    answer = httpx.post(server.base_url + API + "/checkin/desk/events", json={"events": [sent], "after": 0},
                        headers=auth("ube-staff-1"))
    assert answer.status_code == 200 and answer.json()["accepted"] == [sent["id"]]
    assert normalised in answer.json()["events"]


def test_platform_verifies_the_golden_invite_signature_and_then_its_lifetime(server, auth):
    v = vector("family_invite")
    made = httpx.post(server.base_url + API + "/family/groups",
                      json={"id": v["group_id"], "name": v["group_name"], "inviteKey": v["public_key"]},
                      headers=auth("ube-resident-1"))
    assert made.status_code in (200, 201)
    joined = httpx.post(server.base_url + API + "/family/join", json={"invite": v["text"]}, headers=auth("ube-resident-2"))
    assert (joined.status_code, joined.json()["type"]) == (410, "urn:cityos:problem:family-invite-expired")  # signature held
    body, _, sig = v["text"].partition(".")
    forged = body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    refused = httpx.post(server.base_url + API + "/family/join", json={"invite": forged}, headers=auth("ube-resident-2"))
    assert refused.json()["type"] == "urn:cityos:problem:family-invite-forged"
