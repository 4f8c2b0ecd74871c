"""The ride API on a real platform (loopback), and the resident's RideBook against it.

Simulated time runs 600× (MAMORI_RIDE_TIME_SCALE): a real second is ten simulated minutes,
so a ride goes from assigned to done in a few seconds.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.family import alert_entity
from app.platform import BearerAuth, PlatformHttp
from app.rides import (
    Place,
    PlaceKind,
    RideBook,
    RideError,
    RideErrorCode,
    RideRequest,
    RidesApi,
    RideStatus,
)
from cityos.testing import login, run_cityos
from offline.atrest import new_key
from offline.store import open_store
from tests.test_rides import dead_api

SCALE = 600.0
FINAL = ("done", "cancelled", "rejected")


class Token:
    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str | None:
        return self.token

    def refresh_after_rejection(self) -> str | None:
        return None


class SimClock:
    """The platform's simulated clock, as the phone would read it (set from the service's ``now``)."""

    def __init__(self, server, token: str) -> None:
        now = httpx.get(server.base_url + "/rides/v1/service", headers=_auth(token)).json()["now"]
        self.base, self.started = datetime.fromisoformat(now), time.monotonic()

    def __call__(self) -> datetime:
        return self.base + timedelta(seconds=(time.monotonic() - self.started) * SCALE)


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    mp = pytest.MonkeyPatch()
    mp.setenv("MAMORI_RIDE_TIME_SCALE", str(SCALE))
    try:
        with run_cityos(tmp_path_factory.mktemp("rides"), data_dir=data_dir, access_token_ttl=3600) as running:
            yield running
    finally:
        mp.undo()


RIDE_HISTORY = {"category": "ride_history", "purpose": "transport", "recipient": "transport_operator"}


@pytest.fixture(scope="module")
def tokens(server) -> dict[str, str]:
    """Tokens of the demo accounts; the residents have granted the ride_history consent (as the app asks before booking)."""
    out = {name: login(server, name)["access_token"] for name in ("ube-resident-1", "ube-resident-2", "ube-city-1", "ube-staff-1")}
    for name in ("ube-resident-1", "ube-resident-2"):
        assert httpx.post(server.base_url + "/cityos/v1/consents", json=RIDE_HISTORY, headers=_auth(out[name])).status_code in (200, 201)
    return out


@pytest.fixture(scope="module")
def info(server, tokens) -> dict[str, Any]:
    answer = httpx.get(server.base_url + "/rides/v1/service", headers=_auth(tokens["ube-resident-1"]), timeout=60)
    assert answer.status_code == 200
    return answer.json()


def _auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def _body(info: dict[str, Any], a: int, b: int, **extra: Any) -> dict[str, Any]:
    stops = info["stops"]
    return {
        "pickup": {"kind": "stop", "lat": stops[a]["lat"], "lon": stops[a]["lon"], "ref": stops[a]["id"]},
        "dropoff": {"kind": "stop", "lat": stops[b]["lat"], "lon": stops[b]["lon"], "ref": stops[b]["id"]},
        "passengers": 1,
        **extra,
    }


def _book(server, token: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return httpx.post(server.base_url + "/rides/v1/rides", json=body, headers=_auth(token, **{"Idempotency-Key": key or str(uuid.uuid4())}))


def test_service_says_the_vehicles_are_simulated(info):
    assert info["simulated"] is True and info["vehicleSpeedKmh"] == 25.0
    assert len(info["vehicles"]) == 6 and len(info["stops"]) > 20
    assert info["serviceArea"]["type"] == "Polygon"


def test_reading_the_service_saves_nothing(server, tokens, info):
    """A ride operation that changes nothing (here: reading the service while every vehicle is
    idle) does not write the dispatcher state back: the clock alone moves nothing worth saving."""
    db = server.args[server.args.index("--db") + 1].split("///", 1)[1]

    def revision() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT revision FROM ride_service WHERE tenant = '352021'").fetchone()[0]

    before = revision()
    for _ in range(3):
        assert httpx.get(server.base_url + "/rides/v1/service", headers=_auth(tokens["ube-resident-1"]), timeout=60).status_code == 200
    assert revision() == before


def test_quote_then_book_is_idempotent_and_private(server, tokens, info):
    token = tokens["ube-resident-1"]
    body = _body(info, 0, 7, passengers=3, companions=1)
    quote = httpx.post(server.base_url + "/rides/v1/quotes", json=body, headers=_auth(token)).json()
    assert quote["fareYen"] == 600 and quote["pointsUsableMax"] == 600 and quote["simulated"] is True
    assert quote["pickupEta"] <= quote["arrival"] and quote["evacuation"] is False
    assert quote["pickup"]["ref"] == body["pickup"]["ref"] and quote["dropoff"]["ref"] == body["dropoff"]["ref"]  # restated
    assert quote["earliest"] <= quote["pickupEta"] <= quote["latest"] and quote["passengers"] == 3
    key = str(uuid.uuid4())
    first, again = _book(server, token, body, key), _book(server, token, body, key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] == key
    assert first.json()["status"] in ("assigned", "arriving")
    other = tokens["ube-resident-2"]
    assert httpx.get(f"{server.base_url}/rides/v1/rides/{key}", headers=_auth(other)).status_code == 404
    theirs = _book(server, other, _body(info, 2, 9), key)  # keys are per account: nothing about the first ride shows
    assert theirs.status_code == 201 and theirs.json()["pickup"]["ref"] == info["stops"][2]["id"]
    mine = httpx.get(f"{server.base_url}/rides/v1/rides/{key}", headers=_auth(token)).json()
    assert mine["pickup"]["ref"] == info["stops"][0]["id"] and mine["passengers"] == 3
    assert key in [r["id"] for r in httpx.get(server.base_url + "/rides/v1/rides", headers=_auth(token)).json()]
    assert httpx.get(server.base_url + "/rides/v1/service").status_code == 401


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"pickup": {"lat": 33.80, "lon": 131.25}}, 400, "pickup_outside_area"),
        ({"dropoff": {"lat": 34.20, "lon": 131.25}}, 400, "dropoff_outside_area"),
        ({"earliest": "2020-01-01T09:00:00+09:00", "latest": "2020-01-01T09:30:00+09:00"}, 400, "past_time_window"),
        ({"earliest": "2030-01-01T09:30:00+09:00", "latest": "2030-01-01T09:00:00+09:00"}, 400, "invalid_time_window"),
        ({"earliest": "tomorrow"}, 400, "invalid_time_window"),
        ({"earliest": "2030-01-01T09:30:00"}, 400, "invalid_time_window"),
        ({"passengers": 20}, 400, "party_too_large"),
        ({"passengers": 1, "companions": 1}, 400, "invalid_party"),
        ({"pickup": {"lat": "north", "lon": 131.25}}, 400, "bad_place"),
        ({"evacuation": True}, 409, "no_alert"),
    ],
)
def test_refusals_are_typed_with_message_keys(server, tokens, info, change, status, code):
    answer = _book(server, tokens["ube-resident-1"], {**_body(info, 1, 2), **change})
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["code"] == code and problem["messageKey"] == f"rides.error.{code}" and problem["detail"]


def test_cancellation_races_have_one_outcome_each(server, tokens, info):
    """Cancel many rides at random moments, twice at once: each ride ends either cancelled
    (both answers agree) or not cancellable because it was already on board."""
    token = tokens["ube-resident-2"]
    ids = [_book(server, token, _body(info, k, k + 10)).json()["id"] for k in range(6)]
    outcomes: dict[str, list[tuple[int, str]]] = {i: [] for i in ids}

    def cancel(ride_id: str) -> None:
        answer = httpx.post(f"{server.base_url}/rides/v1/rides/{ride_id}/cancel", headers=_auth(token))
        outcomes[ride_id].append((answer.status_code, answer.json().get("code") or answer.json()["status"]))

    for k, ride_id in enumerate(ids):
        time.sleep(0.1 * k)
        both = [threading.Thread(target=cancel, args=(ride_id,)) for _ in range(2)]
        for t in both:
            t.start()
        for t in both:
            t.join()
    for ride_id, answers in outcomes.items():
        final = httpx.get(f"{server.base_url}/rides/v1/rides/{ride_id}", headers=_auth(token)).json()
        if final["status"] == "cancelled":
            assert sorted(answers) == [(200, "cancelled"), (200, "cancelled")], answers
        else:
            assert answers == [(409, "not_cancellable")] * 2 and final["status"] in ("on_board", "done")


def test_status_events_follow_the_lifecycle_to_done(server, tokens, info):
    token = tokens["ube-resident-1"]
    ride_id = _book(server, token, _body(info, 3, 4)).json()["id"]
    seen = []
    with httpx.stream("GET", f"{server.base_url}/rides/v1/rides/{ride_id}/events", headers=_auth(token), timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["status"])
    order = ["assigned", "arriving", "on_board", "done"]
    assert seen[-1] == "done" and len(seen) >= 2
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    with pytest.raises(httpx.HTTPStatusError):
        httpx.post(f"{server.base_url}/rides/v1/rides/{ride_id}/cancel", headers=_auth(token)).raise_for_status()


def test_resident_books_offline_and_it_is_sent_when_the_network_returns(server, tokens, info, tmp_path):
    clock = SimClock(server, tokens["ube-resident-1"])
    db = open_store(tmp_path / "phone.sqlite")
    online = RidesApi(PlatformHttp(server.base_url, auth=BearerAuth(Token(tokens["ube-resident-1"]))))
    book = RideBook(db, new_key(), dead_api(), clock=clock, points_balance=lambda: 120)
    a, b = info["stops"][5], info["stops"][12]
    request = RideRequest(Place(PlaceKind.STOP, a["lat"], a["lon"], a["name"], a["id"]),
                          Place(PlaceKind.HOSPITAL, b["lat"], b["lon"], "病院"), passengers=2, companions=1)
    pending = book.book(request)
    assert pending.status is RideStatus.NOT_SENT and not pending.status.confirmed
    book.api = online  # the network is back
    quote = book.quote(request)
    assert quote.fare_yen == 300 and quote.points_usable == 120 and quote.simulated
    assert quote.pickup == request.pickup and quote.earliest and quote.latest and not quote.evacuation  # the quote restates the ride
    assert book.send_pending() == 1
    sent = book.get(pending.id)
    assert sent.status in (RideStatus.ASSIGNED, RideStatus.ARRIVING) and sent.status.confirmed and sent.vehicle_id
    assert book.send_pending() == 0
    assert pending.id in {r["id"] for r in online.history()}
    again = book.rebook(pending.id)
    assert again.id != pending.id and again.request.pickup == request.pickup and again.status.confirmed
    assert [x.id for x in book.history()][:2] == [again.id, pending.id]
    cancelled = book.cancel(again.id)
    assert cancelled.status is RideStatus.CANCELLED and cancelled.reason_key == "rides.reason.cancelled_by_you"
    deadline = time.monotonic() + 20
    while book.get(pending.id).status is not RideStatus.DONE and time.monotonic() < deadline:
        book.refresh()
        time.sleep(0.3)
    assert book.get(pending.id).status is RideStatus.DONE
    with pytest.raises(RideError) as err:
        book.cancel(pending.id)
    assert err.value.code is RideErrorCode.NOT_CANCELLABLE


def test_cancel_queued_offline_loses_to_boarding(server, tokens, info, tmp_path):
    clock = SimClock(server, tokens["ube-resident-2"])
    online = RidesApi(PlatformHttp(server.base_url, auth=BearerAuth(Token(tokens["ube-resident-2"]))))
    book = RideBook(open_store(tmp_path / "p.sqlite"), new_key(), online, clock=clock)
    a, b = info["stops"][2], info["stops"][20]
    booking = book.book(RideRequest(Place(PlaceKind.STOP, a["lat"], a["lon"]), Place(PlaceKind.STOP, b["lat"], b["lon"])))
    assert booking.status.confirmed
    book.api = dead_api()
    queued = book.cancel(booking.id)
    assert queued.cancel_pending and queued.status is booking.status  # not shown as cancelled
    deadline = time.monotonic() + 20
    while online.ride(booking.id)["status"] not in ("on_board", "done") and time.monotonic() < deadline:
        time.sleep(0.2)
    book.api = online
    book.send_pending()
    after = book.get(booking.id)
    assert after.status in (RideStatus.ON_BOARD, RideStatus.DONE) and not after.cancel_pending


def test_evacuation_rides_need_an_alert_and_registration_and_go_to_a_safe_shelter(server, tokens, info):
    resident, unregistered, city = tokens["ube-resident-1"], tokens["ube-resident-2"], tokens["ube-city-1"]
    assert httpx.post(server.base_url + "/rides/v1/alert", json={"hazard": "tsunami"}, headers=_auth(resident)).status_code == 403
    assert httpx.post(server.base_url + "/rides/v1/alert", json={"hazard": "tsunami"}, headers=_auth(city)).json() == {"alert": "tsunami"}
    try:
        body = _body(info, 6, 8, evacuation=True)
        refused = _book(server, unregistered, body)
        assert refused.status_code == 403 and refused.json()["code"] == "not_registered_for_support"
        grant = {"category": "care_information", "purpose": "care", "recipient": "city"}
        assert httpx.post(server.base_url + "/cityos/v1/consents", json=grant, headers=_auth(resident)).status_code in (200, 201)
        care = {"id": f"urn:ngsi-ld:CareInformation:{uuid.uuid4()}", "type": "CareInformation",
                "needs": {"type": "Property", "value": ["wheelchair"]}}
        created = httpx.post(server.base_url + "/ngsi-ld/v1/entities", json=care, headers=_auth(resident))
        assert created.status_code == 201, created.text
        ride = _book(server, resident, body)
        assert ride.status_code == 201, ride.text
        view = ride.json()
        assert view["evacuation"] and view["fareYen"] == 0 and view["dropoff"]["kind"] == "shelter"
        stops = {s["id"]: s for s in info["stops"]}
        assert stops[view["dropoff"]["ref"]]["kind"] == "emergency_site"
    finally:
        httpx.post(server.base_url + "/rides/v1/alert", json={"hazard": None}, headers=_auth(city))


def test_a_booking_whose_answer_was_lost_is_one_ride(server, tokens, info, tmp_path):
    clock = SimClock(server, tokens["ube-resident-2"])
    online = RidesApi(PlatformHttp(server.base_url, auth=BearerAuth(Token(tokens["ube-resident-2"]))))
    book = RideBook(open_store(tmp_path / "p.sqlite"), new_key(), dead_api(), clock=clock)
    a, b = info["stops"][9], info["stops"][14]
    first = book.book(RideRequest(Place(PlaceKind.STOP, a["lat"], a["lon"]), Place(PlaceKind.STOP, b["lat"], b["lon"])))
    second = book.book(RideRequest(Place(PlaceKind.STOP, b["lat"], b["lon"]), Place(PlaceKind.STOP, a["lat"], a["lon"])))
    online.book(first)  # reached the platform, but the phone never heard back
    online.book(second)
    queued = book.cancel(second.id)  # still offline: the platform may have it, so the cancel waits
    assert queued.status is RideStatus.NOT_SENT and queued.cancel_pending
    book.api = online
    assert book.send_pending() == 2
    assert book.get(first.id).status.confirmed
    cancelled = book.get(second.id)
    assert cancelled.status is RideStatus.CANCELLED and not cancelled.cancel_pending
    mine = [r["id"] for r in online.history()]
    assert mine.count(first.id) == 1 and mine.count(second.id) == 1
    assert online.ride(second.id)["status"] == "cancelled"


def test_bookings_need_the_ride_history_consent_and_revoking_deletes_them(server, tokens, info):
    staff = tokens["ube-staff-1"]
    refused = _book(server, staff, _body(info, 4, 11))
    assert refused.status_code == 403 and refused.json()["code"] == "consent_required"
    assert httpx.get(server.base_url + "/rides/v1/rides", headers=_auth(staff)).json() == []  # nothing stored
    assert httpx.post(server.base_url + "/cityos/v1/consents", json=RIDE_HISTORY, headers=_auth(staff)).status_code == 201
    ride_id = _book(server, staff, _body(info, 4, 11)).json()["id"]
    revoked = httpx.post(server.base_url + "/cityos/v1/consents/revoke", json=RIDE_HISTORY, headers=_auth(staff)).json()
    assert revoked["revoked"] and revoked["deletedEntities"] >= 1
    assert httpx.get(f"{server.base_url}/rides/v1/rides/{ride_id}", headers=_auth(staff)).status_code == 404
    assert httpx.get(server.base_url + "/rides/v1/rides", headers=_auth(staff)).json() == []


def test_booking_on_behalf_of_someone_who_did_not_name_you_caregiver_is_refused(server, tokens, info):
    other_sub = httpx.get(server.base_url + "/userinfo", headers=_auth(tokens["ube-resident-2"])).json()["sub"]
    refused = _book(server, tokens["ube-resident-1"], _body(info, 5, 6, onBehalfOf=other_sub))
    assert refused.status_code == 403 and refused.json()["code"] == "not_caregiver"
    assert refused.json()["messageKey"] == "rides.error.not_caregiver"


def test_during_an_alert_a_ride_from_its_area_to_a_shelter_is_an_evacuation_ride(server, tokens, info):
    resident, city = tokens["ube-resident-1"], tokens["ube-city-1"]
    inside, outside, shelter = info["stops"][13], info["stops"][25], info["stops"][16]
    d = 0.002  # the alert's area: a small square around one stop
    square = {"type": "Polygon", "coordinates": [[[inside["lon"] - d, inside["lat"] - d], [inside["lon"] + d, inside["lat"] - d],
                                                  [inside["lon"] + d, inside["lat"] + d], [inside["lon"] - d, inside["lat"] + d],
                                                  [inside["lon"] - d, inside["lat"] - d]]]}
    now = datetime.now(UTC)
    alert = alert_entity(uuid.uuid4().hex[:12], "352021", hazard="flood", level=4, headline="洪水（訓練）",
                         issued_at=now - timedelta(minutes=1), expires_at=now + timedelta(hours=1), polygon=square)
    assert httpx.post(server.base_url + "/ngsi-ld/v1/entities", json=alert, headers=_auth(city)).status_code == 201
    try:
        def body(start: dict[str, Any]) -> dict[str, Any]:
            return {"pickup": {"kind": "stop", "lat": start["lat"], "lon": start["lon"], "ref": start["id"]},
                    "dropoff": {"kind": "stop", "lat": shelter["lat"], "lon": shelter["lon"]}, "passengers": 2}

        quote = httpx.post(server.base_url + "/rides/v1/quotes", json=body(inside), headers=_auth(resident)).json()
        assert quote["evacuation"] is True and quote["fareYen"] == 0
        assert quote["dropoff"]["kind"] == "shelter" and quote["dropoff"]["ref"] == shelter["id"] and quote["dropoff"]["name"] == shelter["name"]
        booked = _book(server, resident, body(inside)).json()
        assert booked["evacuation"] is True and booked["fareYen"] == 0 and booked["status"] in ("assigned", "arriving")
        ordinary = _book(server, resident, body(outside)).json()  # outside the area: an ordinary ride
        assert ordinary["evacuation"] is False and ordinary["fareYen"] == 600
    finally:
        httpx.delete(f"{server.base_url}/ngsi-ld/v1/entities/{alert['id']}", headers=_auth(city))


def test_a_restart_keeps_bookings_assignments_and_vehicles(server, tokens, info):
    """Last in this module: it restarts the shared server (same database and port)."""
    token = tokens["ube-resident-2"]
    far = datetime.now(UTC) + timedelta(days=2)  # not picked up before the restart is over
    body = _body(info, 7, 19, passengers=2, earliest=far.isoformat(), latest=(far + timedelta(minutes=30)).isoformat())
    ride_id = _book(server, token, body).json()["id"]
    before = httpx.get(f"{server.base_url}/rides/v1/rides/{ride_id}", headers=_auth(token)).json()
    mine_before = [r["id"] for r in httpx.get(server.base_url + "/rides/v1/rides", headers=_auth(token)).json()]
    assert before["status"] == "assigned" and before["vehicleId"]
    server.restart()
    after = httpx.get(f"{server.base_url}/rides/v1/rides/{ride_id}", headers=_auth(token), timeout=60).json()
    assert (after["status"], after["vehicleId"], after["pickupEta"], after["version"]) == (before["status"], before["vehicleId"], before["pickupEta"],
                                                                                           before["version"])
    assert [r["id"] for r in httpx.get(server.base_url + "/rides/v1/rides", headers=_auth(token)).json()] == mine_before
    assert after["now"] >= before["now"]  # the simulated clock goes on from where it was
    cancelled = httpx.post(f"{server.base_url}/rides/v1/rides/{ride_id}/cancel", headers=_auth(token)).json()
    assert cancelled["status"] == "cancelled"  # the dispatcher knows the trip after the restart
