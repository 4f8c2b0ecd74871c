"""The resident's side: the card kept encrypted on the phone, "Show my QR", and self check-in
by scanning the poster at the shelter entrance (offline; the outbox syncs it later).
"""
from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass

import segno
import sqlite_utils

from app.checkin._atrest import decrypt_at_rest, encrypt_at_rest
from app.checkin._scan import ImageSource, read_qr_texts
from offline import checkin_store
from offline.checkin_store import EventRow
from protocol.checkin import (
    POSTER_PREFIX,
    CardTooLarge,
    Ed25519PrivateKey,
    EvacueeCard,
    KeyDirectory,
    NoShelterKey,
    NotACheckinQr,
    NotCheckedIn,
    ShelterPoster,
    StayPlace,
    card_from_bytes,
    card_to_bytes,
    iso_utc,
    make_evacuee_token,
    verify_poster,
)

CheckinEvent = EventRow  # one check-in/out, as stored and as handed to the outbox
QR_ERROR_LEVEL = "m"
MAX_QR_VERSION = 20  # beyond this, cheap cameras fail to read a QR off a phone screen
_CARD_AAD = b"mamori checkin card v1"


class CardVault:
    """The resident's evacuee card, AES-GCM encrypted in SQLite with a key from secure storage."""

    def __init__(self, db: sqlite_utils.Database, key: bytes) -> None:
        self._db, self._key = db, key

    def save(self, card: EvacueeCard) -> None:
        checkin_store.put_card_blob(self._db, encrypt_at_rest(self._key, card_to_bytes(card), _CARD_AAD))

    def load(self) -> EvacueeCard | None:
        blob = checkin_store.get_card_blob(self._db)
        return None if blob is None else card_from_bytes(decrypt_at_rest(self._key, blob, _CARD_AAD))

    def delete(self) -> None:
        checkin_store.delete_card_blob(self._db)


@dataclass(frozen=True, slots=True)
class EvacueeQr:
    text: str  # what the QR encodes ("MC1:..." base45)
    qr: segno.QRCode
    expires_at: int

    @property
    def version(self) -> int:
        return int(self.qr.version)

    @property
    def modules(self) -> int:
        """Modules per side, quiet zone excluded (version 15 = 77)."""
        return int(self.qr.symbol_size(border=0)[0])

    def png(self, scale: int = 6) -> bytes:
        buf = io.BytesIO()
        self.qr.save(buf, kind="png", scale=scale, border=4)
        return buf.getvalue()


def show_qr(card: EvacueeCard, device_key: Ed25519PrivateKey, keys: KeyDirectory, municipality_code: str,
            *, ttl_s: int = 600, now: float | None = None) -> EvacueeQr:
    """A fresh, signed, short-lived QR with the card sealed to the municipality's shelter key."""
    shelter_key = keys.shelter_seal_key(municipality_code)
    if shelter_key is None:
        raise NoShelterKey(f"no shelter key for municipality {municipality_code} yet: sync once while online")
    issued = time.time() if now is None else now
    text = make_evacuee_token(card, device_key, shelter_key, ttl_s=ttl_s, now=issued)
    qr = segno.make_qr(text, error=QR_ERROR_LEVEL, boost_error=False)
    if qr.version > MAX_QR_VERSION:  # type: ignore[operator]
        raise CardTooLarge(f"card needs QR version {qr.version}; shorten notes or split the household")
    return EvacueeQr(text, qr, int(issued) + ttl_s)


class ResidentCheckins:
    """Self check-in/out from a scanned shelter poster; recorded locally with idempotency keys."""

    def __init__(self, db: sqlite_utils.Database, keys: KeyDirectory) -> None:
        self._db, self._keys = db, keys

    def current(self) -> CheckinEvent | None:
        """The check-in in force, if the last own event is a check-in."""
        last = checkin_store.last_event(self._db, "self")
        return last if last is not None and last.action == "check_in" else None

    def check_in(self, poster_text: str, card: EvacueeCard, now: float | None = None) -> CheckinEvent:
        ts = time.time() if now is None else now
        poster = verify_poster(poster_text, self._keys, ts)
        here = self.current()
        if here is not None and here.shelter_id == poster.shelter_id and here.ref == card.ref:
            return here  # scanning the poster twice must not record twice
        return self._record("check_in", poster_text, poster, card.ref, card.household_size, ts,
                            in_car=card.stay is StayPlace.IN_CAR)

    def check_in_image(self, image: ImageSource, card: EvacueeCard, now: float | None = None) -> CheckinEvent:
        return self.check_in(_poster_text(image), card, now)

    def check_out_image(self, image: ImageSource, now: float | None = None) -> CheckinEvent:
        return self.check_out(_poster_text(image), now)

    def check_out(self, poster_text: str, now: float | None = None) -> CheckinEvent:
        ts = time.time() if now is None else now
        poster = verify_poster(poster_text, self._keys, ts)
        here = self.current()
        if here is None or here.shelter_id != poster.shelter_id:
            raise NotCheckedIn(f"not checked in at {poster.shelter_name or poster.shelter_id}")
        return self._record("check_out", poster_text, poster, here.ref, here.household_size, ts)

    def _record(self, action: str, text: str, poster: ShelterPoster, ref: str, size: int, ts: float,
                in_car: bool = False) -> CheckinEvent:
        return checkin_store.insert_event(self._db, {
            "idempotency_key": uuid.uuid4().hex, "origin": "self", "action": action, "ref": ref,
            "household_size": size, "shelter_id": poster.shelter_id,
            "municipality_code": poster.municipality_code, "shelter_name": poster.shelter_name, "at": iso_utc(ts),
            "poster": text,  # the platform checks it too: a self check-in proves where it was made
            "in_car": in_car,
        })

    def pending(self, limit: int = 500) -> list[CheckinEvent]:
        """Unsent own check-ins/outs, oldest first (a desk on the same device keeps its own queue)."""
        return checkin_store.pending_events(self._db, "self", limit)

    def mark_synced(self, idempotency_keys: list[str]) -> int:
        return checkin_store.mark_synced(self._db, "checkin_event", idempotency_keys)


def _poster_text(image: ImageSource) -> str:
    for text in read_qr_texts(image):
        if text.startswith(POSTER_PREFIX):
            return text
    raise NotACheckinQr("the QR in the image is not a shelter entrance poster")
