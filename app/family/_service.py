"""What the family screens call (no Flet): who I am, answering, sharing, groups, alerts for my
places, PFIF export and the HQ snapshot, and the family feature of the app's sync engine.

Everything a resident records is written to the local store first (the tab works with no
platform and no login); the sync engine sends it. Group actions need the network: call them
off the UI thread (each opens its own store connection).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import sqlite_utils

from app.consent import ConsentLedger, DataCategory
from app.devicekeys import KeyStore
from app.family._alerts import AlertDesk, read_alerts
from app.family._areas import Areas, hq_areas
from app.family._book import FamilyBook
from app.family._hq import HqDesk
from app.family._model import SafetyStatus
from app.family._pfif import export_pfif
from app.family._remote import FamilyClient, FamilySync
from app.identity import Identity
from app.shelters import distance_m
from app.sync import Feature, RunAgainIn, SyncContext, cached_entities
from geo.models import LatLon
from geo.region_import import districts
from offline.store import store_file
from protocol.entities import parse_time
from protocol.family import Alert, Place
from protocol.hazards import ShelterKind

if TYPE_CHECKING:
    from app.state import Mamori

log = logging.getLogger(__name__)  # error kinds only: never names, answers or tokens

FEATURE = "family"  # its name in the sync engine
LOCAL_ME = "this-device"  # whose answers these are before login: they never leave the phone
SHARING_KEY = "mamori.family.sharing"  # what this account shares with family / caregivers
SHARES = (("safety_status", "family"), ("location", "family"), ("safety_status", "caregiver"))
STAFF_ROLE = "city_staff"
REMINDER_KEY = "mamori.family.reminded_at"  # per account: when the HQ last asked for an answer
POLL_S = 30.0  # the family feature's cadence (the event stream brings changes sooner)
POLL_ALERT_S = 10.0


def poll_interval(alert_active: bool) -> float:
    return POLL_ALERT_S if alert_active else POLL_S


def book_for(db: sqlite_utils.Database, app: Mamori, me: str) -> FamilyBook:
    link = app.link
    outbox = link.outbox_for(db) if link and me != LOCAL_ME else None  # answers before login stay here
    return FamilyBook(db, app.keys, me, app.region.code, ConsentLedger(db).is_granted, outbox)


@dataclass(frozen=True, slots=True)
class Whereabouts:
    """Where a located answer was given, as a family reads it: the nearest shelter and how far
    from it, and how far from my home (straight lines, metres)."""

    shelter: str | None  # the nearest shelter's name; None when the region has none
    from_shelter_m: float | None
    from_home_m: float | None  # None without a home set


class FamilyService:
    def __init__(self, app: Mamori) -> None:
        self.app = app
        self._areas: tuple[str, Areas] | None = None

    @property
    def identity(self) -> Identity | None:
        """The account as last confirmed by the provider (works offline); None logged out."""
        return self.app.link.identity if self.app.link and self.logged_in else None

    # ---- who am I ---------------------------------------------------------------------------
    @property
    def logged_in(self) -> bool:
        return bool(self.app.link and self.app.link.logged_in)

    def me(self) -> str:
        if not self.logged_in:
            return LOCAL_ME
        return self.identity.sub if self.identity else LOCAL_ME

    # ---- the book ---------------------------------------------------------------------------
    def book(self) -> FamilyBook:
        return book_for(self.app.db, self.app, self.me())

    def consented(self, category: DataCategory) -> bool:
        return bool(self.app.link and self.app.link.consents.ledger.is_granted(category.value))

    def groups(self) -> FamilySync:
        """Group actions (create, invite, join, leave, caregivers): network, off the UI thread."""
        link = self.app.link
        assert link is not None and link.http is not None
        return FamilySync(self.book(), FamilyClient(link.http), self.app.keys, link.consents)

    # ---- answering --------------------------------------------------------------------------
    def answer(self, status: SafetyStatus, *, message: str | None = None, with_location: bool = False,
               person: str | None = None) -> tuple[list[str], bool]:
        """Record an answer (mine, or as ``person``'s caregiver) and have it sent; returns (who
        receives it, see ``recipients``; located: a position went with it). FamilyError on refusal."""
        position = self.app.position if with_location and person is None else None
        self.book().answer(status, message=message or None, lat=position.lat if position else None,
                           lon=position.lon if position else None, person=person)
        desk = AlertDesk(self.app.db, self.app.t)
        for banner in desk.banners(self.alerts(), self.places()):
            desk.mark_answered(banner.alert.id)
        if self.logged_in:
            self.app.link.kick()  # type: ignore[union-attr]  # the outbox (my answer) and family (proxy, statuses)
        return self.recipients(proxy=person is not None), position is not None

    def recipients(self, proxy: bool = False) -> list[str]:
        """Who an answer given now reaches, from the consents: [] (this phone only), "city",
        "family", "caregiver". A proxy answer goes as the person consented (the platform checks)."""
        if self.me() == LOCAL_ME:
            return []
        if proxy:
            return ["person_choice"]
        if not self.consented(DataCategory.SAFETY_STATUS):
            return []  # own answers leave the phone only with the city consent
        chosen = self.sharing()
        return ["city"] + [r for r in ("family", "caregiver") if chosen.get(f"safety_status:{r}")]

    # ---- sharing with family / caregivers -----------------------------------------------------
    def sharing(self) -> dict[str, bool]:
        raw = self.app.keys.get(SHARING_KEY)
        return json.loads(raw).get(self.me(), {}) if raw else {}

    def signature(self) -> tuple[object, ...]:
        """What the family screen shows of the groups, as a value that changes only when that
        does (a sync that brought nothing new leaves it equal: no redraw under a typing thumb)."""
        book = self.book()
        groups = [(g["id"], g["name"], tuple((s.member, s.own.id if s.own else None, s.proxy.id if s.proxy else None, s.shared)
                                              for s in book.family_status(g["id"])))
                  for g in book.groups()]
        return (*groups, self.reminded_at())

    def reminded_at(self) -> datetime | None:
        """When the HQ last asked me to answer (the family feature keeps it current)."""
        return reminded_at(self.app.keys, self.me())

    def sync_now(self) -> None:
        """最新にする: the sync engine fetches who I am and the family's answers now."""
        if self.app.link:
            self.app.link.kick(FEATURE)

    def set_sharing(self, category: Literal["safety_status", "location"], recipient: Literal["family", "caregiver"],
                    granted: bool) -> None:
        """Record the grant/revoke (consent history, outbox) and remember the choice for the switch."""
        link = self.app.link
        assert link is not None
        link.consents.share(DataCategory(category), recipient, granted)
        raw = self.app.keys.get(SHARING_KEY)
        every = json.loads(raw) if raw else {}
        every.setdefault(self.me(), {})[f"{category}:{recipient}"] = granted
        self.app.keys.put(SHARING_KEY, json.dumps(every).encode())
        link.kick()

    # ---- alerts ---------------------------------------------------------------------------
    def places(self) -> list[Place]:
        """Home and the current position; without a home, the chosen municipality itself."""
        app, places = self.app, []
        if app.prefs.home is not None:
            places.append(Place(app.prefs.home.lat, app.prefs.home.lon, app.region.code))
        if app.position is not None:
            places.append(Place(app.position.lat, app.position.lon))
        if app.prefs.home is None:
            bounds = app.shelters.bounds()
            if bounds:
                places.append(Place((bounds[0].lat + bounds[1].lat) / 2, (bounds[0].lon + bounds[1].lon) / 2, app.region.code))
        return places

    def whereabouts(self, lat: float, lon: float) -> Whereabouts:
        """A located answer in words, never as raw coordinates."""
        point, home = LatLon(lat, lon), self.app.prefs.home
        near = self.app.shelters.nearest(point, n=1)
        return Whereabouts(near[0].shelter.name if near else None, near[0].distance_m if near else None,
                           distance_m(point, home) if home else None)

    def alerts(self) -> list[Alert]:
        return read_alerts(self.app.link.entities("alerts")) if self.app.link else []

    # ---- the HQ's areas -------------------------------------------------------------------
    def hq(self) -> HqDesk:
        """The HQ's actions (city_staff): network, off the UI thread."""
        link = self.app.link
        assert link is not None and link.http is not None
        return HqDesk(link.http, link.tenant)

    def hq_areas(self) -> Areas:
        """The city's districts when its region folder supplies them, else the designated
        shelters' catchments (worked out once per region)."""
        app = self.app
        if self._areas is None or self._areas[0] != app.region.code:
            shelters = [h.shelter for h in app.shelters.search(kind=ShelterKind.DESIGNATED_SHELTER)]
            self._areas = (app.region.code, hq_areas(districts(app.db, app.region.code), [(s.name, s.lat, s.lon) for s in shelters]))
        return self._areas[1]

    # ---- export -------------------------------------------------------------------------
    def export(self, group_id: str) -> Path:
        """PFIF 1.4 XML into the app's own data folder (beside the store); returns the file."""
        link = self.app.link
        domain = urlsplit(link.platform_url).hostname if link and link.platform_url else None
        xml = export_pfif(self.book(), group_id, domain=domain or "mamori.localhost", t=self.app.t)
        path = store_file(self.app.db)
        folder = (Path(path).parent if path else Path.cwd()) / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"family-pfif-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.xml"
        target.write_bytes(xml)
        return target

