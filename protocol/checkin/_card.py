"""The evacuee card (避難者カード): one household, filled once, reused at every shelter.

The same model serves the resident's phone, the QR token and the staff desk's paper-form
registration. ``card_to_bytes``/``card_from_bytes`` are a compact positional CBOR encoding
(small enough for a QR code); the decoder is strict, so any damaged or hostile input ends in
``InvalidCard`` and never in a half-filled card.
"""
from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum
from typing import Any

import cbor2

from protocol.checkin._errors import InvalidCard

_FORMAT = 1
MAX_MEMBERS = 20
_MAX_TEXT = {"name": 40, "kana": 60, "address": 120, "postal_code": 8, "phone": 20, "language": 8,
             "disability": 80, "allergy": 40, "medication": 120, "pets_note": 60, "contact_name": 40}
_MAX_ALLERGIES = 10
INFANT_UNDER_YEARS = 3  # shelters plan formula and diapers for children under three


class Sex(IntEnum):
    UNSPECIFIED = 0
    MALE = 1
    FEMALE = 2
    OTHER = 3


class CareLevel(IntEnum):
    """Long-term care certification (介護保険の要支援・要介護認定)."""

    NONE = 0
    SUPPORT_1 = 1  # 要支援1
    SUPPORT_2 = 2  # 要支援2
    CARE_1 = 3  # 要介護1
    CARE_2 = 4
    CARE_3 = 5
    CARE_4 = 6
    CARE_5 = 7  # 要介護5


class StayPlace(IntEnum):
    """Where the household actually stays: evacuees outside the building still need supplies."""

    IN_SHELTER = 0
    IN_CAR = 1  # 車中泊
    OUTSIDE = 2  # tent, home, relatives nearby


@dataclass(frozen=True, slots=True)
class CardMember:
    name: str  # as written (漢字 allowed)
    kana: str = ""  # reading (フリガナ), used for search
    birth_date: date | None = None
    sex: Sex = Sex.UNSPECIFIED
    care_level: CareLevel = CareLevel.NONE
    disability: str = ""
    allergies: tuple[str, ...] = ()
    medication: str = ""
    pregnant: bool = False

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    def is_infant_on(self, day: date) -> bool:
        age = self.age_on(day)
        return age is not None and age < INFANT_UNDER_YEARS


@dataclass(frozen=True, slots=True)
class EmergencyContact:
    name: str = ""
    phone: str = ""


def new_card_id() -> bytes:
    """A random household id: stable across QR codes so two shelters can spot the same household."""
    return secrets.token_bytes(8)


@dataclass(frozen=True, slots=True)
class EvacueeCard:
    members: tuple[CardMember, ...]
    address: str = ""
    postal_code: str = ""
    phone: str = ""
    contact: EmergencyContact = EmergencyContact()
    language: str = "ja"  # BCP 47 tag of the language staff should use
    stay: StayPlace = StayPlace.IN_SHELTER
    pets: int = 0
    pets_note: str = ""
    card_id: bytes = field(default_factory=new_card_id)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def household_size(self) -> int:
        return len(self.members)

    @property
    def ref(self) -> str:
        """Pseudonymous household reference (hex of ``card_id``): what leaves the device."""
        return self.card_id.hex()


def _check_text(value: object, what: str, limit_key: str) -> None:
    if not isinstance(value, str):
        raise InvalidCard(f"{what} must be text")
    if len(value) > _MAX_TEXT[limit_key]:
        raise InvalidCard(f"{what} is longer than {_MAX_TEXT[limit_key]} characters")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidCard(f"{what} contains control characters")


