"""Staff desk mode (受付): scan an evacuee's QR or register a paper form, check in and out,
search, and count people and needs against capacity — all on the desk device, offline.

Each check-in is one transaction: the QR's nonce, the encrypted card, the stay and the
outbox event are written together or not at all. A household checked in at a second shelter
is resolved by time (the latest check-in wins) and both stays are flagged for staff.
"""
from __future__ import annotations

import csv
import io
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import sqlite_utils

from app.checkin._atrest import decrypt_at_rest, encrypt_at_rest
from app.checkin._resident import CheckinEvent
from app.checkin._scan import ImageSource, read_qr_texts
from offline import checkin_store
from offline.checkin_store import StayRow
from protocol.checkin import (
    CLOCK_SKEW_S,
    EVACUEE_PREFIX,
    EvacueeCard,
    EvacueeToken,
    KeyDirectory,
    NotACheckinQr,
    NotCheckedIn,
    RemoteEvent,
    Replayed,
    StayPlace,
    X25519PrivateKey,
    card_from_bytes,
    card_to_bytes,
    iso_utc,
    open_evacuee_card,
    parse_evacuee_token,
    seal_kid_map,
    verify_evacuee_token,
)

_REPLAYED = "this QR was already used: ask for a fresh one"


@dataclass(frozen=True, slots=True)
class DeskCheckIn:
    ref: str
    card: EvacueeCard
    stay: StayRow
    already_present: bool  # the household was already checked in here: nothing new recorded
    moved_from: str | None  # shelter whose open stay this check-in superseded (both flagged)


@dataclass(frozen=True, slots=True)
class EvacueeEntry:
    ref: str
    source: str  # 'qr' or 'paper'
    card: EvacueeCard
    shelter_id: str | None  # where the household is now, None if checked out
    checked_in_at: str | None
    flagged: bool  # seen at more than one shelter at once: staff should confirm


@dataclass(frozen=True, slots=True)
class ShelterSummary:
    shelter_id: str
    capacity: int | None
    households: int
    persons: int
    care: int  # persons with a care/support certification
    disability: int
    allergy: int
    medication: int
    infants: int
    pregnant: int
    pet_households: int
    pets: int
    in_car_persons: int
    outside_persons: int
    flagged_households: int
    languages: dict[str, int] = field(default_factory=dict)  # persons by household language

    @property
    def occupancy_pct(self) -> float | None:
        return None if not self.capacity else round(100.0 * self.persons / self.capacity, 1)


CSV_COLUMNS = ("shelter_id", "capacity", "persons", "households", "occupancy_pct", "care", "disability",
               "allergy", "medication", "infants", "pregnant", "pet_households", "pets", "in_car_persons",
               "outside_persons", "flagged_households")


def summaries_csv(rows: Iterable[ShelterSummary]) -> str:
    """Aggregates only (no names): safe to hand to the disaster HQ."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in rows:
        writer.writerow(["" if getattr(s, c) is None else getattr(s, c) for c in CSV_COLUMNS])
    return out.getvalue()


def _fold(text: str) -> str:
    """Search key: width/case folded, katakana as hiragana, no spaces or hyphens."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)
    return "".join(c for c in text if not c.isspace() and c not in "-‐")


def _card_words(card: EvacueeCard) -> str:
    parts = [card.address, card.phone, card.contact.name, card.contact.phone]
    parts += [p for m in card.members for p in (m.name, m.kana)]
    return "\x00".join(_fold(p) for p in parts)


