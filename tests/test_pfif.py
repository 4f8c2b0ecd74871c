"""PFIF 1.4 export: structure checked with xml.etree against the 1.4 element sequences."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from app.devicekeys import MemoryKeyStore
from app.family import FamilyBook, export_pfif
from app.i18n import Translator
from offline.outbox import Outbox
from offline.store import open_store

NS = "{http://zesty.ca/pfif/1.4}"
NOW = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
PERSON_ORDER = ["person_record_id", "entry_date", "expiry_date", "author_name", "author_email", "author_phone",
                "source_name", "source_date", "source_url", "full_name", "given_name", "family_name", "alternate_names",
                "description", "sex", "date_of_birth", "age", "home_street", "home_neighborhood", "home_city",
                "home_state", "home_postal_code", "home_country", "photo_url", "profile_urls", "note"]
NOTE_ORDER = ["note_record_id", "person_record_id", "linked_person_record_id", "entry_date", "author_name",
              "author_email", "author_phone", "source_date", "author_made_contact", "status", "email_of_found_person",
              "phone_of_found_person", "last_known_location", "text", "photo_url"]
STATUSES = {"", "information_sought", "is_note_author", "believed_alive", "believed_missing", "believed_dead"}


def children(el: ET.Element) -> list[str]:
    assert all(c.tag.startswith(NS) for c in el), "every element is in the PFIF 1.4 namespace"
    return [c.tag[len(NS):] for c in el]


def in_order(names: list[str], order: list[str]) -> bool:
    positions = [order.index(n) for n in names]  # ValueError: an element PFIF 1.4 does not have
    return positions == sorted(positions) and all(names.count(n) == 1 for n in names if n != "note")


def test_export_is_valid_pfif_14_with_mapped_statuses(tmp_path) -> None:
    db = open_store(tmp_path / "a.db")
    consented = {"safety_status", "location"}.__contains__
    book = FamilyBook(db, MemoryKeyStore(), "sub-a", "352021", consented, Outbox(db, bytes(32), consented))
    book.replace_groups([{"id": "grp-ube-0001", "name": "宇部家", "owner": "sub-a", "members": [
        {"person": "sub-a", "name": "宇部 一郎", "role": "owner"},
        {"person": "sub-h", "name": "宇部 ハル <祖母> & co", "role": "member"},
        {"person": "sub-k", "name": "宇部 健", "role": "member"}],
        "caregivers": [{"person": "sub-h", "caregiver": "sub-a", "relation": "family"}]}])
    book.answer("evacuating", now=NOW)
    book.answer("atShelter", place="宇部市立琴芝小学校", lat=33.95, lon=131.25, now=NOW + timedelta(minutes=30))
    book.answer("needHelp", person="sub-h", message="歩けない", now=NOW + timedelta(minutes=10))

    xml = export_pfif(book, "grp-ube-0001", domain="mamori.ube.example.jp", t=Translator("ja"), now=NOW + timedelta(hours=1))
    root = ET.fromstring(xml)
    assert root.tag == NS + "pfif" and xml.startswith(b"<?xml")
    persons = root.findall(NS + "person")
    assert len(persons) == 3 and children(root) == ["person"] * 3
    by_name = {p.findtext(NS + "full_name"): p for p in persons}
    assert set(by_name) == {"宇部 一郎", "宇部 ハル <祖母> & co", "宇部 健"}  # escaped and read back intact
    ids = [p.findtext(NS + "person_record_id") for p in persons]
    assert len(set(ids)) == 3 and all(i.startswith("mamori.ube.example.jp/person.") for i in ids)
    assert b"sub-a" not in xml  # platform subject ids are not exported
    for person in persons:
        assert in_order(children(person), PERSON_ORDER)
        for field in ("person_record_id", "entry_date", "source_date", "full_name"):
            assert person.findtext(NS + field)
        for note in person.findall(NS + "note"):
            assert in_order(children(note), NOTE_ORDER)
            assert note.findtext(NS + "person_record_id") == person.findtext(NS + "person_record_id")
            assert note.findtext(NS + "status") in STATUSES
            datetime.strptime(note.findtext(NS + "source_date"), "%Y-%m-%dT%H:%M:%SZ")

    def notes(name: str) -> list[tuple[str, str | None, str | None]]:
        return [(n.findtext(NS + "status"), n.findtext(NS + "last_known_location"), n.findtext(NS + "text"))
                for n in by_name[name].findall(NS + "note")]

    assert notes("宇部 一郎") == [("is_note_author", None, "避難中"),
                                ("is_note_author", "宇部市立琴芝小学校", "避難所にいる")]
    assert notes("宇部 ハル <祖母> & co") == [("believed_alive", None, "助けが必要 (代理回答): 歩けない")]
    assert notes("宇部 健") == [("information_sought", None, "未回答")]
    proxy = by_name["宇部 ハル <祖母> & co"].find(NS + "note")
    assert proxy.findtext(NS + "author_name") == "宇部 一郎" and proxy.findtext(NS + "author_made_contact") == "true"


def test_hostile_text_ip_platform_and_empty_name_still_give_valid_pfif(tmp_path) -> None:
    db = open_store(tmp_path / "a.db")
    consented = {"safety_status", "location"}.__contains__
    book = FamilyBook(db, MemoryKeyStore(), "sub-a", "352021", consented, Outbox(db, bytes(32), consented))
    book.replace_groups([{"id": "grp-1", "name": "家", "owner": "sub-a", "members": [
        {"person": "sub-a", "name": "", "role": "owner"}, {"person": "sub-b", "name": "宇部\x01花子", "role": "member"}]}])
    book.answer("needHelp", message="助けて\x00\x1b[31m\x0b", now=NOW)
    for domain, expected in (("127.0.0.1", "mamori.localhost"), ("[::1]", "mamori.localhost"), ("localhost", "mamori.localhost"),
                             ("Platform.Ube.example.jp", "platform.ube.example.jp"), (None, "mamori.localhost")):
        root = ET.fromstring(export_pfif(book, "grp-1", domain=domain, t=Translator("ja"), now=NOW))
        persons = root.findall(NS + "person")
        assert all(p.findtext(NS + "person_record_id").startswith(expected + "/person.") for p in persons)
        assert [p.find(NS + "full_name") is not None for p in persons] == [True, True]
        assert sorted(p.findtext(NS + "full_name") for p in persons) == ["", "宇部花子"]
        texts = [n.findtext(NS + "text") for n in root.iter(NS + "note")]
        assert "助けが必要: 助けて[31m" in texts
