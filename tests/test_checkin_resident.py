"""Resident side: poster check-in/out offline, pending/ack bookkeeping, survey, translations."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import base45
import pytest
import segno

from app.checkin import (
    ALL_ERRORS,
    SURVEY,
    BadSignature,
    Expired,
    FormError,
    InvalidSurveyAnswer,
    MalformedToken,
    NotACheckinQr,
    NotCheckedIn,
    NotYetValid,
    ResidentCheckins,
    SurveyAnswers,
    UnknownSigner,
    card_from_form,
    form_from_household,
    make_poster_token,
    validate_answers,
)
from app.household import AgeBand, Contact, Household, HouseholdMember, Mobility, Pet
from app.i18n import Translator
from bench.checkin import example_household
from offline.store import open_store
from protocol.checkin import Ed25519PrivateKey
from tests.test_checkin_world import MUNICIPALITY, SHELTER_A, SHELTER_B, make_world

I18N = Path(__file__).resolve().parents[1] / "assets" / "i18n"


def test_self_check_in_and_out_by_poster_is_recorded_once() -> None:
    w = make_world()
    me = ResidentCheckins(w.db, w.keys)
    card = example_household()
    first = me.check_in(w.poster(SHELTER_A), card, now=w.now[0])
    again = me.check_in(w.poster(SHELTER_A), card, now=w.now[0] + 5)
    assert first == again and me.current() == first
    assert (first.shelter_id, first.municipality_code, first.household_size) == (SHELTER_A, MUNICIPALITY, 4)
    with pytest.raises(NotCheckedIn):
        me.check_out(w.poster(SHELTER_B), now=w.now[0] + 10)
    out = me.check_out(w.poster(SHELTER_A), now=w.now[0] + 60)
    assert out.action == "check_out" and me.current() is None
    assert [e.action for e in me.pending()] == ["check_in", "check_out"]


def test_poster_photographed_checks_in_and_out_and_other_codes_are_named() -> None:
    w = make_world()
    me = ResidentCheckins(w.db, w.keys)
    photo = segno.make(w.poster(SHELTER_A), error="m").png_data_uri(scale=6)
    picture = base64.b64decode(photo.split(",", 1)[1])
    stay = me.check_in_image(picture, example_household(), now=w.now[0])
    assert me.current() == stay and stay.shelter_id == SHELTER_A
    other = base64.b64decode(segno.make("https://example.org/", error="m").png_data_uri(scale=6).split(",", 1)[1])
    with pytest.raises(NotACheckinQr):
        me.check_out_image(other, now=w.now[0] + 30)
    assert me.check_out_image(picture, now=w.now[0] + 60).action == "check_out" and me.current() is None


def test_forged_altered_expired_or_wrong_posters_are_refused() -> None:
    w = make_world()
    me = ResidentCheckins(w.db, w.keys)
    card = example_household()
    forged = make_poster_token(Ed25519PrivateKey.generate(), SHELTER_A, MUNICIPALITY, "偽", 0, 2**31)
    genuine = w.poster(SHELTER_A, days=1)
    body = bytearray(base45.b45decode(genuine[4:]))
    body[-70] ^= 0x20  # inside the signed CBOR (the validity end)
    altered = "MS1:" + base45.b45encode(bytes(body)).decode()
    cases = [(forged, UnknownSigner), (altered, BadSignature), (genuine[:-3], MalformedToken),
             (genuine[:40], MalformedToken), ("https://example.org/", NotACheckinQr), ("MC1:ABC", NotACheckinQr)]
    for text, error in cases:
        with pytest.raises(error) as err:
            me.check_in(text, card, now=w.now[0])
        assert err.value.key.startswith("checkin.error.")
    with pytest.raises(Expired):
        me.check_in(genuine, card, now=w.now[0] + 3 * 86400)
    with pytest.raises(NotYetValid):
        me.check_in(genuine, card, now=w.now[0] - 86400)
    assert me.pending() == []


def test_thousand_offline_check_ins_sync_once_each(tmp_path: Path) -> None:
    w = make_world(tmp_path / "phone.sqlite")
    me = ResidentCheckins(w.db, w.keys)
    card = example_household()
    poster_a, poster_b = w.poster(SHELTER_A), w.poster(SHELTER_B)
    for i in range(500):
        me.check_in(poster_a if i % 2 else poster_b, card, now=w.now[0] + 2 * i)
        me.check_out(poster_a if i % 2 else poster_b, now=w.now[0] + 2 * i + 1)
    # a restart, then the outbox drains in batches; acks may repeat (retries) or come late
    me = ResidentCheckins(open_store(tmp_path / "phone.sqlite"), w.keys)
    seen: list[str] = []
    while batch := me.pending(limit=128):
        keys = [e.idempotency_key for e in batch]
        seen += keys
        assert me.mark_synced(keys[: len(keys) // 2]) == len(keys) // 2
        assert me.mark_synced(keys) == len(keys) - len(keys) // 2  # retried ack: no double count
    assert len(seen) == 1000 and len(set(seen)) == 1000
    assert me.mark_synced(seen) == 0 and me.pending() == []
    count, synced = w.db.execute("SELECT COUNT(*), COUNT(synced_at) FROM checkin_event").fetchone()
    assert count == synced == 1000


def test_survey_answers_are_validated_stored_and_drained() -> None:
    w = make_world()
    survey = SurveyAnswers(w.db)
    good = {"satisfaction": 4, "needs": ["water", "toilet", "water"], "biggest_problem": "sleep", "stress": 2}
    key = survey.submit(SHELTER_A, good, language="en")
    survey.submit(SHELTER_A, good, language="en", idempotency_key=key)  # a double tap
    [resp] = survey.pending()
    assert resp.idempotency_key == key and resp.answers["needs"] == ["water", "toilet"] and resp.language == "en"
    for bad in [{**good, "satisfaction": 6}, {**good, "satisfaction": True}, {**good, "needs": ["gold"]},
                {**good, "biggest_problem": "x"}, {k: v for k, v in good.items() if k != "stress"},
                {**good, "comment": "x" * 501}, {**good, "age": 3}]:
        with pytest.raises(InvalidSurveyAnswer):
            validate_answers(bad)
    assert survey.mark_synced([key]) == 1 and survey.pending() == []


def _messages(lang: str) -> dict[str, str]:
    return json.loads((I18N / f"checkin.{lang}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", ["ja", "en", "ja-easy"])
def test_every_message_key_has_a_translation(lang: str) -> None:
    messages = _messages(lang)
    needed = {k for q in SURVEY for k in q.label_keys} | {e.key for e in ALL_ERRORS}
    assert needed <= messages.keys(), needed - messages.keys()
    assert all(isinstance(v, str) and v.strip() for v in messages.values())
    assert messages.keys() == _messages("en").keys()


def test_the_card_starts_from_the_household_entered_in_my_hazard() -> None:
    household = Household(
        members=[HouseholdMember(AgeBand.ADULT, label="あなた"),
                 HouseholdMember(AgeBand.SENIOR, sex="female", mobility=Mobility.WHEELCHAIR, medications=["regular"],
                        allergies=["food"], label="祖母")],
        pets=[Pet("dog", 2)], contacts=[Contact("宇部 次郎", "090-0000-0000")])
    form = form_from_household(household, Translator("ja"))
    assert [m.label for m in form.members] == ["あなた", "祖母"]  # the resident counts: two people, not one
    grandmother = form.members[1]
    assert (grandmother.sex, grandmother.disability, grandmother.medication, grandmother.allergies) == (
        "FEMALE", "車いす", "常用薬あり", "アレルギーあり")
    assert (form.members[0].disability, form.members[0].medication) == ("", "")
    assert (form.pets, form.contact_name, form.contact_phone, form.language) == ("2", "宇部 次郎", "090-0000-0000", "ja")
    # Names are not in the household: the resident adds them, then the card saves as any other.
    with pytest.raises(FormError):
        card_from_form(form)
    form.members[0].name, grandmother.name = "宇部 太郎", "宇部 ハナ"
    card = card_from_form(form)
    assert card.household_size == 2 and card.members[1].disability == "車いす" and card.pets == 2
    # Nothing entered in My Hazard: the resident alone, in the app's language.
    alone = form_from_household(Household(), Translator("en"))
    assert len(alone.members) == 1 and alone.language == "en" and alone.pets == "0"
