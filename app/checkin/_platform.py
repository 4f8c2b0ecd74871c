"""Check-in with the city platform (cityos ``/cityos/v1/checkin``), for the resident and the desk.

* Resident: register this phone's device public key after login, fetch the municipality's
  shelter seal key and poster keys into ``StoredKeyDirectory`` (so a QR can be made and a
  poster checked with no network afterwards).
* Desk (``shelter_staff``): fetch the seal private key(s) into the device ``KeyStore`` (never
  SQLite, never logged) and the registered device keys into the directory, then check people
  in offline; ``sync_desk`` pushes ``ShelterDesk.pending()`` and applies every other desk's
  events (latest wins, flagged).

Every failure is a ``PlatformError`` raised before anything local is changed for that step:
events stay pending and cursors stay put, so the next sync simply tries again.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from app.checkin._answers import SurveyAnswers
from app.checkin._desk import ShelterDesk
from app.checkin._keystore import StoredKeyDirectory
from app.checkin._resident import ResidentCheckins
from app.devicekeys import KeyStore
from app.platform import PlatformError, PlatformHttp
from offline import checkin_store
from protocol.checkin import (
    Ed25519PublicKey,
    RemoteEvent,
    WireError,
    X25519PrivateKey,
    X25519PublicKey,
    b64u,
    device_kid,
    event_from_json,
    event_to_json,
    iso_utc,
    own_event_to_json,
    raw_public,
    survey_to_json,
    unb64u,
)

_API = "/cityos/v1/checkin"
BATCH = 200
SEAL_SECRETS = "mamori.checkin.platform.seal."  # + municipality code: the desk's seal private keys


def desk_seal_keys(keys: KeyStore, municipality_code: str) -> list[X25519PrivateKey]:
    """The seal private keys a desk fetched earlier (newest first); empty before the first fetch."""
    raw = keys.get(SEAL_SECRETS + municipality_code) or b""
    return [X25519PrivateKey.from_private_bytes(raw[i:i + 32]) for i in range(0, len(raw) - 31, 32)]


@dataclass(frozen=True, slots=True)
class CheckinSyncReport:
    sent: int
    rejected: int  # refused by the platform, with its reason (wrong clock, other municipality, bad poster)
    received: int  # new events from other desks applied here (desk sync only)


class CheckinPlatform:
    """One municipality's check-in endpoints, for a logged-in account."""

    def __init__(self, http: PlatformHttp, municipality_code: str, db: sqlite_utils.Database) -> None:
        self.municipality_code, self._db, self._http = municipality_code, db, http
        self.directory = StoredKeyDirectory(db)

    # -- resident --------------------------------------------------------------------------------------
    def register_device(self, key: Ed25519PublicKey) -> None:
        kid = device_kid(key).hex()
        if checkin_store.get_sync(self._db, "device_registered") == kid:
            return
        self._call("PUT", f"/device-keys/{kid}", "register device key", json={"publicKey": b64u(raw_public(key))})
        checkin_store.put_sync(self._db, device_registered=kid)

    def revoke_device(self, key: Ed25519PublicKey) -> None:
        self._call("DELETE", f"/device-keys/{device_kid(key).hex()}", "revoke device key")
        checkin_store.put_sync(self._db, device_registered="")

    def fetch_public_keys(self) -> None:
        """The shelter seal key and the poster keys, into the directory."""
        body = self._call("GET", "/keys", "check-in keys")
        seal = X25519PublicKey.from_public_bytes(_key(body["sealKey"]["publicKey"]))
        if self.directory.shelter_seal_key(self.municipality_code) != seal:
            self.directory.set_shelter_seal_key(self.municipality_code, seal)
        for poster in body["posterKeys"]:
            self.directory.add_poster_key(Ed25519PublicKey.from_public_bytes(_key(poster["publicKey"])))

    # -- desk --------------------------------------------------------------------------------------------
    def fetch_desk_keys(self, keys: KeyStore) -> list[X25519PrivateKey]:
        """The seal private keys, kept in the device KeyStore so the desk unseals offline."""
        body = self._call("GET", "/desk/keys", "desk keys")
        private = [X25519PrivateKey.from_private_bytes(_key(k["privateKey"])) for k in body["sealKeys"]]
        keys.put(SEAL_SECRETS + self.municipality_code, b"".join(k.private_bytes_raw() for k in private))
        return private

    def fetch_device_keys(self) -> int:
        """Registered (and revoked) device keys since the last fetch; returns how many changed."""
        changed = 0
        for page in self._pages("/desk/device-keys", "since", "device_cursor", "device keys"):
            for item in page["keys"]:
                if item["publicKey"] is None:
                    self.directory.revoke_device_key(bytes.fromhex(item["kid"]))
                else:
                    self.directory.add_device_key(Ed25519PublicKey.from_public_bytes(_key(item["publicKey"])))
            changed += len(page["keys"])
        return changed

    def sync_desk(self, desk: ShelterDesk, capacity: int | None = None) -> CheckinSyncReport:
        """Push pending events in batches, then pull every desk's events after the cursor."""
        shelter = {"capacity": {desk.shelter_id: capacity}} if capacity else {}
        sent, rejected = self._push("/desk/events", "send desk events", desk.pending, desk.mark_synced,
                                    lambda batch, first: {"events": [event_to_json(e) for e in batch],
                                                          **(shelter if first else {})})
        received = 0
        for page in self._pages("/desk/events", "after", "event_cursor", "desk events"):
            received += desk.apply_remote(_events(page))
        checkin_store.put_sync(self._db, last_synced_at=iso_utc(time.time()))
        return CheckinSyncReport(sent, rejected, received)

    def sync_own(self, residents: ResidentCheckins) -> CheckinSyncReport:
        """Push the resident's own check-ins/outs (needs the evacuee_card consent on the platform:
        without it the platform answers 403 and everything stays queued here)."""
        sent, rejected = self._push("/events", "send check-ins", residents.pending, residents.mark_synced,
                                    lambda batch, _: {"events": [own_event_to_json(e) for e in batch]})
        return CheckinSyncReport(sent, rejected, 0)

    def send_surveys(self, surveys: SurveyAnswers) -> CheckinSyncReport:
        """Push survey answers (anonymous; the same consent as self check-ins)."""
        sent, rejected = self._push("/survey", "send survey answers", surveys.pending, surveys.mark_synced,
                                    lambda batch, _: {"responses": [survey_to_json(r) for r in batch]})
        return CheckinSyncReport(sent, rejected, 0)

    def _push(self, path: str, what: str, pending: Callable[[int], list[Any]], mark_synced: Callable[[list[str]], int],
              body_of: Callable[[list[Any], bool], dict[str, Any]]) -> tuple[int, int]:
        """Send what is pending in batches; each is marked sent only once the platform decided it
        (accepted, or rejected with a reason), so a dropped answer means it is sent again."""
        sent = rejected = 0
        while batch := pending(BATCH):
            body = self._call("POST", path, what, json=body_of(batch, sent + rejected == 0))
            done = [*body["accepted"], *body["rejected"]]
            if not done:
                raise PlatformError(f"{what}: the platform decided none of them")
            mark_synced(done)
            sent, rejected = sent + len(body["accepted"]), rejected + len(body["rejected"])
        return sent, rejected

    def survey_summary(self, shelter_id: str) -> dict[str, Any]:
        """What the shelter's residents said (staff)."""
        return self._call("GET", "/desk/survey", "survey summary", params={"shelterId": shelter_id})

    def poster(self, shelter_id: str, shelter_name: str) -> str:
        body = self._call("POST", "/desk/posters", "sign poster", json={"shelterId": shelter_id, "shelterName": shelter_name})
        return str(body["poster"])

    def set_status(self, shelter_id: str, status: str, capacity: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status, **({"capacity": capacity} if capacity else {})}
        return self._call("PUT", f"/desk/shelters/{shelter_id}", "set shelter status", json=body)

    # -- transport ---------------------------------------------------------------------------------------
    def _cursor(self, name: str) -> str:
        return checkin_store.get_sync(self._db, name) or "0"

    def _pages(self, path: str, param: str, cursor: str, what: str) -> Iterator[dict[str, Any]]:
        """Pages after the stored cursor; the cursor moves only after the caller handled a page."""
        while True:
            page = self._call("GET", path, what, params={param: self._cursor(cursor)})
            yield page
            checkin_store.put_sync(self._db, **{cursor: str(page["cursor"])})
            if not page["hasMore"]:
                return

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        return self._http.json(method, _API + path, what, headers={"NGSILD-Tenant": self.municipality_code}, **kwargs)


def _key(text: Any) -> bytes:
    try:
        return unb64u(text)
    except WireError as err:
        raise PlatformError(f"check-in keys: {err}") from None


def _events(page: dict[str, Any]) -> list[RemoteEvent]:
    try:
        return [event_from_json(e) for e in page["events"]]
    except WireError as err:
        raise PlatformError(f"desk events: {err}") from None
