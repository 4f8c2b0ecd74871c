"""What the check-in screens call, wired for this device (no Flet here), and the check-in
features of the app's sync engine (device keys, desk events, own check-ins and surveys).

Two modes:

* platform (a platform is configured and the resident is logged in): this phone's signing key
  is registered with the city platform, cards are sealed to the municipality's shelter key
  fetched from it, staff mode needs the ``shelter_staff`` role from the login (kept for offline
  use), the desk's seal key comes from the platform into the device KeyStore, and desk events
  sync with the platform;
* demo keys (no platform, the default offline demo): on first use this device makes its own
  signing key, the municipality's shelter seal key pair and a poster key, keeps the secrets in
  the device KeyStore (never SQLite) and registers the public halves in StoredKeyDirectory, so
  the resident and the desk work in the same app. The screens say so.

Network calls (``connect``, ``survey_summary``, ``publish_status``, ``poster_token`` in platform
mode) block: call them off the UI thread. They use their own SQLite connection, as connections
are per thread. Records (scans, check-outs, paper cards, own check-ins, surveys) are written
locally and sent by the sync engine: each write kicks its feature.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from platformdirs import user_data_dir

from app.checkin._answers import SurveyAnswers
from app.checkin._desk import DeskCheckIn, ShelterDesk, summaries_csv
from app.checkin._keystore import StoredKeyDirectory
from app.checkin._platform import CheckinPlatform, desk_seal_keys
from app.checkin._resident import CardVault, CheckinEvent, EvacueeQr, ResidentCheckins, show_qr
from app.consent import ConsentLedger, DataCategory
from app.devicekeys import KeyStore, get_or_create
from app.household import Household, Mobility
from app.i18n import Translator
from app.identity import Identity
from app.platform import PlatformError
from app.shelters import ShelterDirectory
from app.sync import Feature, FeatureState, SyncContext
from geo.models import Shelter
from offline import checkin_store
from offline.store import own_connection, store_file
from protocol.checkin import (
    STAFF_ROLE,
    CardMember,
    CareLevel,
    CheckinError,
    EmergencyContact,
    EvacueeCard,
    Sex,
    StayPlace,
    UnknownSigner,
    device_kid,
    make_poster_token,
    poster_kid,
    verify_poster,
)
from protocol.hazards import ShelterKind

if TYPE_CHECKING:
    from app.connection import PlatformLink

CARD_KEY = "mamori.checkin.card"  # at-rest key of the resident's own card
DESK_KEY = "mamori.checkin.desk"  # at-rest key of the cards a desk has received
DEVICE_KEY = "mamori.checkin.device"  # Ed25519 seed that signs this phone's QR codes
POSTER_KEY = "mamori.checkin.poster"  # demo stand-in for the platform's poster key
SEAL_KEY = "mamori.checkin.seal."  # + municipality code: demo stand-in for the city's desk key
POSTER_RENEW_S = 7 * 24 * 3600  # a kept platform poster with less left than this is renewed when online
POSTER_VALID_S = 30 * 24 * 3600  # a printed entrance poster stays up for the length of a long evacuation


class FormError(ValueError):
    """A form field the card model cannot take; ``key`` names the message, ``values`` fill it."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key, self.values = key, values


@dataclass
class MemberForm:
    name: str = ""
    kana: str = ""
    birth: str = ""  # as typed: 1980-04-01, 1980/4/1 or 19800401
    sex: str = Sex.UNSPECIFIED.name
    care: str = CareLevel.NONE.name
    disability: str = ""
    allergies: str = ""  # comma separated
    medication: str = ""
    pregnant: bool = False
    label: str = ""  # how My Hazard's household calls the person ("祖母"): a hint, not on the card


@dataclass
class CardForm:
    """The paper 避難者カード as the screen edits it: plain strings until saved."""

    members: list[MemberForm] = field(default_factory=lambda: [MemberForm()])
    address: str = ""
    postal_code: str = ""
    phone: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    language: str = "ja"
    stay: str = StayPlace.IN_SHELTER.name
    pets: str = "0"
    pets_note: str = ""
    card_id: bytes | None = None  # kept when editing, so the household keeps its reference


