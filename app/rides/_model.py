"""What a resident books: places, party, window; the quote; the booking and its status lifecycle."""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

MAX_PARTY = 8
MAX_ADVANCE = timedelta(days=14)  # as far ahead as the platform books
NOW_WINDOW = timedelta(minutes=30)  # "now" means a pickup within the next half hour


class PlaceKind(str, Enum):
    CURRENT = "current"  # where the phone is
    HOME = "home"
    STOP = "stop"  # a ride stop of the municipality
    SHELTER = "shelter"
    HOSPITAL = "hospital"
    POINT = "point"  # any point picked on the map


PICKUP_KINDS = frozenset({PlaceKind.CURRENT, PlaceKind.HOME, PlaceKind.STOP})
DROPOFF_KINDS = frozenset({PlaceKind.STOP, PlaceKind.SHELTER, PlaceKind.HOSPITAL, PlaceKind.POINT, PlaceKind.HOME})


class RideStatus(str, Enum):
    NOT_SENT = "not_sent"  # saved on the phone, the platform has not seen it: never "confirmed"
    REQUESTED = "requested"  # the platform has it, no vehicle yet
    ASSIGNED = "assigned"
    ARRIVING = "arriving"
    ON_BOARD = "on_board"
    DONE = "done"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def label_key(self) -> str:
        return f"rides.status.{self.value}"

    @property
    def confirmed(self) -> bool:
        """The platform has accepted the ride and put it on a vehicle."""
        return self in (RideStatus.ASSIGNED, RideStatus.ARRIVING, RideStatus.ON_BOARD, RideStatus.DONE)

    @property
    def final(self) -> bool:
        return self in (RideStatus.DONE, RideStatus.CANCELLED, RideStatus.REJECTED)


# Which platform status may follow which: anything else is a stale or reordered answer and is ignored.
_NEXT: dict[RideStatus, frozenset[RideStatus]] = {
    RideStatus.NOT_SENT: frozenset(RideStatus) - {RideStatus.NOT_SENT},
    RideStatus.REQUESTED: frozenset({RideStatus.ASSIGNED, RideStatus.ARRIVING, RideStatus.ON_BOARD, RideStatus.DONE, RideStatus.CANCELLED,
                                     RideStatus.REJECTED}),
    RideStatus.ASSIGNED: frozenset({RideStatus.ARRIVING, RideStatus.ON_BOARD, RideStatus.DONE, RideStatus.CANCELLED, RideStatus.REJECTED}),
    RideStatus.ARRIVING: frozenset({RideStatus.ON_BOARD, RideStatus.DONE, RideStatus.CANCELLED}),
    RideStatus.ON_BOARD: frozenset({RideStatus.DONE}),
    RideStatus.DONE: frozenset(),
    RideStatus.CANCELLED: frozenset(),
    RideStatus.REJECTED: frozenset(),
}


class RideErrorCode(str, Enum):
    """Client-side checks plus every code the platform's dispatcher answers with."""

    PICKUP_KIND = "pickup_kind"
    DROPOFF_KIND = "dropoff_kind"
    BAD_PLACE = "bad_place"
    INVALID_PARTY = "invalid_party"
    INVALID_TIME_WINDOW = "invalid_time_window"
    PAST_TIME_WINDOW = "past_time_window"
    TOO_FAR_AHEAD = "too_far_ahead"
    SAME_PLACE = "same_place"
    NOT_CANCELLABLE = "not_cancellable"
    UNKNOWN_RIDE = "unknown_ride"
    OFFLINE = "offline"  # a quote needs the platform
    PLATFORM = "platform"  # any other refusal; ``detail`` says what
    PICKUP_OUTSIDE_AREA = "pickup_outside_area"
    DROPOFF_OUTSIDE_AREA = "dropoff_outside_area"
    OFF_NETWORK = "off_network"
    PARTY_TOO_LARGE = "party_too_large"
    NO_VEHICLE = "no_vehicle"
    UNREACHABLE = "unreachable"
    NO_SAFE_SHELTER = "no_safe_shelter"
    DUPLICATE_RIDE = "duplicate_ride"
    BUMPED = "bumped_for_evacuation"
    NOT_ALERTED = "no_alert"
    NOT_REGISTERED = "not_registered_for_support"
    NO_SERVICE = "no_service"  # the municipality has no ride service
    CONSENT_REQUIRED = "consent_required"  # the platform stores bookings only with the ride_history consent
    NOT_CAREGIVER = "not_caregiver"  # on_behalf_of names someone who did not register the caller as caregiver

    @property
    def message_key(self) -> str:
        return f"rides.error.{self.value}"


