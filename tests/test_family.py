"""Family domain on one phone: invite tokens, the sealed answer book, share text."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.devicekeys import MemoryKeyStore
from app.family import (
    ConsentMissing,
    FamilyBook,
    InvalidAnswer,
    InviteExpired,
    InviteForged,
    InviteMalformed,
    InviteReused,
    NotAllowed,
    SafetyStatus,
    age_key,
    invite_key,
    make_invite,
    parse_invite,
    share_text,
    verify_invite,
)
from app.i18n import Translator, messages
from offline.outbox import Outbox
from offline.store import open_store

NOW = datetime(2026, 7, 1, 5, 2, tzinfo=UTC)  # 14:02 JST
GROUP = "grp-ube-0001"


@pytest.fixture()
def keys() -> MemoryKeyStore:
    return MemoryKeyStore()


def test_invite_round_trip_and_preview(keys) -> None:
    key = invite_key(keys, GROUP)
    assert invite_key(keys, GROUP).private_bytes_raw() == key.private_bytes_raw()  # kept in secure storage
    text = make_invite(key, GROUP, "宇部家", "一郎", ttl_s=600, now=NOW.timestamp())
    preview = parse_invite(text)
    assert (preview.group_id, preview.group_name, preview.inviter_name) == (GROUP, "宇部家", "一郎")
    invite = verify_invite(text, key.public_key(), NOW.timestamp() + 60, lambda n: False)
    assert invite.expires_at == int(NOW.timestamp()) + 600 and len(invite.nonce) == 32


def test_forged_expired_reused_and_malformed_invites_are_refused(keys) -> None:
    key = invite_key(keys, GROUP)
    other = invite_key(keys, "grp-other-0002")
    text = make_invite(key, GROUP, "宇部家", "一郎", ttl_s=600, now=NOW.timestamp())
    t0 = NOW.timestamp()
    with pytest.raises(InviteForged) as forged:
        verify_invite(make_invite(other, GROUP, "宇部家", "一郎", now=t0), key.public_key(), t0, lambda n: False)
    assert forged.value.key == "family.error.invite_forged"
    body, sig = text[4:].split(".")
    tampered = "MF1:" + body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    with pytest.raises((InviteForged, InviteMalformed)):
        verify_invite(tampered, key.public_key(), t0, lambda n: False)
    with pytest.raises(InviteExpired) as expired:
        verify_invite(text, key.public_key(), t0 + 600 + 301, lambda n: False)
    assert expired.value.key == "family.error.invite_expired"
    used: set[str] = set()
    used.add(verify_invite(text, key.public_key(), t0, used.__contains__).nonce)
    with pytest.raises(InviteReused) as reused:
        verify_invite(text, key.public_key(), t0, used.__contains__)
    assert reused.value.key == "family.error.invite_reused"
    for bad in ("", "hello", "MF1:", "MF1:abc", "MF1:!!.??", "MF2:" + text[4:], text[:-10] + "x" * 5000):
        with pytest.raises(InviteMalformed):
            parse_invite(bad) if bad.startswith("MF") else verify_invite(bad, key.public_key(), t0, lambda n: False)
    for error in ("invite_malformed", "invite_forged", "invite_expired", "invite_reused"):
        for lang in ("ja", "en", "ja-easy"):
            assert messages(lang)[f"family.error.{error}"]


class Consent:
    def __init__(self, *granted: str) -> None:
        self.granted = set(granted)

    def __call__(self, category: str) -> bool:
        return category in self.granted


def _book(tmp_path, consent: Consent, me: str = "sub-a") -> tuple[FamilyBook, Outbox]:
    db = open_store(tmp_path / f"{me}.db")
    outbox = Outbox(db, bytes(32), consent)
    return FamilyBook(db, MemoryKeyStore(), me, "352021", consent, outbox), outbox


def test_answer_is_sealed_locally_and_queued_only_with_consent(tmp_path) -> None:
    consent = Consent()
    book, outbox = _book(tmp_path, consent)
    book.answer(SafetyStatus.SAFE, message="家にいます", now=NOW)
    assert outbox.queued_count() == 0  # no safety_status consent: kept on the phone only
    with pytest.raises(ConsentMissing):
        book.answer("atShelter", lat=33.95, lon=131.25, now=NOW)
    consent.granted |= {"safety_status", "location"}
    answer = book.answer("atShelter", place="琴芝小学校", lat=33.95, lon=131.25, now=NOW + timedelta(minutes=5))
    assert outbox.queued_count() == 1
    queued = outbox.pending(5)[0].body
    assert queued["id"] == "urn:ngsi-ld:SafetyStatus:sub-a" and queued["status"]["value"] == "atShelter"
    assert queued["location"]["value"]["coordinates"] == [131.25, 33.95] and queued["proxy"]["value"] is False
    assert book.latest("sub-a") == answer and len(book.history("sub-a")) == 2
    raw = b"".join(bytes(r[0]) for r in book._db.execute("SELECT sealed FROM family_answer").fetchall())
    assert "琴芝".encode() not in raw and "家にいます".encode() not in raw  # personal text never in plaintext SQLite
    for bad in ({"status": "fine"}, {"status": "safe", "message": "x" * 141}, {"status": "safe", "lat": 33.0},
                {"status": "safe", "lat": 95.0, "lon": 1.0}):
        with pytest.raises(InvalidAnswer):
            book.answer(bad.pop("status"), now=NOW, **bad)


def test_proxy_answer_needs_a_caregiver_link_and_waits_for_the_family_sync(tmp_path) -> None:
    book, outbox = _book(tmp_path, Consent("safety_status"), me="sub-carer")
    with pytest.raises(NotAllowed):
        book.answer("safe", person="sub-grandma", now=NOW)
    book.replace_groups([{"id": GROUP, "name": "宇部家", "owner": "sub-carer", "members": [
        {"person": "sub-carer", "name": "一郎", "role": "owner"}, {"person": "sub-grandma", "name": "ハル", "role": "member"}],
        "caregivers": [{"person": "sub-grandma", "caregiver": "sub-carer", "relation": "family"}]}])
    answer = book.answer("needHelp", person="sub-grandma", message="足が悪い", now=NOW)
    assert answer.is_proxy and outbox.queued_count() == 0  # proxies travel through the family endpoint
    assert [a.id for a in book.pending_proxy_answers()] == [answer.id]
    book.mark_sent(answer.id)
    assert book.pending_proxy_answers() == []
    rows = book.family_status(GROUP, now=NOW + timedelta(minutes=12))
    assert [(r.member.name, r.status_key, r.age_s) for r in rows] == [
        ("一郎", "family.status.unknown", None), ("ハル", "family.status.needHelp", 720)]
    assert age_key(rows[1].age_s) == ("family.age.minutes", {"n": 12})
    assert book.family_map(GROUP, NOW) == []  # nobody shared a location


def test_share_text_is_one_sms_friendly_line(tmp_path) -> None:
    book, _ = _book(tmp_path, Consent("safety_status", "location"))
    answer = book.answer("safe", place="宇部市立琴芝小学校", now=NOW)
    assert share_text(answer, Translator("ja"), now=NOW) == "安否: 無事 / 宇部市立琴芝小学校 / 14:02"
    assert share_text(answer, Translator("en"), now=NOW + timedelta(days=1)) == "Safety: Safe / 宇部市立琴芝小学校 / 07/01 14:02"
    located = book.answer("evacuating", lat=33.951234, lon=131.247, message="車で移動中", now=NOW)
    assert share_text(located, Translator("ja-easy"), now=NOW) == "あんぴ: にげて いる ところ / 33.95123,131.24700 / 車で移動中 / 14:02"