def parse_birth(text: str, person: int) -> date | None:
    text = text.strip()
    if not text:
        return None
    m = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text) or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
    try:
        if m is None:
            raise ValueError(text)
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise FormError("checkin.form.bad_birth", n=person) from None


def _member(f: MemberForm, person: int) -> CardMember:
    allergies = tuple(a.strip() for a in re.split(r"[,、，]", f.allergies) if a.strip())
    return CardMember(name=f.name.strip(), kana=f.kana.strip(), birth_date=parse_birth(f.birth, person), sex=Sex[f.sex],
                  care_level=CareLevel[f.care], disability=f.disability.strip(), allergies=allergies,
                  medication=f.medication.strip(), pregnant=f.pregnant)


def card_from_form(form: CardForm) -> EvacueeCard:
    """The card the form describes, or FormError naming the field (InvalidCard for model limits)."""
    for i, m in enumerate(form.members, start=1):
        if not m.name.strip():
            raise FormError("checkin.form.name_missing", n=i)
    pets = form.pets.strip() or "0"
    if not pets.isdigit() or int(pets) > 50:
        raise FormError("checkin.form.bad_pets")
    extra = {"card_id": form.card_id} if form.card_id else {}
    return EvacueeCard(
        members=tuple(_member(m, i) for i, m in enumerate(form.members, start=1)),
        address=form.address.strip(), postal_code=form.postal_code.strip(), phone=form.phone.strip(),
        contact=EmergencyContact(form.contact_name.strip(), form.contact_phone.strip()), language=form.language,
        stay=StayPlace[form.stay], pets=int(pets), pets_note=form.pets_note.strip(), **extra)


def form_from_card(card: EvacueeCard) -> CardForm:
    members = [MemberForm(m.name, m.kana, m.birth_date.isoformat() if m.birth_date else "", m.sex.name,
                          m.care_level.name, m.disability, "、".join(m.allergies), m.medication, m.pregnant)
               for m in card.members]
    return CardForm(members, card.address, card.postal_code, card.phone, card.contact.name, card.contact.phone,
                    card.language, card.stay.name, str(card.pets), card.pets_note, card.card_id)


def form_from_household(household: Household, t: Translator) -> CardForm:
    """A first card from the household entered in My Hazard, so it is entered once: one person per
    member (an empty household is the resident alone), their needs in words, pets and the first
    contact. Names and birth dates are not in the household: the resident adds them."""
    members = [
        MemberForm(sex={"female": Sex.FEMALE.name, "male": Sex.MALE.name}.get(m.sex or "", Sex.UNSPECIFIED.name),
                   disability="" if m.mobility is Mobility.NONE else t(f"mh.mobility.{m.mobility.value}"),
                   allergies=t("mh.has_allergy") if m.allergies else "",
                   medication=t("mh.has_medication") if m.medications else "", label=m.label)
        for m in household.members
    ] or [MemberForm()]
    contact = household.contacts[0] if household.contacts else None
    return CardForm(members, contact_name=contact.name if contact else "", contact_phone=contact.phone if contact else "",
                    language="en" if t.lang == "en" else "ja", pets=str(sum(p.count for p in household.pets)))


def platform_mode(link: PlatformLink | None) -> bool:
    """Keys, roles and desk sync come from the city platform (else: demo keys on this device)."""
    return bool(link and link.configured and link.logged_in)


