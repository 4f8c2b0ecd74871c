"""The link to the city's data platform (都市OS): login, consent, outbox and background sync.

Built for every app: consent choices are recorded locally even with no platform configured
(they are queued and sent once one is). Without ``platform_url`` nothing leaves the device.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from app.consent import ConsentChoice, ConsentEvent, ConsentLedger, Consents, DataCategory
from app.devicekeys import KeyStore
from app.identity import Identity, Session, install_key
from app.platform import PlatformClient, PlatformHttp
from app.sync import (
    ALERTS,
    SHELTER_STATUS,
    Feature,
    FeatureState,
    OutboxSync,
    SyncContext,
    SyncEngine,
    SyncState,
    cached_entities,
    read_state,
)
from offline.outbox import Outbox
from offline.store import open_store

CLIENT_ID = "mamori-app"  # the public (PKCE) client registered with the platform
# Where check-in and family each kept their own copy of the account before ``Session.identity``.
_OLD_IDENTITY_KEYS = ("mamori.checkin.identity", "mamori.family.identity")
_SHELTER_PREFIX = "urn:ngsi-ld:EvacuationShelter:"
OUTBOX = "outbox"  # the sync feature that sends consent changes and queued entities
DATASETS = (SHELTER_STATUS, ALERTS)  # public datasets pulled by name, logged in or not
_EVENT_TOPIC = {SHELTER_STATUS.name: "shelters", ALERTS.name: "alerts"}  # the stream's nudge for each


@dataclass(frozen=True, slots=True)
class ShelterStatus:
    """What the platform last said about a shelter (staff publish it from the desk)."""

    status: str  # open | closed | full
    occupancy: int | None  # people a shelter desk checked in
    observed_at: str | None  # when the platform recorded it (ISO 8601)
    self_reported: int = 0  # people only checked in by their own phone (shown apart, never "full")


def _value(entity: dict, name: str) -> Any:
    attribute = entity.get(name)
    return attribute.get("value") if isinstance(attribute, dict) else attribute


class TokensInKeyStore:
    """``app.identity.TokenStore`` (text values) over the device ``KeyStore`` (bytes)."""

    def __init__(self, keys: KeyStore):
        self._keys = keys

    def get(self, key: str) -> str | None:
        value = self._keys.get(key)
        return value.decode() if value is not None else None

    def set(self, key: str, value: str) -> None:
        self._keys.put(key, value.encode())

    def delete(self, key: str) -> None:
        self._keys.delete(key)


class PlatformLink:
    def __init__(self, store_path: Path | str, db: sqlite_utils.Database, keys: KeyStore, platform_url: str | None, tenant: str):
        self.platform_url, self.tenant, self._store_path = platform_url, tenant, store_path
        self._tokens = TokensInKeyStore(keys)
        self._outbox_key = install_key(self._tokens)
        self.keys = keys
        for old in _OLD_IDENTITY_KEYS:
            keys.delete(old)
        self.outbox = Outbox(db, self._outbox_key, ConsentLedger(db).is_granted)  # for writes from the UI thread
        self.consents = Consents(db, self.outbox)
        self.session = Session(platform_url, CLIENT_ID, self._tokens) if platform_url else None
        # The link's one HTTP client: every feature client (entities, check-in, points, family,
        # rides) and the sync engine share it; logout closes its connections.
        self.http = PlatformHttp(platform_url, tenant, auth=self.session.auth) if self.session and platform_url else None
        self.display_name: str | None = None
        self._db = db
        self.sync = SyncEngine(lambda: open_store(store_path), self)  # features register, then start_sync()
        for feature in self._features():
            self.sync.register(feature)
        self._started = False

    @property
    def configured(self) -> bool:
        return self.session is not None

    @property
    def logged_in(self) -> bool:
        return bool(self.session and self.session.logged_in)

    # ---- account ----
    def login(self, open_browser: Callable[[str], Any] | None = None) -> str:
        """Log in through the system browser (blocks until the redirect arrives); return the name."""
        if not self.session:
            raise RuntimeError("no platform configured")
        claims = self.session.login(open_browser) if open_browser else self.session.login()
        self.display_name = claims.get("name") or claims.get("preferred_username") or claims.get("sub")
        self.kick()
        return self.display_name or ""

    def logout(self) -> None:
        if self.session:
            self.session.logout()
        if self.http:
            self.http.close()
        self.display_name = None

    @property
    def identity(self) -> Identity | None:
        """Who is logged in, as last confirmed by the provider (works offline); None when logged out."""
        return self.session.last_identity if self.session else None

    # ---- consent ----
    def choices(self) -> list[ConsentChoice]:
        return self.consents.ledger.choices()

    def history(self) -> list[ConsentEvent]:
        return self.consents.ledger.history()

    def set_consent(self, category: DataCategory, granted: bool) -> None:
        (self.consents.grant if granted else self.consents.revoke)(category)
        self.kick()

    # ---- sync ----
    def start_sync(self) -> None:
        """Start the app's sync engine (``self.sync``) in its background thread."""
        if not self.http or self._started:
            return
        self._started = True
        self.sync.start()

    def _features(self, interval_s: float = 60.0) -> list[Feature]:
        """The link's own: consent changes and queued entities out, public datasets in."""
        def outbox(ctx: SyncContext) -> None:
            error = self._outbox_sync(ctx).push().error
            if error is not None:
                raise error

        def pull(name: str) -> Feature:
            def run(ctx: SyncContext) -> None:
                self._outbox_sync(ctx).pull(name)
            return Feature(name, run, interval_s=interval_s, needs_login=False, topics=(_EVENT_TOPIC[name],))

        return [Feature(OUTBOX, outbox, pending=lambda db: self.outbox_for(db).queued_count(), interval_s=interval_s),
                *(pull(d.name) for d in DATASETS)]

    def outbox_for(self, db: sqlite_utils.Database) -> Outbox:
        """The outbox over another connection to the store (e.g. the sync thread's)."""
        return Outbox(db, self._outbox_key, ConsentLedger(db).is_granted)

    def _outbox_sync(self, ctx: SyncContext) -> OutboxSync:
        """The outbox and dataset engine over the sync thread's connection (one per tenant)."""
        def build() -> OutboxSync:
            assert self.http is not None
            return OutboxSync(ctx.db, self.outbox_for(ctx.db), PlatformClient(self.http), DATASETS)
        return ctx.memo(f"outbox:{self.tenant}", build)

    def kick(self, feature: str | None = None) -> None:
        """Sync ``feature`` (every feature with None) now: call it right after a local write."""
        self.sync.kick(feature)

    def state(self) -> SyncState | None:
        """The outbox and the public datasets as stored; None when nothing syncs."""
        return read_state(self._db, self.outbox, tuple(d.name for d in DATASETS)) if self._started else None

    def entities(self, dataset: str) -> list[dict]:
        """What the last pulls brought for ``dataset`` (e.g. "alerts"), kept offline."""
        return cached_entities(self._db, dataset)

    def shelter_statuses(self) -> dict[str, ShelterStatus]:
        """Status and occupancy per GSI 共通ID, from the last pull; empty when never synced."""
        statuses = {}
        for entity in self.entities("shelter_status"):
            if not str(entity.get("id", "")).startswith(_SHELTER_PREFIX) or not _value(entity, "status"):
                continue
            occupancy, extra = _value(entity, "occupancy"), _value(entity, "selfReported")
            observed = _value(entity, "observedAt") or entity.get("modifiedAt")
            statuses[entity["id"][len(_SHELTER_PREFIX):]] = ShelterStatus(
                str(_value(entity, "status")), int(occupancy) if isinstance(occupancy, (int, float)) else None, observed,
                int(extra) if isinstance(extra, int) and not isinstance(extra, bool) and extra > 0 else 0,
            )
        return statuses

    def subscribe(self, observer: Callable[[dict[str, FeatureState]], None]) -> Callable[[], None]:
        """Call ``observer`` (on the sync thread) whenever a feature's sync state changes."""
        return self.sync.subscribe(observer)

    def stop(self) -> None:
        """Unlink: stop syncing and close the link's connections."""
        self.sync.stop()
        if self.http:
            self.http.close()