class RideError(ValueError):
    def __init__(self, code: RideErrorCode, detail: str) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code, self.detail = code, detail

    @property
    def message_key(self) -> str:
        return self.code.message_key


def error_code(value: str | None) -> RideErrorCode:
    """The code of a platform answer; unknown ones (a newer platform) count as PLATFORM."""
    try:
        return RideErrorCode(value or "")
    except ValueError:
        return RideErrorCode.PLATFORM


@dataclass(frozen=True, slots=True)
class Place:
    kind: PlaceKind
    lat: float
    lon: float
    name: str = ""
    ref: str = ""  # stop / shelter id when it is one

    def check(self, where: str) -> None:
        if not (math.isfinite(self.lat) and math.isfinite(self.lon) and -90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise RideError(RideErrorCode.BAD_PLACE, f"{where}: ({self.lat}, {self.lon}) is not a position")

    def wire(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "lat": self.lat, "lon": self.lon, "name": self.name, "ref": self.ref}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Place:
        return cls(PlaceKind(data["kind"]), float(data["lat"]), float(data["lon"]), str(data.get("name", "")), str(data.get("ref", "")))


@dataclass(frozen=True, slots=True)
class RideRequest:
    """A booking as the resident fills it in. ``earliest`` None = now. ``passengers`` counts
    everyone (companions and wheelchair users included). ``on_behalf_of``: the pseudonymous id
    of the person a caregiver books for (None: the account holder rides)."""

    pickup: Place
    dropoff: Place
    passengers: int = 1
    companions: int = 0
    wheelchairs: int = 0
    earliest: datetime | None = None
    latest: datetime | None = None
    on_behalf_of: str | None = None
    evacuation: bool = False

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        start = self.earliest or now
        return start, self.latest or start + NOW_WINDOW

    def check(self, now: datetime) -> None:
        """Raise the RideError a resident must see before anything is saved or sent."""
        if self.pickup.kind not in PICKUP_KINDS:
            raise RideError(RideErrorCode.PICKUP_KIND, f"a pickup cannot be a {self.pickup.kind.value}")
        if self.dropoff.kind not in DROPOFF_KINDS:
            raise RideError(RideErrorCode.DROPOFF_KIND, f"a drop-off cannot be a {self.dropoff.kind.value}")
        self.pickup.check("pickup")
        self.dropoff.check("drop-off")
        if (self.pickup.lat, self.pickup.lon) == (self.dropoff.lat, self.dropoff.lon):
            raise RideError(RideErrorCode.SAME_PLACE, "pickup and drop-off are the same place")
        if not (1 <= self.passengers <= MAX_PARTY and 0 <= self.companions < self.passengers
                and 0 <= self.wheelchairs <= self.passengers - self.companions):
            raise RideError(RideErrorCode.INVALID_PARTY, f"1–{MAX_PARTY} passengers, fewer companions than passengers, wheelchairs only for riders")
        start, end = self.window(now)
        if start.tzinfo is None or end.tzinfo is None:
            raise RideError(RideErrorCode.INVALID_TIME_WINDOW, "window times need a time zone")
        if end < start:
            raise RideError(RideErrorCode.INVALID_TIME_WINDOW, "the window ends before it starts")
        if end < now:
            raise RideError(RideErrorCode.PAST_TIME_WINDOW, "the window is already over")
        if start > now + MAX_ADVANCE:
            raise RideError(RideErrorCode.TOO_FAR_AHEAD, f"bookings open {MAX_ADVANCE.days} days ahead at most")

    def wire(self, now: datetime) -> dict[str, Any]:
        start, end = self.window(now)
        return {
            "pickup": self.pickup.wire(),
            "dropoff": self.dropoff.wire(),
            "passengers": self.passengers,
            "companions": self.companions,
            "wheelchairs": self.wheelchairs,
            "earliest": iso(start),
            "latest": iso(end),
            "onBehalfOf": self.on_behalf_of,
            "evacuation": self.evacuation,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> RideRequest:
        return cls(
            Place.from_wire(data["pickup"]),
            Place.from_wire(data["dropoff"]),
            int(data["passengers"]),
            int(data.get("companions", 0)),
            int(data.get("wheelchairs", 0)),
            parse_time(data.get("earliest")),
            parse_time(data.get("latest")),
            data.get("onBehalfOf"),
            bool(data.get("evacuation", False)),
        )


@dataclass(frozen=True, slots=True)
class Quote:
    pickup_eta: datetime
    arrival: datetime
    fare_yen: int
    points_usable: int  # of the resident's balance, 1 point = 1 yen, at most the fare
    simulated: bool  # demo vehicles: the screen says so
    dropoff: Place  # an evacuation ride's shelter is chosen by the platform
    pickup: Place | None = None  # as the platform understood it: the quote restates the ride
    earliest: datetime | None = None  # the pickup window
    latest: datetime | None = None
    evacuation: bool = False  # during an alert, to a shelter: dispatched first (and usually free)


@dataclass(frozen=True, slots=True)
class Booking:
    """One booking on the phone. ``id`` is made by the phone and is the idempotency key, so a
    booking sent twice (lost answer, offline retry) is one ride on the platform."""

    id: str
    request: RideRequest
    status: RideStatus
    created_at: datetime
    updated_at: datetime
    reason_key: str | None = None  # why cancelled/rejected, a translation key
    vehicle_id: str | None = None
    pickup_eta: datetime | None = None
    arrival: datetime | None = None
    fare_yen: int | None = None
    simulated: bool = True
    version: int = 0  # the platform's version of this ride: older answers are ignored
    cancel_pending: bool = False  # cancelled on the phone while offline; not yet told to the platform
    dropoff: Place | None = None  # as the platform set it (an evacuation ride's shelter)
    extra: dict[str, Any] = field(default_factory=dict)
    fare_points: int = 0  # points the resident chose to pay the fare with, taken when the ride is done
    fare_points_paid: bool = False

    @classmethod
    def new(cls, request: RideRequest, now: datetime) -> Booking:
        request.check(now)
        start, end = request.window(now)
        fixed = replace(request, earliest=start, latest=end)  # "now" is fixed when booked, not when sent
        return cls(str(uuid.uuid4()), fixed, RideStatus.NOT_SENT, now, now)

    @property
    def status_key(self) -> str:
        return self.status.label_key

    def with_platform(self, data: dict[str, Any], now: datetime) -> Booking:
        """This booking updated from a platform answer; a stale or impossible change is ignored."""
        status = RideStatus(data["status"])
        version = int(data.get("version", 0))
        if version < self.version or (status is not self.status and status not in _NEXT[self.status]):
            return self
        return replace(
            self,
            status=status,
            version=version,
            updated_at=now,
            reason_key=data.get("reasonKey"),
            vehicle_id=data.get("vehicleId"),
            pickup_eta=parse_time(data.get("pickupEta")),
            arrival=parse_time(data.get("arrival")),
            fare_yen=data.get("fareYen"),
            simulated=bool(data.get("simulated", True)),
            dropoff=Place.from_wire(data["dropoff"]) if data.get("dropoff") else self.dropoff,
            cancel_pending=self.cancel_pending and not status.final,
        )

    def rejected(self, code: RideErrorCode, now: datetime) -> Booking:
        return replace(self, status=RideStatus.REJECTED, reason_key=code.message_key, updated_at=now, cancel_pending=False)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
