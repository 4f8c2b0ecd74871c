"""Staff desk: scan, verify, unseal, record; rejections; paper forms; moves; summaries."""
from __future__ import annotations

import csv
import io
import random
from dataclasses import replace
from datetime import date
from pathlib import Path

import base45
import numpy as np
import pytest
from PIL import Image

from app.checkin import (
    BadSignature,
    CardMember,
    CareLevel,
    CheckinError,
    EvacueeCard,
    Expired,
    NotACheckinQr,
    NotCheckedIn,
    NotYetValid,
    RemoteEvent,
    Replayed,
    StayPlace,
    UnknownSigner,
    WrongRecipient,
    make_evacuee_token,
    show_qr,
    summaries_csv,
)
from bench.checkin import example_household, phone_photo
from offline.store import open_store
from protocol.checkin import Ed25519PrivateKey, X25519PrivateKey
from tests.test_checkin_world import MUNICIPALITY, SHELTER_A, SHELTER_B, World, make_world


def _counts(w: World) -> tuple[int, ...]:
    return tuple(w.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                 for t in ("checkin_evacuee", "checkin_stay", "checkin_event", "checkin_nonce"))


def _qr(w: World, card: EvacueeCard | None = None, **kw: object) -> str:
    return show_qr(card or example_household(), w.device, w.keys, MUNICIPALITY, now=w.now[0], **kw).text


def test_photo_of_phone_screen_checks_in_the_household() -> None:
    w = make_world()
    card = example_household()
    qr = show_qr(card, w.device, w.keys, MUNICIPALITY, now=w.now[0])
    result = w.desk().check_in_image(phone_photo(qr.png(scale=4), random.Random(1)))
    assert result.card == card and result.stay.shelter_id == SHELTER_A and not result.already_present
    assert _counts(w) == (1, 1, 1, 1)
    [event] = w.desk().pending()
    assert (event.action, event.origin, event.ref, event.household_size) == ("check_in", "desk", card.ref, 4)


def test_numpy_camera_frame_is_accepted() -> None:
    w = make_world()
    qr = show_qr(example_household(), w.device, w.keys, MUNICIPALITY, now=w.now[0])
    frame = np.asarray(Image.open(io.BytesIO(phone_photo(qr.png(scale=4), random.Random(2)))).convert("L"))
    assert w.desk().check_in_image(frame).card == example_household()


def _alter(text: str, index: int) -> str:
    raw = bytearray(base45.b45decode(text[4:]))
    raw[index % len(raw)] ^= 0x01
    return "MC1:" + base45.b45encode(bytes(raw)).decode()


def test_forged_altered_expired_replayed_codes_are_all_rejected_without_a_trace() -> None:
    w = make_world()
    desk = w.desk()
    used = _qr(w)
    desk.check_in_text(used)
    desk.check_out(example_household().ref)
    before = _counts(w)
    stranger = Ed25519PrivateKey.generate()
    claimed = bytearray(base45.b45decode(make_evacuee_token(example_household(), stranger,
                                                            w.shelter_key.public_key(), now=w.now[0])[4:]))
    claimed[1:9] = base45.b45decode(used[4:])[1:9]  # a stranger's signature under our phone's key id
    cases: list[tuple[str, type[CheckinError]]] = [
        (make_evacuee_token(example_household(), stranger, w.shelter_key.public_key(), now=w.now[0]), UnknownSigner),
        ("MC1:" + base45.b45encode(bytes(claimed)).decode(), BadSignature),
        (used, Replayed),
        (_alter(_qr(w), 20), BadSignature),
        (show_qr(example_household(), w.device, w.keys, MUNICIPALITY, now=w.now[0] - 2000, ttl_s=600).text, Expired),
        (show_qr(example_household(), w.device, w.keys, MUNICIPALITY, now=w.now[0] + 3600).text, NotYetValid),
        (make_evacuee_token(example_household(), w.device, X25519PrivateKey.generate().public_key(), now=w.now[0]),
         WrongRecipient),
        (w.poster(), NotACheckinQr),
    ]
    fresh = _qr(w)
    cases += [(_alter(fresh, i), CheckinError) for i in range(0, 400, 7)]
    for text, error in cases:
        with pytest.raises(error) as err:
            desk.check_in_text(text)
        assert err.value.key.startswith("checkin.error.") and str(err.value)
    assert _counts(w) == before


def test_replay_cache_survives_a_restart(tmp_path: Path) -> None:
    w = make_world(tmp_path / "desk.sqlite")
    text = _qr(w)
    w.desk().check_in_text(text)
    w.desk().check_out(example_household().ref)
    reopened = replace(w, db=open_store(tmp_path / "desk.sqlite"))
    with pytest.raises(Replayed):
        reopened.desk().check_in_text(text)


def test_second_scan_at_same_shelter_records_nothing_new() -> None:
    w = make_world()
    desk = w.desk()
    desk.check_in_text(_qr(w))
    again = desk.check_in_text(_qr(w))
    assert again.already_present and _counts(w)[1:3] == (1, 1)


