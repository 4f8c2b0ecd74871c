"""Shelter check-in against the real cityos on loopback: a resident registers the phone's key,
desks fetch keys, check in offline, sync when the network returns; the platform publishes
occupancy; the same household at two shelters ends up at the latest one, flagged on both desks."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.checkin import (
    STAFF_ROLE,
    CardMember,
    CheckinPlatform,
    CheckinSyncReport,
    EvacueeCard,
    ResidentCheckins,
    ShelterDesk,
    SurveyAnswers,
    desk_seal_keys,
    device_kid,
    make_poster_token,
    new_at_rest_key,
    show_qr,
    verify_poster,
)
from app.devicekeys import MemoryKeyStore
from app.family import shelter_board
from app.identity import Identity
from app.platform import BearerAuth, PlatformError, PlatformHttp, PlatformUnavailable
from cityos.testing import login, run_cityos
from offline import checkin_store
from offline.store import open_store
from protocol.checkin import StayPlace, WireError, event_from_json, event_to_json, iso_utc
from tests.test_points_cityos import Token

CODE = "352021"


class Phone:
    def __init__(self, root: Path, server, token: Token) -> None:
        self.db = open_store(root / "phone.db")
        self.key = Ed25519PrivateKey.generate()
        self.platform = CheckinPlatform(PlatformHttp(server.base_url, auth=BearerAuth(token)), CODE, self.db)
        self.card = EvacueeCard(members=(CardMember("宇部 一郎"), CardMember("宇部 花子"), CardMember("宇部 次郎")))

    def qr(self) -> str:
        return show_qr(self.card, self.key, self.platform.directory, CODE).text


class Desk:
    def __init__(self, root: Path, name: str, server, token: Token, shelter_id: str, clock: list[float]) -> None:
        self.db, self.keys, self.token = open_store(root / f"{name}.db"), MemoryKeyStore(), token
        self.platform = CheckinPlatform(PlatformHttp(server.base_url, auth=BearerAuth(token)), CODE, self.db)
        self.platform.fetch_public_keys()
        self.platform.fetch_desk_keys(self.keys)
        self.platform.fetch_device_keys()
        self.desk = ShelterDesk(self.db, self.platform.directory, desk_seal_keys(self.keys, CODE), new_at_rest_key(),
                                shelter_id, CODE, name, clock=lambda: clock[0])

    def offline(self, url: str) -> CheckinPlatform:
        return CheckinPlatform(PlatformHttp(url, auth=BearerAuth(self.token), timeout=2), CODE, self.db)


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir) -> Iterator:
    with run_cityos(tmp_path_factory.mktemp("checkin"), data_dir=data_dir, access_token_ttl=3600,
                    extra_args=["--rate-limit", "0"]) as running:
        yield running


@pytest.fixture(scope="module")
def shelters(server) -> list[str]:
    found = httpx.get(server.base_url + "/ngsi-ld/v1/entities", params={"type": "EvacuationShelter", "limit": 2},
                      headers={"NGSILD-Tenant": CODE}).json()
    return [e["id"].rsplit(":", 1)[1] for e in found]


@pytest.fixture()
def dead_url() -> Iterator[str]:
    """A loopback port that accepts and then drops every connection (a network that fails mid-way)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drop() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    listener.close()


def shelter_entity(server, shelter_id: str) -> dict:
    return httpx.get(server.base_url + f"/ngsi-ld/v1/entities/urn:ngsi-ld:EvacuationShelter:{shelter_id}",
                     headers={"NGSILD-Tenant": CODE}).json()


def occupancy(server, shelter_id: str) -> tuple[int, str]:
    """Desk-confirmed people and the status they make."""
    body = shelter_entity(server, shelter_id)
    return body["occupancy"]["value"], body["status"]["value"]


def self_reported(server, shelter_id: str) -> int:
    return shelter_entity(server, shelter_id).get("selfReported", {}).get("value", 0)


