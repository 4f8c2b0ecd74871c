"""Export a family's safety records as PFIF 1.4 (People Finder Interchange Format, the format
of Google Person Finder and similar registries), so they can be handed to such a registry.

One ``pfif:person`` per member, holding one ``pfif:note`` per answer, oldest first. Our
statuses map to PFIF note statuses by who answered:

* the person themself (any status)        -> ``is_note_author`` (author_made_contact true)
* a caregiver for them (proxy answer)     -> ``believed_alive``  (author_made_contact true)
* a member with no answer at all          -> one ``information_sought`` note

Our statuses (need help, injured, at a shelter…) go into the note text; a location only
where the answer carried one (given with the location consent). Elements are written in
the order the PFIF 1.4 schema's sequences require.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import xml.etree.ElementTree as ET
from datetime import datetime

from app.family._book import FamilyBook
from app.family._model import Answer, GroupMember
from app.i18n import Translator
from protocol.entities import utc

NS = "http://zesty.ca/pfif/1.4"
SOURCE_NAME = "Mamori 安否確認"
NOTE_STATUSES = ("information_sought", "is_note_author", "believed_alive", "believed_missing", "believed_dead")


def _pfif_time(moment: datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


# Characters XML 1.0 cannot carry (a member's message may hold them): dropped, not fatal.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
FALLBACK_DOMAIN = "mamori.localhost"


def _el(parent: ET.Element, name: str, text: str | None, required: bool = False) -> None:
    if text or required:
        ET.SubElement(parent, f"{{{NS}}}{name}").text = _NOT_XML.sub("", text or "")


def pfif_domain(host: str | None) -> str:
    """The record-id domain for a platform host: a DNS name (PFIF 1.4 §2.1), never an IP literal."""
    name = (host or "").strip("[]").lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
        return FALLBACK_DOMAIN
    except ValueError:
        pass
    labels = name.split(".")
    valid = len(labels) >= 2 and all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", label) for label in labels)
    return name if valid else FALLBACK_DOMAIN


def _record_id(domain: str, kind: str, local: str) -> str:
    # Pseudonymous ids stay ours: a registry sees a stable hash, not the platform subject.
    return f"{domain}/{kind}.{hashlib.sha256(f'{domain}:{local}'.encode()).hexdigest()[:20]}"


def _note(person_el: ET.Element, person_id: str, domain: str, answer: Answer | None, author: str,
          now: datetime, t: Translator) -> None:
    note = ET.SubElement(person_el, f"{{{NS}}}note")
    local = answer.id if answer else f"sought:{person_id}"
    _el(note, "note_record_id", _record_id(domain, "note", local))
    _el(note, "person_record_id", person_id)
    _el(note, "entry_date", _pfif_time(now))
    _el(note, "author_name", author)
    _el(note, "source_date", _pfif_time(answer.observed_at if answer else now))
    if answer is None:
        _el(note, "status", "information_sought")
        _el(note, "text", t("family.status.unknown"))
        return
    _el(note, "author_made_contact", "true")
    _el(note, "status", "believed_alive" if answer.is_proxy else "is_note_author")
    if answer.place or answer.has_location:
        _el(note, "last_known_location", answer.place or f"{answer.lat:.5f},{answer.lon:.5f}")
    text = t(answer.status.label_key) + (f" ({t('family.proxy_badge')})" if answer.is_proxy else "")
    _el(note, "text", text + (f": {answer.message}" if answer.message else ""))


def export_pfif(book: FamilyBook, group_id: str, *, domain: str, t: Translator, now: datetime | None = None) -> bytes:
    """The group's records as a PFIF 1.4 XML document (UTF-8 bytes)."""
    moment = utc(now)
    domain = pfif_domain(domain)
    ET.register_namespace("pfif", NS)
    root = ET.Element(f"{{{NS}}}pfif")
    members = book.members(group_id)
    names = {m.person: m.name for m in members}
    for member in members:
        _person(root, member, book.history(member.person), names, domain, moment, t)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _person(root: ET.Element, member: GroupMember, answers: list[Answer], names: dict[str, str], domain: str,
            now: datetime, t: Translator) -> None:
    person = ET.SubElement(root, f"{{{NS}}}person")
    person_id = _record_id(domain, "person", member.person)
    _el(person, "person_record_id", person_id)
    _el(person, "entry_date", _pfif_time(now))
    _el(person, "author_name", names.get(member.person))
    _el(person, "source_name", SOURCE_NAME)
    _el(person, "source_date", _pfif_time(now))
    _el(person, "full_name", member.name, required=True)  # PFIF 1.4 requires it, even when unnamed
    # The platform's copy of an answer made on this phone is the same answer: export it once.
    seen: set[str] = set()
    unique = []
    for answer in answers:
        key = f"{answer.reported_by}:{answer.observed_at.isoformat()}:{answer.status.value}"
        if key not in seen:
            seen.add(key)
            unique.append(answer)
    if not unique:
        _note(person, person_id, domain, None, SOURCE_NAME, now, t)
    for answer in unique:
        _note(person, person_id, domain, answer, names.get(answer.reported_by, SOURCE_NAME), now, t)
