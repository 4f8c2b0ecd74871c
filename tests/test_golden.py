"""Golden vectors of every wire format (tests/fixtures/golden), checked on the app's side: its
encoders reproduce them byte for byte where the format is deterministic, its decoders read them
back field by field. tests/cityos/test_golden.py feeds the same vectors to the platform."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest

import protocol.checkin as pc
import protocol.family as pf
import protocol.points as pp
from app.checkin import ShelterDesk, StoredKeyDirectory, new_at_rest_key
from offline.store import open_store
from protocol.checkin import (
    CardMember,
    CareLevel,
    EmergencyContact,
    EvacueeCard,
    Sex,
    StayPlace,
    card_from_bytes,
    card_to_bytes,
    event_from_json,
    event_to_json,
    make_evacuee_token,
    make_poster_token,
    open_evacuee_card,
    parse_evacuee_token,
    seal_kid_map,
    verify_evacuee_token,
    verify_poster,
)
from protocol.family import alert_entity, alert_from_entity, parse_invite, public_key_from_text, verify_invite
from protocol.points import (
    Activity,
    Coupon,
    EventQr,
    make_coupon_qr,
    make_event_qr,
    verify_coupon_qr,
    verify_event_qr,
)
from protocol.signing import signer_kid
from tests.golden import GoldenKeys, ed25519, vector, x25519


def _card(v: dict) -> EvacueeCard:
    members = tuple(CardMember(m["name"], m["kana"], date.fromisoformat(m["birth_date"]), Sex(m["sex"]), CareLevel(m["care_level"]),
                           m["disability"], tuple(m["allergies"]), m["medication"], m["pregnant"]) for m in v["members"])
    return EvacueeCard(members, v["address"], v["postal_code"], v["phone"], EmergencyContact(**v["contact"]), v["language"],
                       StayPlace(v["stay"]), v["pets"], v["pets_note"], bytes.fromhex(v["household_ref"]))


def test_evacuee_card_encoding_is_exact_and_the_golden_qr_opens_to_it():
    v = vector("checkin_evacuee_qr")
    card = _card(v)
    assert card_to_bytes(card).hex() == v["card_cbor_hex"]
    assert card_from_bytes(bytes.fromhex(v["card_cbor_hex"])) == card
    token = parse_evacuee_token(v["token"])
    assert (token.issued_at, token.ttl_s) == (v["now"], v["ttl_s"])
    verify_evacuee_token(token, GoldenKeys(), v["now"])
    assert open_evacuee_card(token, seal_kid_map([x25519("shelter_seal")])) == card
    fresh = parse_evacuee_token(make_evacuee_token(card, ed25519("device"), x25519("shelter_seal").public_key(), now=v["now"]))
    assert fresh.header[:13] == token.header[:13] and fresh.seal_kid == token.seal_kid  # version, kid, time, ttl


def test_the_desk_reads_the_golden_evacuee_qr(tmp_path):
    """The app's staff desk, with the golden keys in its store, checks the golden household in."""
    v = vector("checkin_evacuee_qr")
    db = open_store(tmp_path / "desk.sqlite")
    keys = StoredKeyDirectory(db)
    keys.add_device_key(ed25519("device").public_key())
    desk = ShelterDesk(db, keys, [x25519("shelter_seal")], new_at_rest_key(), "1234567890-001", "352021",
                       clock=lambda: float(v["now"]))
    done = desk.check_in_text(v["token"])
    assert done.card == _card(v) and done.ref == v["household_ref"] and not done.already_present
    [event] = desk.pending()
    assert (event.ref, event.household_size, event.action) == (v["household_ref"], 2, "check_in")


def test_poster_qr_is_exact_both_ways():
    v = vector("checkin_poster_qr")
    fields = {k: v[k] for k in ("shelter_id", "municipality_code", "shelter_name", "valid_from", "valid_until")}
    assert make_poster_token(ed25519("poster"), **fields) == v["text"]
    assert dataclasses.asdict(verify_poster(v["text"], GoldenKeys(), v["now"])) == fields


def test_desk_event_json_is_normalised_as_recorded():
    v = vector("checkin_desk_event")
    event = event_from_json(v["sent"])
    assert event_to_json(event) == v["normalised"]
    assert event_from_json(v["normalised"]) == event


def test_points_qr_codes_are_exact_both_ways():
    v = vector("points_qr")
    key = ed25519("points")
    lookup = {signer_kid(key.public_key()): key.public_key()}.get
    e, c = v["event"], v["coupon"]
    event = EventQr(e["event_id"], e["municipality_code"], Activity(e["activity"]), e["title"], e["valid_from"], e["valid_until"])
    coupon = Coupon(c["coupon_id"], c["municipality_code"], c["points"], c["issued_at"], c["expires_at"])
    assert (make_event_qr(key, event), make_coupon_qr(key, coupon)) == (e["text"], c["text"])
    assert verify_event_qr(e["text"], lookup, v["now"]) == event
    assert verify_coupon_qr(c["text"], lookup, v["now"]) == coupon


def test_family_invite_reads_and_verifies():
    v = vector("family_invite")
    fields = (v["group_id"], v["group_name"], v["inviter_name"], v["issued_at"], v["expires_at"])
    preview = parse_invite(v["text"])
    assert (preview.group_id, preview.group_name, preview.inviter_name, preview.issued_at, preview.expires_at) == fields
    assert verify_invite(v["text"], public_key_from_text(v["public_key"]), v["issued_at"] + 60, lambda nonce: False) == preview
    assert public_key_from_text(v["public_key"]).public_bytes_raw() == ed25519("invite").public_key().public_bytes_raw()


def test_alert_entity_is_exact_and_reads_back():
    v = vector("alert_entity")
    a = v["args"]
    made = alert_entity(a["local_id"], a["municipality_code"], hazard=a["hazard"], level=a["level"], headline=a["headline"],
                        issued_at=datetime.fromisoformat(a["issued_at"]), expires_at=datetime.fromisoformat(a["expires_at"]),
                        polygon=a["polygon"], municipalities=a["municipalities"])
    assert made == v["entity"]
    alert = alert_from_entity(v["entity"])
    assert (alert.hazard, alert.level, alert.headline, alert.municipalities) == ("flood", 4, a["headline"], frozenset(["352021"]))
    assert alert.covers(pf.Place(33.95, 131.25)) and not alert.covers(pf.Place(33.85, 131.25))


@pytest.mark.parametrize(("module", "base"), [(pc, pc.CheckinError), (pf, pf.FamilyError), (pp, pp.PointsError)])
def test_error_codes_are_stable(module, base):
    recorded = vector("error_codes")[module.__name__.rsplit(".", 1)[1]]
    current = {n: getattr(module, n).key for n in module.__all__
               if isinstance(getattr(module, n), type) and issubclass(getattr(module, n), base)}
    assert current == recorded


def test_points_reject_reasons_are_stable():
    recorded = vector("error_codes")["points_reject_keys"]
    assert recorded == pp.REJECT_KEYS
    assert {reason: pp.reject_key(reason) for reason in recorded} == recorded