def test_offline_desks_sync_publish_occupancy_and_resolve_a_double_check_in(server, shelters, tmp_path, dead_url):
    resident, staff = Token(server, "ube-resident-1"), Token(server, "ube-staff-1")
    phone = Phone(tmp_path, server, resident)
    phone.platform.register_device(phone.key.public_key())
    phone.platform.fetch_public_keys()
    clock = [time.time() - 120]  # the desks' clock: A checks in first, B later
    desk_a = Desk(tmp_path, "desk-a", server, staff, shelters[0], clock)
    desk_b = Desk(tmp_path, "desk-b", server, Token(server, "ube-staff-1"), shelters[1], clock)

    # The network is gone: the desk checks the resident in with what it fetched before.
    checked = desk_a.desk.check_in_text(phone.qr())
    assert checked.card.household_size == 3
    with pytest.raises(PlatformUnavailable):
        desk_a.offline(dead_url).sync_desk(desk_a.desk)
    with pytest.raises(PlatformUnavailable):
        desk_a.offline("http://127.0.0.1:9").sync_desk(desk_a.desk)
    assert len(desk_a.desk.pending()) == 1  # kept, to send later

    # Back online.
    report = desk_a.platform.sync_desk(desk_a.desk, capacity=100)
    assert (report.sent, report.rejected) == (1, 0) and desk_a.desk.pending() == []
    assert occupancy(server, shelters[0]) == (3, "open")
    assert checkin_store.get_sync(desk_a.db, "last_synced_at")

    # A replayed batch (the answer was lost before the desk marked it sent) counts once.
    desk_a.db.execute("UPDATE checkin_event SET synced_at = NULL")
    assert desk_a.platform.sync_desk(desk_a.desk).sent == 1
    assert occupancy(server, shelters[0]) == (3, "open")

    # Later the household turns up at shelter B too: latest wins, flagged on both desks.
    clock[0] = time.time() + 60
    desk_b.desk.check_in_text(phone.qr())
    assert desk_b.platform.sync_desk(desk_b.desk).received >= 1
    assert desk_a.platform.sync_desk(desk_a.desk).received >= 1
    assert occupancy(server, shelters[0])[0] == 0 and occupancy(server, shelters[1])[0] == 3
    for desk in (desk_a.desk, desk_b.desk):
        [entry] = desk.list_evacuees(present_only=False)
        assert entry.shelter_id == shelters[1] and entry.flagged
    assert desk_a.desk.summary().persons == 0 and desk_b.desk.summary().persons == 3
    assert desk_b.platform.set_status(shelters[1], "closed")["status"] == "closed"
    assert occupancy(server, shelters[1]) == (3, "closed")


def test_a_household_staying_in_a_car_is_sent_with_its_check_in_and_counted_per_shelter(server, shelters, tmp_path):
    """車中泊: the card says where the household stays; the desk sends it, the platform counts the
    households in cars at the shelter, another desk receives it, and the HQ's board reads it."""
    phone = Phone(tmp_path, server, Token(server, "ube-resident-2"))
    phone.card = replace(phone.card, stay=StayPlace.IN_CAR)
    phone.platform.register_device(phone.key.public_key())
    phone.platform.fetch_public_keys()
    clock = [time.time()]
    desk = Desk(tmp_path, "desk-car", server, Token(server, "ube-staff-1"), shelters[0], clock)
    desk.desk.check_in_text(phone.qr())
    [event] = desk.desk.pending()
    assert event.in_car and event_to_json(event)["inCar"] is True
    desk.platform.sync_desk(desk.desk)
    body = shelter_entity(server, shelters[0])
    assert (body["inCarHouseholds"]["value"], body["inCarPersons"]["value"]) == (1, 3)
    [row] = [r for r in shelter_board([body]) if r.shelter_id == shelters[0]]
    assert (row.in_car_households, row.in_car_persons) == (1, 3)
    other = Desk(tmp_path, "desk-other", server, Token(server, "ube-staff-1"), shelters[1], clock)
    other.platform.sync_desk(other.desk)
    assert other.db.execute("SELECT in_car FROM checkin_event WHERE ref = ?", [event.ref]).fetchone() == (1,)
    clock[0] += 60
    desk.desk.check_out(event.ref)
    desk.platform.sync_desk(desk.desk)
    assert shelter_entity(server, shelters[0])["inCarHouseholds"]["value"] == 0


def test_in_car_travels_only_when_true_and_must_be_a_boolean() -> None:
    plain = {"id": "k1", "action": "check_in", "ref": "ab" * 8, "householdSize": 2, "shelterId": "S1",
             "municipalityCode": CODE, "at": "2026-12-05T01:00:00+00:00"}
    assert "inCar" not in event_to_json(event_from_json(plain))
    assert event_from_json({**plain, "inCar": True}).in_car
    with pytest.raises(WireError, match="inCar"):
        event_from_json({**plain, "inCar": "yes"})