def _validate(card: EvacueeCard) -> None:
    if not isinstance(card.card_id, bytes) or len(card.card_id) != 8:
        raise InvalidCard("card id must be 8 bytes")
    if not isinstance(card.members, tuple) or not 1 <= len(card.members) <= MAX_MEMBERS:
        raise InvalidCard(f"a card lists 1 to {MAX_MEMBERS} household members")
    for field_name in ("address", "postal_code", "phone", "language", "pets_note"):
        _check_text(getattr(card, field_name), field_name, field_name)
    _check_text(card.contact.name, "contact name", "contact_name")
    _check_text(card.contact.phone, "contact phone", "phone")
    if not isinstance(card.stay, StayPlace):
        raise InvalidCard("stay must be a StayPlace")
    if not isinstance(card.pets, int) or isinstance(card.pets, bool) or not 0 <= card.pets <= 50:
        raise InvalidCard("pets must be a count from 0 to 50")
    for i, m in enumerate(card.members, start=1):
        _validate_member(m, f"member {i}")


def _validate_member(m: CardMember, where: str) -> None:
    if not isinstance(m, CardMember):
        raise InvalidCard(f"{where} is not a CardMember")
    _check_text(m.name, f"{where} name", "name")
    if not m.name.strip():
        raise InvalidCard(f"{where} name is empty")
    _check_text(m.kana, f"{where} kana", "kana")
    _check_text(m.disability, f"{where} disability", "disability")
    _check_text(m.medication, f"{where} medication", "medication")
    if m.birth_date is not None and (not isinstance(m.birth_date, date) or m.birth_date.year < 1890):
        raise InvalidCard(f"{where} birth date is not a plausible date")
    if not isinstance(m.sex, Sex) or not isinstance(m.care_level, CareLevel):
        raise InvalidCard(f"{where} sex/care level must be enum values")
    if not isinstance(m.allergies, tuple) or len(m.allergies) > _MAX_ALLERGIES:
        raise InvalidCard(f"{where} allergies must be a tuple of at most {_MAX_ALLERGIES}")
    for a in m.allergies:
        _check_text(a, f"{where} allergy", "allergy")
    if not isinstance(m.pregnant, bool):
        raise InvalidCard(f"{where} pregnant must be true or false")


# --- compact encoding -------------------------------------------------------------------
# Non-ASCII text goes as a CBOR byte string in Shift_JIS (cp932), with katakana written
# half-width (1 byte each): a 4-person household's QR code stays two versions smaller than
# with UTF-8. Text cp932 cannot carry exactly (rare kanji, accents) goes as 0x00 + UTF-16-BE.

_HALF_WIDTH = {unicodedata.normalize("NFKC", chr(c)): chr(c) for c in range(0xFF61, 0xFFA0)}


def _to_half_width(s: str) -> str:
    decomposed = unicodedata.normalize("NFD", s)  # ガ -> カ + combining dakuten -> ｶﾞ
    return "".join(_HALF_WIDTH.get(c, c) for c in decomposed)


def _from_half_width(s: str) -> str:
    out, run = [], []
    for c in s + "\0":
        if "\uff61" <= c <= "\uff9f":
            run.append(c)
            continue
        if run:
            out.append(unicodedata.normalize("NFKC", "".join(run)))
            run = []
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out[:-1]))


def _pack_text(s: str) -> str | bytes:
    if s.isascii():
        return s
    try:
        packed = _to_half_width(s).encode("cp932")
        if _from_half_width(packed.decode("cp932")) == s:
            return packed
    except UnicodeError:
        pass
    return b"\0" + s.encode("utf-16-be")


def _unpack_text(v: Any, what: str) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bytes) and v:
        try:
            if v[0] == 0:
                return v[1:].decode("utf-16-be")
            return _from_half_width(v.decode("cp932"))
        except UnicodeDecodeError:
            pass
    raise InvalidCard(f"{what} is not text")


def _pack_date(d: date | None) -> int:
    return 0 if d is None else d.year * 10000 + d.month * 100 + d.day