def test_paper_registration_search_and_check_out() -> None:
    w = make_world()
    desk = w.desk()
    desk.check_in_text(_qr(w))
    elder = EvacueeCard(members=(CardMember("山田 トメ", "ヤマダ トメ", date(1938, 2, 3), care_level=CareLevel.CARE_2),),
                        address="会津若松市追手町1-1", phone="0242-00-0000")
    desk.register_paper(elder)
    assert {e.card for e in desk.search("やまだ")} == {elder}  # hiragana finds katakana kana
    assert {e.card for e in desk.search("ﾔﾏﾀﾞ")} == {elder}  # half-width typed at an old keyboard
    assert [e.card.members[0].name for e in desk.search("024239")] == ["会津 太郎"]  # phone without hyphens
    assert len(desk.search("")) == 2 and desk.search("存在しない") == []
    stay = desk.check_out(elder.ref)
    assert stay.end_reason == "check_out" and stay.checked_out_at
    assert [e.source for e in desk.list_evacuees()] == ["qr"]
    with pytest.raises(NotCheckedIn):
        desk.check_out(elder.ref)
    assert [e.action for e in desk.pending()] == ["check_in", "check_in", "check_out"]


def test_check_out_by_fresh_qr() -> None:
    w = make_world()
    desk = w.desk()
    desk.check_in_text(_qr(w))
    w.now[0] += 3600
    assert desk.check_out_text(_qr(w)).end_reason == "check_out"
    assert desk.list_evacuees() == []


def test_same_household_at_two_shelters_latest_wins_and_is_flagged() -> None:
    w = make_world()
    card = example_household()
    w.desk(SHELTER_A).check_in_text(_qr(w, card))
    w.now[0] += 600
    moved = w.desk(SHELTER_B).check_in_text(_qr(w, card))
    assert moved.moved_from == SHELTER_A and moved.stay.flagged
    assert w.desk(SHELTER_A).summary().households == 0
    assert w.desk(SHELTER_B).summary().households == 1
    [entry] = w.desk(SHELTER_B).list_evacuees()
    assert entry.flagged and entry.shelter_id == SHELTER_B


def test_late_remote_event_does_not_override_a_newer_check_in() -> None:
    w = make_world()
    card = example_household()
    desk = w.desk(SHELTER_A)
    desk.check_in_text(_qr(w, card))  # at now
    older = RemoteEvent("remote-1", "check_in", card.ref, 4, SHELTER_B, MUNICIPALITY, "2020-01-01T00:00:00.000+00:00")
    newer = RemoteEvent("remote-2", "check_in", "ffffffffffffffff", 2, SHELTER_B, MUNICIPALITY,
                        "2099-01-01T00:00:00.000+00:00")
    assert desk.apply_remote([older, newer, older]) == 2
    assert desk.apply_remote([older]) == 0
    [entry] = desk.list_evacuees()
    assert entry.shelter_id == SHELTER_A and entry.flagged
    assert desk.summary(SHELTER_B).persons == 2  # known only by size: no card on this desk
    assert all(e.origin != "remote" for e in desk.pending())  # never sent back


def test_summary_counts_needs_and_exports_csv() -> None:
    w = make_world()
    w.db["shelter"].insert({"region": "aizu", "id": SHELTER_A, "kind": "designated_shelter", "name": "A",
                            "address": "", "lat": 37.5, "lon": 139.9, "capacity": 100, "source": "test"})
    desk = w.desk()
    desk.check_in_text(_qr(w))
    car = EvacueeCard(members=(CardMember("車 一"), CardMember("車 二")), stay=StayPlace.IN_CAR, language="en", pets=2)
    desk.register_paper(car)
    s = desk.summary(on=date(2026, 6, 1))
    assert (s.capacity, s.persons, s.households, s.occupancy_pct) == (100, 6, 2, 6.0)
    assert (s.care, s.allergy, s.medication, s.infants, s.pregnant, s.disability) == (0, 2, 1, 1, 1, 1)
    assert (s.pet_households, s.pets, s.in_car_persons, s.outside_persons) == (2, 3, 2, 0)
    assert s.languages == {"ja": 4, "en": 2}
    rows = list(csv.DictReader(io.StringIO(summaries_csv(desk.summaries(on=date(2026, 6, 1))))))
    assert rows == [{"shelter_id": SHELTER_A, "capacity": "100", "persons": "6", "households": "2",
                     "occupancy_pct": "6.0", "care": "0", "disability": "1", "allergy": "2", "medication": "1",
                     "infants": "1", "pregnant": "1", "pet_households": "2", "pets": "3", "in_car_persons": "2",
                     "outside_persons": "0", "flagged_households": "0"}]
    assert "会津" not in summaries_csv(desk.summaries())


def test_desk_database_holds_no_readable_personal_data(tmp_path: Path) -> None:
    w = make_world(tmp_path / "desk.sqlite")
    w.desk().check_in_text(_qr(w))
    w.desk().register_paper(EvacueeCard(members=(CardMember("紙 太郎", "カミ タロウ"),), phone="090-9999-8888"))
    w.db.execute("PRAGMA wal_checkpoint(FULL)")
    for f in tmp_path.iterdir():
        raw = f.read_bytes()
        for needle in ("会津", "紙 太郎", "カミ", "090-9999-8888", "そば"):
            for enc in ("utf-8", "cp932", "utf-16-be"):
                assert needle.encode(enc) not in raw, (needle, enc, f.name)