def test_residents_get_403_on_desk_endpoints_and_keep_nothing(server, tmp_path):
    phone = Phone(tmp_path, server, Token(server, "ube-resident-2"))
    keys = MemoryKeyStore()
    with pytest.raises(PlatformError) as refused:
        phone.platform.fetch_desk_keys(keys)
    assert refused.value.status == 403 and "shelter_staff" in str(refused.value)
    assert desk_seal_keys(keys, CODE) == []
    with pytest.raises(PlatformError):
        phone.platform.fetch_device_keys()
    assert checkin_store.get_sync(phone.db, "device_cursor") is None


def test_staff_role_and_municipality_come_from_userinfo(server):
    for username, staff in (("ube-resident-1", False), ("ube-staff-1", True)):
        token = login(server, username)["access_token"]
        info = httpx.get(server.base_url + "/userinfo", headers={"Authorization": f"Bearer {token}"}).json()
        identity = Identity.from_claims(info)
        assert identity.has_role(STAFF_ROLE) is staff and identity.municipality == CODE


def test_revoked_device_key_reaches_the_desk_and_posters_are_platform_signed(server, shelters, tmp_path):
    phone = Phone(tmp_path, server, Token(server, "ube-resident-1"))
    phone.platform.register_device(phone.key.public_key())
    phone.platform.fetch_public_keys()
    desk = Desk(tmp_path, "desk-c", server, Token(server, "ube-staff-1"), shelters[0], [time.time()])
    assert desk.platform.directory.device_key(device_kid(phone.key.public_key())) is not None
    poster = verify_poster(desk.platform.poster(shelters[0], "x"), phone.platform.directory, time.time())
    assert poster.shelter_id == shelters[0]
    phone.platform.revoke_device(phone.key.public_key())
    assert desk.platform.fetch_device_keys() == 1
    assert desk.platform.directory.device_key(device_kid(phone.key.public_key())) is None


def consent(server, token: Token, action: str) -> None:
    path = "/cityos/v1/consents" + ("/revoke" if action == "revoke" else "")
    answer = httpx.post(server.base_url + path, headers={"Authorization": f"Bearer {token.value}"},
                        json={"category": "evacuee_card", "purpose": "disaster_response", "recipient": "city"})
    assert answer.status_code in (200, 201)


def test_self_check_in_by_platform_poster_syncs_with_consent_and_revoking_deletes_it(server, shelters, tmp_path):
    resident = Token(server, "ube-resident-2")
    phone = Phone(tmp_path, server, resident)
    phone.platform.fetch_public_keys()
    desk = Desk(tmp_path, "desk-d", server, Token(server, "ube-staff-1"), shelters[0], [time.time()])
    poster = desk.platform.poster(shelters[0], "入口")
    before, before_self = occupancy(server, shelters[0])[0], self_reported(server, shelters[0])
    me = ResidentCheckins(phone.db, phone.platform.directory)
    me.check_in(poster, phone.card)  # at the entrance, offline

    with pytest.raises(PlatformError) as refused:  # no consent yet: nothing leaves the phone
        phone.platform.sync_own(me)
    assert refused.value.status == 403 and len(me.pending()) == 1
    consent(server, resident, "grant")
    assert phone.platform.sync_own(me) == CheckinSyncReport(1, 0, 0) and me.pending() == []
    # Shown apart: the desk-confirmed count (and so "full") does not move; the self-reported one does.
    assert (occupancy(server, shelters[0])[0], self_reported(server, shelters[0])) == (before, before_self + 3)

    # An event whose poster the platform never signed, or of another shelter, is refused with a reason.
    forged = make_poster_token(Ed25519PrivateKey.generate(), shelters[1], CODE, "偽", 0, 2**31)
    for key, text in (("forged-poster", forged), ("wrong-shelter", poster)):
        checkin_store.insert_event(phone.db, {
            "idempotency_key": key, "origin": "self", "action": "check_in", "ref": phone.card.ref,
            "household_size": 3, "shelter_id": shelters[1], "municipality_code": CODE, "shelter_name": "x",
            "at": iso_utc(time.time()), "poster": text})
    assert phone.platform.sync_own(me) == CheckinSyncReport(0, 2, 0)
    assert self_reported(server, shelters[0]) == before_self + 3

    # Another account cannot move this household with its own events.
    (tmp_path / "other").mkdir()
    intruder_token = Token(server, "ube-resident-1")
    intruder = Phone(tmp_path / "other", server, intruder_token)
    consent(server, intruder_token, "grant")
    theirs = ResidentCheckins(intruder.db, phone.platform.directory)
    theirs.check_in(poster, phone.card)
    theirs.check_out(poster)
    assert intruder.platform.sync_own(theirs).rejected == 2
    assert self_reported(server, shelters[0]) == before_self + 3

    consent(server, resident, "revoke")  # really deletes: the count goes back
    assert (occupancy(server, shelters[0])[0], self_reported(server, shelters[0])) == (before, before_self)