def _unpack_date(v: Any, what: str) -> date | None:
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidCard(f"{what} birth date is not a number")
    if v == 0:
        return None
    try:
        return date(v // 10000, v // 100 % 100, v % 100)
    except (ValueError, OverflowError):
        raise InvalidCard(f"{what} birth date is not a calendar date") from None


def _pack_member(m: CardMember) -> list[Any]:
    return [_pack_text(m.name), _pack_text(m.kana), _pack_date(m.birth_date), int(m.sex),
            int(m.care_level), _pack_text(m.disability), [_pack_text(a) for a in m.allergies],
            _pack_text(m.medication), m.pregnant]


def card_to_bytes(card: EvacueeCard) -> bytes:
    return cbor2.dumps([
        _FORMAT, card.card_id, _pack_text(card.address), card.postal_code, card.phone,
        [_pack_text(card.contact.name), card.contact.phone], card.language, int(card.stay),
        card.pets, _pack_text(card.pets_note), [_pack_member(m) for m in card.members],
    ])


def _int_enum(enum: type[IntEnum], v: Any, what: str) -> Any:
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidCard(f"{what} is not a number")
    try:
        return enum(v)
    except ValueError:
        raise InvalidCard(f"{what} value {v} is unknown") from None


def _list(v: Any, n: int | None, what: str) -> list[Any]:
    if not isinstance(v, list) or (n is not None and len(v) != n):
        raise InvalidCard(f"{what} has the wrong shape")
    return v


def _unpack_member(v: Any, where: str) -> CardMember:
    name, kana, birth, sex, care, disability, allergies, medication, pregnant = _list(v, 9, where)
    if not isinstance(pregnant, bool):
        raise InvalidCard(f"{where} pregnant flag is not true/false")
    return CardMember(
        name=_unpack_text(name, f"{where} name"), kana=_unpack_text(kana, f"{where} kana"),
        birth_date=_unpack_date(birth, where), sex=_int_enum(Sex, sex, f"{where} sex"),
        care_level=_int_enum(CareLevel, care, f"{where} care level"),
        disability=_unpack_text(disability, f"{where} disability"),
        allergies=tuple(_unpack_text(a, f"{where} allergy") for a in _list(allergies, None, f"{where} allergies")),
        medication=_unpack_text(medication, f"{where} medication"), pregnant=pregnant,
    )


def card_from_bytes(data: bytes) -> EvacueeCard:
    """Decode ``card_to_bytes`` output; raises ``InvalidCard`` for anything else."""
    try:
        raw = cbor2.loads(data)
    except Exception:  # cbor2 raises many types (CBORDecodeError, ValueError, RecursionError...)
        raise InvalidCard("card data is not valid CBOR") from None
    fmt, card_id, address, postal, phone, contact, language, stay, pets, pets_note, members = _list(raw, 11, "card")
    if fmt != _FORMAT:
        raise InvalidCard(f"card format {fmt!r} is not supported")
    if not isinstance(card_id, bytes):
        raise InvalidCard("card id is not bytes")
    contact_name, contact_phone = _list(contact, 2, "contact")
    texts = ((postal, "postal code"), (phone, "phone"), (contact_phone, "contact phone"), (language, "language"))
    for v, what in texts:
        if not isinstance(v, str):
            raise InvalidCard(f"{what} is not text")
    if not isinstance(pets, int) or isinstance(pets, bool):
        raise InvalidCard("pets is not a number")
    members_raw = _list(members, None, "members")
    if len(members_raw) > MAX_MEMBERS:
        raise InvalidCard(f"more than {MAX_MEMBERS} members")
    return EvacueeCard(
        card_id=card_id, address=_unpack_text(address, "address"), postal_code=postal, phone=phone,
        contact=EmergencyContact(_unpack_text(contact_name, "contact name"), contact_phone),
        language=language, stay=_int_enum(StayPlace, stay, "stay"), pets=pets,
        pets_note=_unpack_text(pets_note, "pets note"),
        members=tuple(_unpack_member(m, f"member {i}") for i, m in enumerate(members_raw, start=1)),
    )