class CheckinService:
    """One per app, municipality and mode: the resident's vault and QR, and desks for any shelter."""

    def __init__(self, db: sqlite_utils.Database, keys: KeyStore, municipality: str, link: PlatformLink | None) -> None:
        self.db, self.keys, self.link, self.municipality = db, keys, link, municipality
        self.platform = platform_mode(link)
        self.directory = StoredKeyDirectory(db)
        self.vault = CardVault(db, get_or_create(keys, CARD_KEY))
        self.surveys = SurveyAnswers(db)
        self.residents = ResidentCheckins(db, self.directory)
        self._device = Ed25519PrivateKey.from_private_bytes(get_or_create(keys, DEVICE_KEY))
        if not self.platform:
            self._register_demo_keys()

    def _demo_seal(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(get_or_create(self.keys, SEAL_KEY + self.municipality))

    def _register_demo_keys(self) -> None:
        device = self._device.public_key()
        if self.directory.device_key(device_kid(device)) is None:
            self.directory.add_device_key(device)
        if self.directory.shelter_seal_key(self.municipality) is None:
            self.directory.set_shelter_seal_key(self.municipality, self._demo_seal().public_key())
        poster = Ed25519PrivateKey.from_private_bytes(get_or_create(self.keys, POSTER_KEY)).public_key()
        if self.directory.poster_key(poster_kid(poster)) is None:
            self.directory.add_poster_key(poster)

    # ---- account (platform mode) ----
    def identity(self) -> Identity | None:
        """The account's roles as last seen online; None in demo mode or before the first fetch."""
        return self.link.identity if self.platform and self.link else None

    def staff_allowed(self) -> bool:
        """Demo mode: a local switch. Platform mode: only the shelter_staff role."""
        identity = self.identity()
        return not self.platform or bool(identity and identity.has_role(STAFF_ROLE))

    def connect(self) -> None:
        """Roles, device key registration and keys for offline use (desk keys for staff): the
        sync engine fetches them now (and every few minutes)."""
        self._kick(DEVICE_KEYS)

    @contextmanager
    def _client(self) -> Iterator[tuple[CheckinPlatform, sqlite_utils.Database]]:
        assert self.link is not None and self.link.http is not None
        with own_connection(self.db) as db:
            yield checkin_client(self.link, self.municipality, db), db

    # ---- resident ----
    def card(self) -> EvacueeCard | None:
        return self.vault.load()

    def save(self, form: CardForm) -> EvacueeCard:
        card = card_from_form(form)
        self.vault.save(card)
        return card

    def qr(self, card: EvacueeCard) -> EvacueeQr:
        return show_qr(card, self._device, self.directory, self.municipality)

    def sends_own(self) -> bool:
        """Self check-ins leave the phone only in platform mode and with the evacuee-card consent."""
        return self.platform and ConsentLedger(self.db).is_granted(DataCategory.EVACUEE_CARD)

    def record_survey(self, shelter_id: str, answers: dict[str, object], language: str) -> None:
        """Keep the answers here; the sync engine sends them when the resident shares check-ins."""
        self.surveys.submit(shelter_id, answers, language=language)
        self._kick(OWN)

    def check_in_self(self, picture: bytes, card: EvacueeCard) -> CheckinEvent:
        """Self check-in by the entrance poster, recorded at once with no network."""
        event = self.residents.check_in_image(picture, card)
        self._kick(OWN)
        return event

    def check_out_self(self, picture: bytes) -> CheckinEvent:
        event = self.residents.check_out_image(picture)
        self._kick(OWN)
        return event

    def send_own(self) -> None:
        """送信をやり直す: the sync engine tries the resident's own records now."""
        self._kick(OWN)

    def _kick(self, feature: str) -> None:
        if self.link:
            self.link.kick(feature)

    def survey_summary(self, shelter: Shelter) -> dict:
        """The shelter's survey answers summed up by the platform (staff). Network."""
        with self._client() as (client, _):
            return client.survey_summary(shelter.id)

    # ---- desk ----
    def poster_token(self, shelter: Shelter, now: float | None = None) -> str:
        """The self check-in QR text for ``shelter``'s entrance: signed by the platform in platform
        mode (network; PlatformError when offline or not staff), else with the demo poster key."""
        if self.platform:
            return self._platform_poster(shelter, time.time() if now is None else now)
        start = int(time.time() if now is None else now)
        key = Ed25519PrivateKey.from_private_bytes(get_or_create(self.keys, POSTER_KEY))
        return make_poster_token(key, shelter.id, self.municipality, shelter.name, start, start + POSTER_VALID_S)

    def _platform_poster(self, shelter: Shelter, now: float) -> str:
        """The platform's poster, kept (it is public) so the desk can show it again with no network."""
        key = f"poster:{shelter.id}"
        kept = checkin_store.get_sync(self.db, key)
        valid_until = self._valid_until(kept, now)
        if valid_until - now > POSTER_RENEW_S:
            return kept  # type: ignore[return-value]
        try:
            with self._client() as (client, _):
                client.fetch_public_keys()  # so this device can check the poster it shows
                fresh = client.poster(shelter.id, shelter.name)
        except PlatformError:
            if valid_until > now:
                return kept  # type: ignore[return-value]
            raise
        checkin_store.put_sync(self.db, **{key: fresh})
        return fresh

    def _valid_until(self, poster: str | None, now: float) -> float:
        try:
            return verify_poster(poster, self.directory, now).valid_until if poster else 0
        except CheckinError:  # expired, or signed by a key the city has since replaced
            return 0

    def seal_keys(self) -> list[X25519PrivateKey]:
        """What the desk unseals cards with; empty in platform mode until the desk keys arrived."""
        return desk_seal_keys(self.keys, self.municipality) if self.platform else [self._demo_seal()]

    def desk(self, shelter: Shelter, db: sqlite_utils.Database | None = None) -> ShelterDesk:
        db = db or self.db
        return ShelterDesk(db, StoredKeyDirectory(db), self.seal_keys(), get_or_create(self.keys, DESK_KEY),
                           shelter.id, self.municipality, shelter.name)

    def use_desk(self, shelter: Shelter) -> None:
        """The shelter this device's desk serves: the sync engine sends its capacity with its events."""
        if checkin_store.get_sync(self.db, DESK_SHELTER) != shelter.id:
            checkin_store.put_sync(self.db, **{DESK_SHELTER: shelter.id})
        self._kick(DESK)

    def desk_recorded(self) -> None:
        """A scan, check-out or paper registration was recorded: send it now."""
        self._kick(DESK)

    def desk_sync(self) -> None:
        """今すぐ同期: the sync engine fetches keys, sends this desk's events and takes the others'."""
        self._kick(DEVICE_KEYS)
        self._kick(DESK)

    def desk_check_in(self, desk: ShelterDesk, action: Callable[[ShelterDesk], DeskCheckIn]) -> DeskCheckIn:
        """Record a desk check-in and have it sent. A phone registered after this desk last fetched
        keys is refused by ``UnknownSigner``: fetch the keys once, then try again."""
        try:
            done = action(desk)
        except UnknownSigner:
            if not self.platform:
                raise
            try:
                self.refresh_device_keys()
            except PlatformError:
                raise UnknownSigner("unknown key, and the platform could not be asked") from None
            done = action(desk)
        self.desk_recorded()
        return done

    def refresh_device_keys(self) -> None:
        """Fetch residents' keys registered since the last fetch (a phone registered after the desk
        logged in). Network; raises PlatformError when the platform cannot be reached."""
        with self._client() as (client, _):
            client.fetch_device_keys()

    def publish_status(self, shelter: Shelter, status: str) -> str:
        """Open or close the shelter on the platform; returns the status it now shows. Network."""
        with self._client() as (client, _):
            return str(client.set_status(shelter.id, status, shelter.capacity)["status"])

    def last_synced(self) -> str | None:
        return checkin_store.get_sync(self.db, "last_synced_at")

    def rejected(self, feature: str) -> int:
        """Records the platform refused for good in ``feature``'s last round (DESK or OWN)."""
        return int(checkin_store.get_sync(self.db, "desk_rejected" if feature == DESK else "own_rejected") or 0)

    def sync_state(self, feature: str) -> FeatureState | None:
        """The sync engine's state of DESK, OWN or DEVICE_KEYS (None without a platform link)."""
        return self.link.sync.feature_state(feature) if self.link else None

    def desk_pending(self) -> int:
        return _desk_pending(self.db)

    def own_pending(self) -> int:
        return _own_pending(self.db)

    def export_csv(self, desk: ShelterDesk, now: float | None = None) -> Path:
        """Aggregates only (no names), written next to the local store; returns the file."""
        stamp = datetime.fromtimestamp(time.time() if now is None else now).strftime("%Y%m%d-%H%M%S")
        path = data_folder(self.db) / "exports" / f"checkin-summary-{self.municipality}-{stamp}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(summaries_csv(desk.summaries()), encoding="utf-8")
        return path


def find_shelter(shelters: ShelterDirectory, shelter_id: str | None) -> Shelter | None:
    """A designated shelter or emergency site by its GSI id."""
    if not shelter_id:
        return None
    return shelters.get(ShelterKind.DESIGNATED_SHELTER, shelter_id) or shelters.get(ShelterKind.EMERGENCY_SITE, shelter_id)


def data_folder(db: sqlite_utils.Database) -> Path:
    """The folder of the local store (the app's own data dir; the region data dir is read-only)."""
    path = store_file(db)
    return Path(path).parent if path else Path(user_data_dir("Mamori", "Mamori"))


def checkin_client(link: PlatformLink, municipality: str, db: sqlite_utils.Database) -> CheckinPlatform:
    assert link.http is not None  # a configured platform
    return CheckinPlatform(link.http, municipality, db)


# ---- the check-in features of the sync engine ----------------------------------------------------
DEVICE_KEYS = "device_keys"  # this phone's key registered; seal/poster keys; staff: desk and device keys
DESK = "desk"  # this desk's check-ins/outs and paper registrations out, other desks' in
OWN = "checkins"  # the resident's own check-ins/outs and survey answers
DESK_SHELTER = "desk_shelter"  # checkin_sync key: the shelter this device's desk serves


def _staff(ctx: SyncContext) -> bool:
    identity = ctx.link.identity
    return bool(identity and identity.has_role(STAFF_ROLE))


def _sync_keys(ctx: SyncContext) -> None:
    link, municipality = ctx.link, ctx.link.tenant
    identity = link.session.identity()  # type: ignore[union-attr]  # roles may have changed
    device = Ed25519PrivateKey.from_private_bytes(get_or_create(link.keys, DEVICE_KEY))
    client = checkin_client(link, municipality, ctx.db)
    client.register_device(device.public_key())
    client.fetch_public_keys()
    if identity.has_role(STAFF_ROLE):
        client.fetch_desk_keys(link.keys)
        client.fetch_device_keys()


def _desk_pending(db: sqlite_utils.Database) -> int:
    return len(checkin_store.pending_events(db, "desk", 1_000_000))


def _sync_desk(ctx: SyncContext) -> None:
    link, municipality = ctx.link, ctx.link.tenant
    shelter_id = checkin_store.get_sync(ctx.db, DESK_SHELTER)
    shelter = find_shelter(ShelterDirectory(ctx.db, municipality), shelter_id)
    desk = ShelterDesk(ctx.db, StoredKeyDirectory(ctx.db), desk_seal_keys(link.keys, municipality),
                       get_or_create(link.keys, DESK_KEY), shelter.id if shelter else "", municipality,
                       shelter.name if shelter else "")
    client = checkin_client(link, municipality, ctx.db)
    client.fetch_device_keys()
    report = client.sync_desk(desk, shelter.capacity if shelter else None)
    checkin_store.put_sync(ctx.db, desk_rejected=str(report.rejected))


def _own_pending(db: sqlite_utils.Database) -> int:
    return len(checkin_store.pending_events(db, "self", 1_000_000)) + len(checkin_store.pending_surveys(db, 1_000_000))


def _sends_own(ctx: SyncContext) -> bool:
    return ConsentLedger(ctx.db).is_granted(DataCategory.EVACUEE_CARD)


def _sync_own(ctx: SyncContext) -> None:
    client = checkin_client(ctx.link, ctx.link.tenant, ctx.db)
    own = client.sync_own(ResidentCheckins(ctx.db, StoredKeyDirectory(ctx.db)))
    surveys = client.send_surveys(SurveyAnswers(ctx.db))
    checkin_store.put_sync(ctx.db, own_rejected=str(own.rejected + surveys.rejected))


def features() -> list[Feature]:
    """Device keys first (a desk needs them to read QR codes), then desk events, then own check-ins."""
    return [Feature(DEVICE_KEYS, _sync_keys, interval_s=300.0),
            Feature(DESK, _sync_desk, pending=_desk_pending, interval_s=30.0, enabled=_staff),
            Feature(OWN, _sync_own, pending=_own_pending, enabled=_sends_own)]
