"""What the check-in screens need from app.checkin, wired for this device (no Flet here).

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

Network calls (``connect``, ``sync_desk``, ``poster_token`` in platform mode) block: call them
off the UI thread. They use their own SQLite connection, as connections are per thread.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from platformdirs import user_data_dir

from app.checkin import (
    STAFF_ROLE,
    CardVault,
    CareLevel,
    CheckinError,
    CheckinPlatform,
    EmergencyContact,
    EvacueeCard,
    EvacueeQr,
    Member,
    ResidentCheckins,
    Sex,
    ShelterDesk,
    StayPlace,
    StoredKeyDirectory,
    SurveyAnswers,
    SyncReport,
    desk_seal_keys,
    device_kid,
    make_poster_token,
    poster_kid,
    show_qr,
    summaries_csv,
    verify_poster,
)
from app.consent import ConsentLedger, DataCategory
from app.devicekeys import get_or_create
from app.identity import Identity, LoginError
from app.platform import PlatformError, PlatformUnavailable
from app.state import Mamori
from geo.models import Shelter
from offline import checkin_store
from offline.store import open_store

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


def _member(f: MemberForm, person: int) -> Member:
    allergies = tuple(a.strip() for a in re.split(r"[,、，]", f.allergies) if a.strip())
    return Member(name=f.name.strip(), kana=f.kana.strip(), birth_date=parse_birth(f.birth, person), sex=Sex[f.sex],
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


def platform_mode(app: Mamori) -> bool:
    """Keys, roles and desk sync come from the city platform (else: demo keys on this device)."""
    return bool(app.link and app.link.configured and app.link.logged_in)


class CheckinService:
    """One per app, municipality and mode: the resident's vault and QR, and desks for any shelter."""

    def __init__(self, app: Mamori) -> None:
        self._app, self.municipality = app, app.region.code
        self.platform = platform_mode(app)
        self.directory = StoredKeyDirectory(app.db)
        self.vault = CardVault(app.db, get_or_create(app.keys, CARD_KEY))
        self.surveys = SurveyAnswers(app.db)
        self._device = Ed25519PrivateKey.from_private_bytes(get_or_create(app.keys, DEVICE_KEY))
        if not self.platform:
            self._register_demo_keys()

    def _demo_seal(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(get_or_create(self._app.keys, SEAL_KEY + self.municipality))

    def _register_demo_keys(self) -> None:
        device = self._device.public_key()
        if self.directory.device_key(device_kid(device)) is None:
            self.directory.add_device_key(device)
        if self.directory.shelter_seal_key(self.municipality) is None:
            self.directory.set_shelter_seal_key(self.municipality, self._demo_seal().public_key())
        poster = Ed25519PrivateKey.from_private_bytes(get_or_create(self._app.keys, POSTER_KEY)).public_key()
        if self.directory.poster_key(poster_kid(poster)) is None:
            self.directory.add_poster_key(poster)

    # ---- account (platform mode) ----
    def identity(self) -> Identity | None:
        """The account's roles as last seen online; None in demo mode or before the first fetch."""
        return self._app.link.identity if self.platform else None

    def staff_allowed(self) -> bool:
        """Demo mode: a local switch. Platform mode: only the shelter_staff role."""
        identity = self.identity()
        return not self.platform or bool(identity and identity.has_role(STAFF_ROLE))

    def connect(self) -> Identity:
        """Roles, device key registration and keys for offline use (desk keys for staff). Network."""
        try:
            identity = self._app.link.session.identity()
        except LoginError as err:
            raise PlatformUnavailable(f"userinfo: {type(err).__name__}") from None
        with self._client() as (client, _):
            client.register_device(self._device.public_key())
            client.fetch_public_keys()
            if identity.has_role(STAFF_ROLE):
                client.fetch_desk_keys(self._app.keys)
                client.fetch_device_keys()
        return identity

    @contextmanager
    def _client(self) -> Iterator[tuple[CheckinPlatform, sqlite_utils.Database]]:
        path = store_file(self._app)
        db = open_store(path) if path else self._app.db
        link = self._app.link
        try:
            yield CheckinPlatform(link.http, self.municipality, db), db
        finally:
            if path:
                db.conn.close()

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
        return self.platform and ConsentLedger(self._app.db).is_granted(DataCategory.EVACUEE_CARD)

    def sync_own(self) -> SyncReport:
        """Send the resident's own check-ins/outs and survey answers. Network."""
        with self._client() as (client, db):
            own = client.sync_own(ResidentCheckins(db, StoredKeyDirectory(db)))
            surveys = client.send_surveys(SurveyAnswers(db))
        return SyncReport(own.sent + surveys.sent, own.rejected + surveys.rejected, 0)

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
        key = Ed25519PrivateKey.from_private_bytes(get_or_create(self._app.keys, POSTER_KEY))
        return make_poster_token(key, shelter.id, self.municipality, shelter.name, start, start + POSTER_VALID_S)

    def _platform_poster(self, shelter: Shelter, now: float) -> str:
        """The platform's poster, kept (it is public) so the desk can show it again with no network."""
        key = f"poster:{shelter.id}"
        kept = checkin_store.get_sync(self._app.db, key)
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
        checkin_store.put_sync(self._app.db, **{key: fresh})
        return fresh

    def _valid_until(self, poster: str | None, now: float) -> float:
        try:
            return verify_poster(poster, self.directory, now).valid_until if poster else 0
        except CheckinError:  # expired, or signed by a key the city has since replaced
            return 0

    def seal_keys(self) -> list[X25519PrivateKey]:
        """What the desk unseals cards with; empty in platform mode until the desk keys arrived."""
        return desk_seal_keys(self._app.keys, self.municipality) if self.platform else [self._demo_seal()]

    def desk(self, shelter: Shelter, db: sqlite_utils.Database | None = None) -> ShelterDesk:
        db = db or self._app.db
        return ShelterDesk(db, StoredKeyDirectory(db), self.seal_keys(), get_or_create(self._app.keys, DESK_KEY),
                           shelter.id, self.municipality, shelter.name)

    def sync_desk(self, shelter: Shelter) -> SyncReport:
        """New device keys, then push this desk's events and apply every other desk's. Network."""
        with self._client() as (client, db):
            client.fetch_device_keys()
            return client.sync_desk(self.desk(shelter, db), shelter.capacity)

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
        return checkin_store.get_sync(self._app.db, "last_synced_at")

    def export_csv(self, desk: ShelterDesk, now: float | None = None) -> Path:
        """Aggregates only (no names), written next to the local store; returns the file."""
        stamp = datetime.fromtimestamp(time.time() if now is None else now).strftime("%Y%m%d-%H%M%S")
        path = data_folder(self._app) / "exports" / f"checkin-summary-{self.municipality}-{stamp}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(summaries_csv(desk.summaries()), encoding="utf-8")
        return path


def store_file(app: Mamori) -> str:
    """The local store's file; "" for an in-memory store."""
    for _, name, file in app.db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return str(file)
    return ""


def data_folder(app: Mamori) -> Path:
    """The folder of the local store (the app's own data dir; the region data dir is read-only)."""
    path = store_file(app)
    return Path(path).parent if path else Path(user_data_dir("Mamori", "Mamori"))


def service(app: Mamori, state: dict) -> CheckinService:
    """The screen's service, rebuilt when the resident switches region or logs in or out."""
    svc = state.get("service")
    if svc is None or svc.municipality != app.region.code or svc.platform != platform_mode(app):
        svc = state["service"] = CheckinService(app)
    return svc