def _book(ctx: SyncContext, me: str) -> FamilyBook:
    link = ctx.link
    return FamilyBook(ctx.db, link.keys, me, link.tenant, ConsentLedger(ctx.db).is_granted, link.outbox_for(ctx.db))


def _family(ctx: SyncContext, me: str) -> FamilySync:
    return FamilySync(_book(ctx, me), FamilyClient(ctx.link.http), ctx.link.keys)  # type: ignore[arg-type]


def _sync(ctx: SyncContext) -> RunAgainIn:
    """Who I am, my proxy answers out, the groups and every member's latest answer in, and
    whether the HQ asked me to answer; runs again in 30 s, or 10 s while an alert is active."""
    identity = ctx.link.session.identity()  # type: ignore[union-attr]
    family = _family(ctx, identity.sub)
    family.sync()
    remember_reminder(ctx.link.keys, identity.sub, family.client.reminded_at())
    now = datetime.now(UTC)
    return RunAgainIn(poll_interval(any(a.active(now) for a in read_alerts(cached_entities(ctx.db, "alerts")))))


def _on_event(ctx: SyncContext, data: dict[str, Any]) -> bool:
    """A ``family`` event carries every group's latest answers: apply them without asking the
    platform again. Someone joined or left (names come only with a whole pull): False."""
    identity = ctx.link.identity
    if identity is None:
        return False
    family = _family(ctx, identity.sub)
    book = family.book
    remember_reminder(ctx.link.keys, identity.sub, data.get("remindedAt"))
    known = {(g["id"], m.person) for g in book.groups() for m in book.members(g["id"])}
    groups = data.get("groups", [])
    if len(groups) != len(book.groups()) or any((g["id"], r["person"]) not in known for g in groups for r in g["members"]):
        return False
    for g in groups:
        family.apply_status(g["id"], g["members"])
    return True


def remember_reminder(keys: KeyStore, me: str, at: str | None) -> None:
    """When the HQ last asked this account to answer (None: never), for the family screen."""
    raw = keys.get(REMINDER_KEY)
    every = json.loads(raw) if raw else {}
    if every.get(me) != at:
        every[me] = at
        keys.put(REMINDER_KEY, json.dumps(every).encode())


def reminded_at(keys: KeyStore, me: str) -> datetime | None:
    raw = keys.get(REMINDER_KEY)
    at = json.loads(raw).get(me) if raw else None
    return parse_time(at) if at else None


def _pending(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT count(*) FROM family_answer WHERE pending = 1").fetchone()[0])


def feature() -> Feature:
    return Feature(FEATURE, _sync, pending=_pending, topics=("family",), on_event=_on_event)