class ShelterDesk:
    """The reception desk of one shelter. ``desk_key`` encrypts evacuee cards at rest."""

    def __init__(self, db: sqlite_utils.Database, keys: KeyDirectory, shelter_keys: list[X25519PrivateKey],
                 desk_key: bytes, shelter_id: str, municipality_code: str, shelter_name: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self._db, self._keys, self._seal_keys = db, keys, seal_kid_map(shelter_keys)
        self._desk_key, self._clock = desk_key, clock
        self.shelter_id, self.municipality_code, self.shelter_name = shelter_id, municipality_code, shelter_name

    # --- check-in ----------------------------------------------------------------------------

    def check_in_image(self, image: ImageSource) -> DeskCheckIn:
        """Camera frame or image file -> verified, unsealed, recorded check-in."""
        return self.check_in_text(self._evacuee_text(image))

    def check_in_text(self, text: str) -> DeskCheckIn:
        token, card = self._verified_card(text)
        with self._db.atomic():
            self._consume(token)
            return self._check_in(card, "qr", self._clock())

    def register_paper(self, card: EvacueeCard) -> DeskCheckIn:
        """Someone with no phone: staff type the paper form into the same card model."""
        with self._db.atomic():
            return self._check_in(card, "paper", self._clock())

    def check_out(self, ref: str) -> StayRow:
        """Check a household out of this shelter (staff picked it from search or the list)."""
        with self._db.atomic():
            return self._check_out(ref)

    def check_out_image(self, image: ImageSource) -> StayRow:
        return self.check_out_text(self._evacuee_text(image))

    def check_out_text(self, text: str) -> StayRow:
        """Check out by a fresh QR of the household (replay-checked like a check-in)."""
        token, card = self._verified_card(text)
        with self._db.atomic():
            self._consume(token)
            return self._check_out(card.ref)

    def _check_out(self, ref: str) -> StayRow:
        stays = checkin_store.open_stays(self._db, ref=ref, shelter_id=self.shelter_id)
        if not stays:
            raise NotCheckedIn(f"household {ref[:6]}… is not checked in at this shelter")
        at = iso_utc(self._clock())
        checkin_store.close_stay(self._db, stays[0].id, at, "check_out")
        self._event("check_out", ref, stays[0].household_size, at)
        return _stay(self._db, ref, stays[0].id)

    def _consume(self, token: EvacueeToken) -> None:
        if not checkin_store.consume_nonce(self._db, token.nonce, token.device_kid, token.expires_at):
            raise Replayed(_REPLAYED)

    def _evacuee_text(self, image: ImageSource) -> str:
        texts = read_qr_texts(image)
        for text in texts:
            if text.startswith(EVACUEE_PREFIX):
                return text
        raise NotACheckinQr("the QR in the image is not an evacuee check-in code")

    def _verified_card(self, text: str) -> tuple[EvacueeToken, EvacueeCard]:
        now = self._clock()
        token = parse_evacuee_token(text)
        verify_evacuee_token(token, self._keys, now)
        if checkin_store.nonce_seen(self._db, token.nonce):  # before unsealing: the clearer message
            raise Replayed(_REPLAYED)
        return token, open_evacuee_card(token, self._seal_keys)

    def _check_in(self, card: EvacueeCard, source: str, ts: float) -> DeskCheckIn:
        checkin_store.prune_nonces(self._db, int(ts) - CLOCK_SKEW_S - 1)
        blob = encrypt_at_rest(self._desk_key, card_to_bytes(card), card.ref.encode())
        checkin_store.upsert_evacuee(self._db, card.ref, source, card.household_size, blob)
        at = iso_utc(ts)
        stay, present, moved_from = _apply_check_in(self._db, card.ref, self.shelter_id, card.household_size, at)
        if not present:
            self._event("check_in", card.ref, card.household_size, at, in_car=card.stay is StayPlace.IN_CAR)
        return DeskCheckIn(card.ref, card, stay, present, moved_from)

    def _event(self, action: str, ref: str, size: int, at: str, in_car: bool = False) -> CheckinEvent:
        """Recorded and queued; a check-in says whether the household stays in a car (車中泊)."""
        return checkin_store.insert_event(self._db, {
            "idempotency_key": uuid.uuid4().hex, "origin": "desk", "action": action, "ref": ref,
            "household_size": size, "shelter_id": self.shelter_id, "municipality_code": self.municipality_code,
            "shelter_name": self.shelter_name, "at": at, "in_car": in_car,
        })

    # --- events from elsewhere -------------------------------------------------------------------

    def apply_remote(self, events: Iterable[RemoteEvent]) -> int:
        """Merge check-ins/outs recorded at other desks or by residents; returns how many were new."""
        new = 0
        with self._db.atomic():
            for e in events:
                if checkin_store.event_by_key(self._db, e.idempotency_key) is not None:
                    continue
                checkin_store.insert_event(self._db, {
                    "idempotency_key": e.idempotency_key, "origin": "remote", "action": e.action, "ref": e.ref,
                    "household_size": e.household_size, "shelter_id": e.shelter_id,
                    "municipality_code": e.municipality_code, "shelter_name": "", "at": e.at, "in_car": e.in_car})
                checkin_store.upsert_evacuee(self._db, e.ref, "remote", e.household_size, None)
                if e.action == "check_in":
                    _apply_check_in(self._db, e.ref, e.shelter_id, e.household_size, e.at)
                else:
                    for s in checkin_store.open_stays(self._db, ref=e.ref, shelter_id=e.shelter_id):
                        if s.checked_in_at <= e.at:
                            checkin_store.close_stay(self._db, s.id, e.at, "check_out")
                new += 1
        return new

    # --- outbox bookkeeping ---------------------------------------------------------------------------

    def pending(self, limit: int = 500) -> list[CheckinEvent]:
        return checkin_store.pending_events(self._db, "desk", limit)

    def mark_synced(self, idempotency_keys: list[str]) -> int:
        return checkin_store.mark_synced(self._db, "checkin_event", idempotency_keys)

    # --- lists, search, summary ----------------------------------------------------------------------

    def _card(self, ref: str, blob: bytes) -> EvacueeCard:
        return card_from_bytes(decrypt_at_rest(self._desk_key, blob, ref.encode()))

    def list_evacuees(self, present_only: bool = True) -> list[EvacueeEntry]:
        """Households with a card on this desk; by default only those checked in here now."""
        flagged = checkin_store.flagged_refs(self._db)
        where = {s.ref: s for s in checkin_store.open_stays(self._db)}
        out = []
        for ref, source, blob in checkin_store.evacuee_blobs(self._db):
            stay = where.get(ref)
            if present_only and (stay is None or stay.shelter_id != self.shelter_id):
                continue
            out.append(EvacueeEntry(ref, source, self._card(ref, blob), stay.shelter_id if stay else None,
                                    stay.checked_in_at if stay else None, ref in flagged))
        return out

    def search(self, query: str, present_only: bool = False) -> list[EvacueeEntry]:
        """Name, kana (either script), phone or address fragment; empty query lists everyone."""
        key = _fold(query)
        return [e for e in self.list_evacuees(present_only) if key in _card_words(e.card)]

    def summary(self, shelter_id: str | None = None, on: date | None = None,
                capacity: int | None = None) -> ShelterSummary:
        """Occupancy and needs of one shelter (default: this desk's), from open stays."""
        sid = shelter_id or self.shelter_id
        day = on or datetime.now(UTC).date()
        stays = checkin_store.open_stays(self._db, shelter_id=sid)
        flagged = checkin_store.flagged_refs(self._db)
        counts: Counter[str] = Counter()
        languages: Counter[str] = Counter()
        for stay in stays:
            blob = checkin_store.evacuee_blob(self._db, stay.ref)
            if blob is not None:
                _count_needs(self._card(stay.ref, blob), day, counts, languages)
        return ShelterSummary(
            shelter_id=sid, capacity=capacity if capacity is not None else _capacity(self._db, sid),
            households=len(stays), persons=sum(s.household_size for s in stays),
            flagged_households=sum(1 for s in stays if s.ref in flagged), languages=dict(languages),
            **{k: counts[k] for k in ("care", "disability", "allergy", "medication", "infants", "pregnant",
                                       "pet_households", "pets", "in_car_persons", "outside_persons")},
        )

    def summaries(self, on: date | None = None) -> list[ShelterSummary]:
        """This shelter plus every other shelter this desk has heard of with people in it."""
        ids = {self.shelter_id} | {s.shelter_id for s in checkin_store.open_stays(self._db)}
        return [self.summary(sid, on) for sid in sorted(ids)]


def _count_needs(card: EvacueeCard, day: date, counts: Counter[str], languages: Counter[str]) -> None:
    for m in card.members:
        counts["care"] += m.care_level != 0
        counts["disability"] += bool(m.disability)
        counts["allergy"] += bool(m.allergies)
        counts["medication"] += bool(m.medication)
        counts["infants"] += m.is_infant_on(day)
        counts["pregnant"] += m.pregnant
    counts["pet_households"] += card.pets > 0
    counts["pets"] += card.pets
    counts["in_car_persons"] += card.household_size if card.stay is StayPlace.IN_CAR else 0
    counts["outside_persons"] += card.household_size if card.stay is StayPlace.OUTSIDE else 0
    languages[card.language] += card.household_size


def _capacity(db: sqlite_utils.Database, shelter_id: str) -> int | None:
    row = db.execute("SELECT MAX(capacity) FROM shelter WHERE id = ?", [shelter_id]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _apply_check_in(db: sqlite_utils.Database, ref: str, shelter_id: str, size: int,
                    at: str) -> tuple[StayRow, bool, str | None]:
    """Open a stay, latest check-in wins. Returns (stay, already present, shelter moved from)."""
    open_ = checkin_store.open_stays(db, ref=ref)
    for s in open_:
        if s.shelter_id == shelter_id:
            return s, True, None
    newer = [s for s in open_ if s.checked_in_at > at]
    if newer:  # an older check-in arrived late (sync): keep the newer stay, file this one as superseded
        checkin_store.flag_stay(db, newer[0].id)
        stay_id = checkin_store.insert_stay(db, ref, shelter_id, size, at, closed_at=newer[0].checked_in_at,
                                            flagged=True)
        return _stay(db, ref, stay_id), False, None
    for s in open_:
        checkin_store.close_stay(db, s.id, at, "moved", flag=True)
    stay_id = checkin_store.insert_stay(db, ref, shelter_id, size, at, flagged=bool(open_))
    return _stay(db, ref, stay_id), False, (open_[-1].shelter_id if open_ else None)


def _stay(db: sqlite_utils.Database, ref: str, stay_id: int) -> StayRow:
    return next(s for s in checkin_store.stays_of(db, ref) if s.id == stay_id)
