"""What the ride screens call (no Flet): the booking form's rules, booking with or without
points, and the rides feature of the app's sync engine (send, poll, settle fares)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import sqlite_utils

from app.devicekeys import KeyStore, get_or_create
from app.platform import PlatformError, PlatformUnavailable
from app.points import PointsError, ledger_over, pay_ride_fare
from app.rides._api import RidesApi
from app.rides._book import RideBook
from app.rides._model import MAX_PARTY, Booking, Place, PlaceKind, Quote, RideError, RideErrorCode, RideRequest
from app.shelters import ShelterDirectory
from app.sync import Feature, RunAgainIn, SyncContext
from geo.models import LatLon
from offline.rides_store import RideRows
from offline.store import own_connection
from protocol.entities import RESIDENT_TZ
from protocol.hazards import ShelterKind

if TYPE_CHECKING:
    from app.connection import PlatformLink
    from app.i18n import Translator
    from app.preferences import Preferences

log = logging.getLogger(__name__)  # error kinds only, never places or who rides

FEATURE = "rides"  # its name in the sync engine
KEY_NAME = "rides.at_rest"  # the device key that seals bookings (places, who rides)
API_TIMEOUT_S = 20.0  # the platform builds a municipality's ride service on first use (seconds)
ACTIVE_POLL_S = 3.0  # while a ride is under way the sync polls its status this often


class FormProblem(ValueError):
    """Something missing or mistyped in the booking form; ``key`` is the message to show."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class RideForm:
    """The booking form as the resident fills it: choices and typed text, until booked."""

    pickup: str = ""  # "home" | "current" | "stop"
    dropoff: str = ""  # "stop" | "shelter" | "home" | "point"
    pickup_stop: str = ""  # chosen shelter id
    dropoff_stop: str = ""
    when: str = "now"  # "now" | "later"
    behalf: bool = False
    pay_points: bool = False
    fields: dict[str, str] = field(default_factory=dict)  # searches, times, party, on-behalf id


class Whereabouts(Protocol):
    """Where a ride can start or end: the app state (``app.state.Mamori``) provides these."""

    prefs: Preferences
    position: LatLon | None
    picked_point: LatLon | None
    shelters: ShelterDirectory
    t: Translator


def build_request(where: Whereabouts, form: RideForm, now: datetime | None = None) -> RideRequest:
    """The RideRequest the form describes; FormProblem names what is missing."""
    pickup = _place(where, form.pickup, form.pickup_stop, "pickup")
    dropoff = _place(where, form.dropoff, form.dropoff_stop, "dropoff")
    passengers = _count(form.fields.get("passengers"), 1)
    companions = _count(form.fields.get("companions"), 0)
    wheelchairs = _count(form.fields.get("wheelchairs"), 0)
    earliest = latest = None
    if form.when == "later":
        earliest, latest = _window(form.fields, now or datetime.now(RESIDENT_TZ))
    behalf = (form.fields.get("behalf_id") or "").strip() if form.behalf else None
    if form.behalf and not behalf:
        raise FormProblem("rides.form.behalf_missing")
    return RideRequest(pickup, dropoff, passengers, companions, wheelchairs, earliest, latest, on_behalf_of=behalf)


def _place(where: Whereabouts, kind: str, stop_id: str, which: str) -> Place:
    t, home = where.t, where.prefs.home
    if kind == "home" and home:
        return Place(PlaceKind.HOME, home.lat, home.lon, t("rides.place.home"))
    if kind == "current" and where.position:
        return Place(PlaceKind.CURRENT, where.position.lat, where.position.lon, t("rides.place.current"))
    if kind == "point" and where.picked_point:
        return Place(PlaceKind.POINT, where.picked_point.lat, where.picked_point.lon, t("rides.place.point"))
    if kind in ("stop", "shelter") and stop_id:
        shelter = where.shelters.get(ShelterKind.DESIGNATED_SHELTER, stop_id) or where.shelters.get(ShelterKind.EMERGENCY_SITE, stop_id)
        if shelter:
            return Place(PlaceKind(kind), shelter.lat, shelter.lon, shelter.name, shelter.id)
    raise FormProblem(f"rides.form.choose_{which}")


def _count(text: str | None, default: int) -> int:
    cleaned = (text or "").strip()
    if not cleaned:
        return default
    if not cleaned.isdigit() or int(cleaned) > MAX_PARTY:
        raise FormProblem("rides.error.invalid_party")
    return int(cleaned)