def test_survey_answers_need_consent_are_checked_and_summed_for_staff(server, shelters, tmp_path):
    resident = Token(server, "ube-resident-1")
    phone = Phone(tmp_path, server, resident)
    surveys = SurveyAnswers(phone.db)
    surveys.submit(shelters[1], {"satisfaction": 2, "needs": ["water", "bedding"], "biggest_problem": "sleep",
                                 "stress": 4, "comment": "夜が寒い"})
    consent(server, resident, "revoke")
    with pytest.raises(PlatformError) as refused:
        phone.platform.send_surveys(surveys)
    assert refused.value.status == 403 and len(surveys.pending()) == 1
    consent(server, resident, "grant")
    surveys.submit(shelters[1], {"satisfaction": 4, "needs": ["water"], "biggest_problem": "noise", "stress": 2})
    checkin_store.insert_survey(phone.db, "tampered", shelters[1], "ja", '{"satisfaction": 9}')  # not what the app sends
    assert phone.platform.send_surveys(surveys) == CheckinSyncReport(2, 1, 0)
    phone.db.execute("UPDATE checkin_survey SET synced_at = NULL")  # the answer was lost: sent again
    assert phone.platform.send_surveys(surveys) == CheckinSyncReport(2, 1, 0)

    desk = Desk(tmp_path, "desk-s", server, Token(server, "ube-staff-1"), shelters[1], [time.time()])
    summary = desk.platform.survey_summary(shelters[1])
    assert summary["responses"] == 2 and summary["satisfaction"] == {"mean": 3.0, "answers": 2}
    assert summary["needs"]["water"] == 2 and summary["needs"]["bedding"] == 1
    assert summary["biggest_problem"]["sleep"] == 1 and summary["comments"] == ["夜が寒い"]
    with pytest.raises(PlatformError) as staff_only:
        phone.platform.survey_summary(shelters[1])
    assert staff_only.value.status == 403


def test_self_check_ins_are_bounded_and_cannot_make_a_shelter_look_full(server, shelters, tmp_path):
    """Issue 15: with the public entrance poster, 500 self check-ins of household size 100 once
    made a shelter public as full (50,000). Now: ≤ 10 people per household, ≤ 2 households per
    account, counted apart from the desk; the status follows desk-confirmed people only."""
    token = Token(server, "ube-resident-1")
    phone = Phone(tmp_path, server, token)
    phone.platform.fetch_public_keys()
    consent(server, token, "grant")
    desk = Desk(tmp_path, "desk-f", server, Token(server, "ube-staff-1"), shelters[1], [time.time()])
    poster = desk.platform.poster(shelters[1], "入口")
    before, before_self = occupancy(server, shelters[1]), self_reported(server, shelters[1])
    for i, size in enumerate([100, 4, 11, 3, 2, 5] + [100] * 40):
        checkin_store.insert_event(phone.db, {
            "idempotency_key": f"inflate-{i}", "origin": "self", "action": "check_in", "ref": f"{0xfeed0000 + i:032x}",
            "household_size": size, "shelter_id": shelters[1], "municipality_code": CODE, "shelter_name": "x",
            "at": iso_utc(time.time()), "poster": poster})
    report = phone.platform.sync_own(ResidentCheckins(phone.db, phone.platform.directory))
    assert (report.sent, report.rejected) == (2, 44)  # households of 4 and 3; the rest refused with a reason
    assert self_reported(server, shelters[1]) == before_self + 7
    assert occupancy(server, shelters[1]) == before  # the desk-confirmed count and status did not move
    consent(server, token, "revoke")
    assert self_reported(server, shelters[1]) == before_self