def _window(fields: dict[str, str], now: datetime) -> tuple[datetime, datetime]:
    try:
        day = date.fromisoformat((fields.get("day") or now.date().isoformat()).strip().replace("/", "-"))
        start = datetime.combine(day, datetime.strptime((fields.get("start") or "").strip(), "%H:%M").time(), now.tzinfo)
        end_text = (fields.get("end") or "").strip()
        end = datetime.combine(day, datetime.strptime(end_text, "%H:%M").time(), now.tzinfo) if end_text else start + timedelta(minutes=30)
    except ValueError:
        raise FormProblem("rides.form.bad_time") from None
    return start, end


def ride_book(db: sqlite_utils.Database, keys: KeyStore, municipality: str, link: PlatformLink | None, *,
              online: bool = False) -> RideBook:
    """The ride book over ``db``; with ``online`` it talks to the platform (when logged in)."""
    api = None
    if online and link is not None and link.logged_in and link.http is not None:
        api = RidesApi(link.http, timeout=API_TIMEOUT_S)
    return RideBook(db, get_or_create(keys, KEY_NAME), api,
                    points_balance=lambda: ledger_over(db, keys, municipality).balance().available)


class RidesService:
    """One resident's rides: saved on the phone first, sent and followed by the sync engine."""

    def __init__(self, db: sqlite_utils.Database, keys: KeyStore, municipality: str, link: PlatformLink | None) -> None:
        self.db, self.keys, self.municipality, self.link = db, keys, municipality, link
        self.book = ride_book(db, keys, municipality, link)

    @property
    def logged_in(self) -> bool:
        return bool(self.link and self.link.logged_in)

    def history(self, limit: int = 50) -> list[Booking]:
        return self.book.history(limit)

    def next_ride(self) -> Booking | None:
        return next((b for b in self.book.history(20) if not b.status.final), None)

    def quote(self, request: RideRequest) -> Quote:
        """Pickup ETA, arrival, fare and points usable. Network: call it off the UI thread."""
        return self._online(lambda book: book.quote(request))

    def confirm(self, request: RideRequest, fare_points: int = 0) -> Booking:
        """Save the booking (not yet sent) with the points chosen for its fare, and have the
        sync engine send it now; the fare's points are taken when the ride is done."""
        request.check(datetime.now(RESIDENT_TZ))
        booking = self.book.book(request, fare_points)  # no api here: saved as NOT_SENT
        self._kick()
        return booking

    def cancel(self, booking_id: str) -> Booking:
        """Cancel; the platform hears of it through the sync engine (shown as pending until then)."""
        booking = self.book.cancel(booking_id)
        self._kick()
        return booking

    def rebook(self, booking_id: str) -> Booking:
        booking = self.book.rebook(booking_id)
        self._kick()
        return booking

    def refresh(self) -> None:
        """The 更新 button: the sync engine sends and polls now."""
        self._kick()

    def _kick(self) -> None:
        if self.link:
            self.link.kick(FEATURE)

    def _online(self, work: Callable[[RideBook], Quote]) -> Quote:
        if not self.logged_in:
            raise RideError(RideErrorCode.OFFLINE, "quotes need the platform; the booking can still be saved and sent later")
        with own_connection(self.db) as db:
            return work(ride_book(db, self.keys, self.municipality, self.link, online=True))


def _sync(ctx: SyncContext) -> RunAgainIn | None:
    """Send waiting bookings and cancels, poll unfinished rides, pay fares chosen for points."""
    link = ctx.link
    book = ride_book(ctx.db, link.keys, link.tenant, link, online=True)
    if book.api is not None:
        try:  # the platform builds a municipality's ride service on first use: not on the resident's quote
            ctx.memo(f"rides-service:{link.tenant}", book.api.service)
        except (RideError, PlatformError) as err:
            log.info("rides service not available yet: %s", type(err).__name__)
    book.send_pending()
    book.refresh()

    def pay(ride: str, points: int) -> bool:
        try:
            pay_ride_fare(ctx.db, link.keys, link.tenant, ride, points)
        except PointsError as err:  # e.g. fewer points left than chosen: the fare is paid otherwise
            log.info("ride fare by points refused: %s", err.key)
            return False
        return True

    book.settle_fares(pay)
    if book.unsent_count():
        raise PlatformUnavailable("rides: bookings still waiting to be sent")
    return RunAgainIn(ACTIVE_POLL_S) if book.active_count() else None


def _pending(db: sqlite_utils.Database) -> int:
    return len(RideRows(db).unsent())


def feature() -> Feature:
    return Feature(FEATURE, _sync, pending=_pending)
