"""Ride booking API (``/rides/v1``): service info, quotes, bookings, status (poll or SSE), alerts.

The vehicles are SIMULATED for the demo (every answer carries ``"simulated": true``): they
follow their dispatch plans exactly, so a ride's status comes from the clock — assigned,
arriving (pickup within ARRIVING_S), on board, done. ``MAMORI_RIDE_TIME_SCALE`` (default 1)
makes simulated time run faster than real time, for demos and tests; answers carry the
simulated ``now``.

Bookings, the vehicles' plans and the simulated clock live in the platform's database (tables
``ride`` and ``ride_service``), so a restart loses nothing. Every operation on a municipality's
rides runs in one transaction that holds that municipality's dispatch lock (a PostgreSQL
advisory lock; on SQLite the one writer), loads the dispatcher state when another worker
changed it since (a revision number), and saves it back when the operation changed it (a
status poll does not): the dispatcher runs in exactly one place at a time, whichever worker
serves the request. Booking needs the caller's active
``ride_history`` consent; revoking it deletes their bookings. An ``Idempotency-Key`` is scoped
to the account that sent it. ``onBehalfOf`` must name a person who made the caller their
caregiver (cityos/family.py).

Evacuation rides: during an alert (an active NGSI-LD ``Alert`` covering the pickup, or an alert
started for ride dispatch), a ride to a shelter is an evacuation ride — marked, placed first,
and free unless the city sets ``--evacuation-fare-yen``.

Each municipality's service loads its street network (imported from the region folder into
an in-memory store, as the app does), its shelters (designated shelters and emergency sites
double as the demo's ride stops) and a small simulated fleet on first use. During an alert
(``POST /rides/v1/alert`` by city staff) vehicles drive around the hazard's areas, and
evacuation rides for residents registered as needing support (a CareInformation entity of
theirs exists) go first, to the fastest-reached emergency site suitable for the hazard.
Errors are ProblemDetails with ``code`` and ``messageKey`` (``rides.error.<code>``).
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    String,
    Table,
    delete,
    select,
    text,
    update,
)
from starlette.concurrency import run_in_threadpool

from cityos.core import Platform, platform_of, read_json
from cityos.dispatch import (
    VEHICLE_SPEED_KMH,
    Dispatcher,
    DispatchError,
    DispatchErrorCode,
    ServiceArea,
    TravelTimes,
    Trip,
    Vehicle,
    hazard_slow_edges,
    safe_shelter,
)
from cityos.entities import Point, distance_m
from cityos.family import family_caregiver
from cityos.oidc import Caller
from cityos.policy import active_categories
from cityos.problems import Problem, problem_responses, unauthorized
from cityos.store import Store, advisory_key, entity, metadata
from geo.hazards import HazardLayers
from geo.models import LatLon, Shelter
from geo.region_import import import_region
from geo.regions import RegionNotFound, find_region
from geo.routing import EvacuationRouter, RoadGraph
from geo.schema import region_db
from protocol.family import InvalidAlert, Place, alert_from_entity
from protocol.hazards import HazardType, ShelterKind

FLEET_SIZE, FLEET_SEATS, FLEET_WHEELCHAIR_SLOTS = 6, 8, 1
FARE_YEN_PER_RIDER = 300  # companions ride free, evacuation rides are free
ARRIVING_S = 300.0
SSE_POLL_S = 1.0
SSE_MAX_S = 600.0  # a stream ends after this; the client reconnects
CONSENT_CATEGORY = "ride_history"
SHELTER_MATCH_M = 60.0  # a drop-off this close to a shelter is at that shelter
_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_STATUS = {
    DispatchErrorCode.NO_VEHICLE: 409, DispatchErrorCode.DUPLICATE_RIDE: 409, DispatchErrorCode.NOT_CANCELLABLE: 409,
    DispatchErrorCode.UNKNOWN_RIDE: 404, DispatchErrorCode.BUMPED: 409,
}


class PlaceBody(BaseModel):
    kind: str = Field("point", examples=["stop"])
    lat: float = Field(examples=[33.9512])
    lon: float = Field(examples=[131.2473])
    name: str = ""
    ref: str = ""


class RideBody(BaseModel):
    """A ride request (documentation of the body; the handler checks it field by field)."""

    pickup: PlaceBody
    dropoff: PlaceBody
    passengers: int = Field(1, description="everyone riding, companions and wheelchair users included")
    companions: int = Field(0, description="付き添い: ride free")
    wheelchairs: int = 0
    earliest: str | None = Field(None, description="ISO 8601 with zone; null = now")
    latest: str | None = Field(None, description="ISO 8601 with zone; null = earliest + 30 min")
    onBehalfOf: str | None = Field(None, description="pseudonymous id of the person a caregiver books for")
    evacuation: bool = Field(False, description="during an alert, for residents registered as needing support: the platform picks the shelter")


class AlertBody(BaseModel):
    hazard: str | None = Field(examples=["tsunami"])


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    nested = schema.pop("$defs", {})
    for prop in schema["properties"].values():  # inline the place schema: the document has no $defs
        ref = prop.pop("$ref", None)
        if ref:
            prop.update(nested[ref.rsplit("/", 1)[1]])
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class RideProblem(Problem):
    """A ProblemDetails with the ride error ``code`` and its translation key."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(status, f"urn:cityos:problem:ride:{code}", detail)
        self.code = code

    def body(self) -> dict[str, Any]:
        return {**super().body(), "title": "Ride request refused", "code": self.code, "messageKey": f"rides.error.{self.code}"}


def _problem(exc: DispatchError) -> RideProblem:
    return RideProblem(_STATUS.get(exc.code, 400), exc.code.value, exc.detail)


ride_service = Table(
    "ride_service", metadata,
    Column("tenant", String(6), primary_key=True),
    Column("started_at", String(32), nullable=False),  # wall-clock time of simulated second 0
    Column("scale", Float, nullable=False),
    Column("alert", String(32)),  # hazard of an alert started for ride dispatch
    Column("state", JSON),  # Dispatcher.snapshot()
    Column("revision", BigInteger, nullable=False),
)
ride = Table(
    "ride", metadata,
    Column("tenant", String(6), primary_key=True),
    Column("owner", String(64), primary_key=True),
    Column("key", String(64), primary_key=True),  # the Idempotency-Key: one account's booking id
    Column("trip", JSON, nullable=False),
    Column("body", JSON, nullable=False),
    Column("dropoff", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason_key", String(64)),
    Column("version", Integer, nullable=False),
    Column("seen", JSON, nullable=False),
    Column("fare_yen", Integer, nullable=False),
    Column("evacuation", Boolean, nullable=False),
    Column("created_at", String(32), nullable=False),
)


@dataclass(slots=True)
class _Ride:
    key: str
    owner: str
    body: dict[str, Any]  # the request as sent (pickup/dropoff places, party, window)
    trip: Trip
    created_at: datetime
    status: str = "requested"
    reason_key: str | None = None
    version: int = 1
    seen: tuple[Any, ...] = ()
    dropoff: dict[str, Any] = field(default_factory=dict)
    fare_yen: int = 0

    def row(self, tenant: str) -> dict[str, Any]:
        t = self.trip
        trip = {"id": t.id, "pickup": [t.pickup.lat, t.pickup.lon], "dropoff": [t.dropoff.lat, t.dropoff.lon], "passengers": t.passengers,
                "wheelchairs": t.wheelchairs, "earliest_s": t.earliest_s, "latest_s": t.latest_s, "evacuation": t.evacuation}
        return {"tenant": tenant, "owner": self.owner, "key": self.key, "trip": trip, "body": self.body, "dropoff": self.dropoff,
                "status": self.status, "reason_key": self.reason_key, "version": self.version, "seen": list(self.seen),
                "fare_yen": self.fare_yen, "evacuation": t.evacuation, "created_at": _iso(self.created_at)}

    @classmethod
    def from_row(cls, row: Any) -> _Ride:
        t = row.trip
        trip = Trip(t["id"], LatLon(*t["pickup"]), LatLon(*t["dropoff"]), t["passengers"], t["wheelchairs"], t["earliest_s"], t["latest_s"],
                    t["evacuation"])
        return cls(row.key, row.owner, row.body, trip, datetime.fromisoformat(row.created_at.replace("Z", "+00:00")), row.status,
                   row.reason_key, row.version, tuple(row.seen), row.dropoff, row.fare_yen)


def _trip_id(owner: str, key: str) -> str:
    return f"{owner}/{key}"  # keys are per account: two accounts may both use one


class _Clock:
    """Simulated seconds since the service first started (kept in the database), and the matching time."""

    def __init__(self, scale: float, wall: datetime) -> None:
        self.scale, self.wall = scale, wall

    def now_s(self) -> float:
        return (datetime.now(UTC) - self.wall).total_seconds() * self.scale

    def to_time(self, seconds: float) -> datetime:
        return self.wall + timedelta(seconds=seconds)

    def to_s(self, moment: datetime) -> float:
        return (moment - self.wall).total_seconds()


class RideService:
    """One municipality's rides: the dispatcher, the fleet, the rides and the alert.

    Use it only inside ``session``: that holds the municipality's dispatch lock, brings the
    state up to date from the database and saves it when the block succeeds."""

    def __init__(self, code: str, graph: RoadGraph, shelters: list[Shelter], layers: HazardLayers, scale: float,
                 evacuation_fare_yen: int = 0) -> None:
        self.code, self.graph, self.shelters, self.layers = code, graph, shelters, layers
        self.area = ServiceArea.around_network(code, graph)
        self.stops = [s for s in shelters if self.area.contains(LatLon(s.lat, s.lon))]
        depots = [s for s in self.stops if s.kind is ShelterKind.DESIGNATED_SHELTER] or self.stops
        step = max(1, len(depots) // FLEET_SIZE)
        self.fleet = [Vehicle(f"{code}-v{k + 1}", FLEET_SEATS, FLEET_WHEELCHAIR_SLOTS, LatLon(s.lat, s.lon)) for k,
                      s in enumerate(depots[::step][:FLEET_SIZE])]
        self.scale, self.evacuation_fare_yen = scale, evacuation_fare_yen
        self.clock = _Clock(scale, datetime.now(UTC))
        self.alert: HazardType | None = None
        self._times: dict[HazardType | None, TravelTimes] = {None: TravelTimes(graph)}
        self.dispatcher = Dispatcher(self._times[None], self.fleet, self.area)
        self.rides: dict[str, _Ride] = {}  # by trip id
        self.revision = -1  # of the state loaded; -1: load before use
        self._dirty: set[str] = set()

    @contextmanager
    def session(self, store: Store) -> Iterator[Connection]:
        with store.write() as conn:
            if not store.is_sqlite:  # the writer lock already serialises SQLite
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key("rides:" + self.code)})
            saved = conn.execute(select(ride_service).where(ride_service.c.tenant == self.code)).first()
            if saved is None:
                conn.execute(ride_service.insert().values(tenant=self.code, started_at=_iso_us(self.clock.wall), scale=self.scale, state=None,
                                                          revision=0))
                saved = conn.execute(select(ride_service).where(ride_service.c.tenant == self.code)).one()
            if saved.revision != self.revision:
                self._load(conn, saved)
            self.dispatcher.advance(self.clock.now_s())
            before = self._fingerprint()
            try:
                yield conn
                self.dispatcher.advance(self.clock.now_s())
                if self._dirty or self._fingerprint() != before:
                    self._save(conn)
            except BaseException:
                self.revision = -1  # the transaction rolls back: so must what is in memory
                raise

    def _load(self, conn: Connection, saved: Any) -> None:
        self.clock = _Clock(saved.scale, datetime.fromisoformat(saved.started_at.replace("Z", "+00:00")))
        self.alert = HazardType(saved.alert) if saved.alert else None
        rows = conn.execute(select(ride).where(ride.c.tenant == self.code)).all()
        self.rides = {r.trip.id: r for r in map(_Ride.from_row, rows)}
        self.dispatcher = Dispatcher(self._times_for(self.alert), self.fleet, self.area, now_s=self.clock.now_s())
        if saved.state is not None:
            self.dispatcher.restore(saved.state, {tid: r.trip for tid, r in self.rides.items()})
        self.revision, self._dirty = saved.revision, set()

    def _fingerprint(self) -> tuple[Any, ...]:
        """What a session must save if it changed: the dispatcher's state and the alert, less
        what only the clock moves (an idle vehicle's free time is "now" whenever it is read).
        A status poll changes none of it, so it writes nothing; the simulated vehicles'
        progress follows from the saved plans and the clock wherever they are read again."""
        state = self.dispatcher.snapshot()
        plans = {vid: {k: v for k, v in plan.items() if plan["stops"] or k != "free_s"} for vid, plan in state["plans"].items()}
        return json.dumps({**state, "plans": plans}, sort_keys=True), self.alert

    def _save(self, conn: Connection) -> None:
        self.revision += 1
        conn.execute(update(ride_service).where(ride_service.c.tenant == self.code).values(
            state=self.dispatcher.snapshot(), alert=self.alert.value if self.alert else None, revision=self.revision))
        for trip_id in self._dirty:
            r = self.rides[trip_id]
            conn.execute(delete(ride).where(ride.c.tenant == self.code, ride.c.owner == r.owner, ride.c.key == r.key))
            conn.execute(ride.insert().values(**r.row(self.code)))
        self._dirty = set()

    def _times_for(self, hazard: HazardType | None) -> TravelTimes:
        if hazard not in self._times:
            self._times[hazard] = TravelTimes(self.graph, slow_edges=hazard_slow_edges(self.graph, self.layers, hazard))
        return self._times[hazard]

    # -- reading --

    def info(self) -> dict[str, Any]:
        return {
            "municipalityCode": self.code,
            "simulated": True,
            "vehicleSpeedKmh": VEHICLE_SPEED_KMH,
            "vehicles": [{"id": v.id, "seats": v.seats, "wheelchairSlots": v.wheelchair_slots} for v in self.fleet],
            "fareYenPerRider": FARE_YEN_PER_RIDER,
            "evacuationFareYen": self.evacuation_fare_yen,
            "alert": self.alert.value if self.alert else None,
            "serviceArea": {"type": "Polygon", "coordinates": [[list(p) for p in (*self.area.outer, self.area.outer[0])]]},
            "stops": [{"id": s.id, "name": s.name, "kind": s.kind.value, "lat": s.lat, "lon": s.lon} for s in self.stops],
            "now": _iso(self.clock.to_time(self.clock.now_s())),
        }

    def owned(self, owner: str, key: str) -> _Ride:
        found = self.rides.get(_trip_id(owner, key))
        if found is None:
            raise RideProblem(404, DispatchErrorCode.UNKNOWN_RIDE.value, "no such ride of yours")
        return found

    def history(self, owner: str) -> list[dict[str, Any]]:
        mine = [r for r in self.rides.values() if r.owner == owner]
        return [self.view(r) for r in sorted(mine, key=lambda r: r.created_at, reverse=True)]

    def view(self, ride: _Ride) -> dict[str, Any]:
        """The ride as the resident sees it now; bumps ``version`` when anything shown changed."""
        now = self.clock.now_s()
        self.dispatcher.advance(now)
        eta = arrival = None
        vehicle = None
        if ride.status not in ("cancelled", "rejected"):
            try:
                plan = self.dispatcher.assignment(ride.trip.id)
                phase = self.dispatcher.phase(ride.trip.id)
                vehicle, eta, arrival = plan.vehicle_id, plan.pickup_s, plan.dropoff_s
                ride.status = "arriving" if phase == "assigned" and now >= eta - ARRIVING_S else phase
            except DispatchError:  # bumped by an evacuation ride
                ride.status, ride.reason_key = "rejected", DispatchErrorCode.BUMPED.message_key
        shown = [ride.status, ride.reason_key, vehicle, round(eta or 0), round(arrival or 0)]
        if tuple(shown) != ride.seen:
            ride.version += 0 if not ride.seen else 1
            ride.seen = tuple(shown)
            self._dirty.add(ride.trip.id)
        return {
            "id": ride.key,
            "status": ride.status,
            "reasonKey": ride.reason_key,
            "version": ride.version,
            "vehicleId": vehicle,
            "pickupEta": _iso(self.clock.to_time(eta)) if eta is not None else None,
            "arrival": _iso(self.clock.to_time(arrival)) if arrival is not None else None,
            "fareYen": ride.fare_yen,
            "simulated": True,
            "pickup": ride.body["pickup"],
            "dropoff": ride.dropoff,
            "passengers": ride.trip.passengers,
            "wheelchairs": ride.trip.wheelchairs,
            "onBehalfOf": ride.body.get("onBehalfOf"),
            "evacuation": ride.trip.evacuation,
            "createdAt": _iso(ride.created_at),
            "now": _iso(self.clock.to_time(now)),
        }

    # -- writing --

    def quote(self, body: dict[str, Any], supported: bool, alerted: bool) -> dict[str, Any]:
        trip, pickup, dropoff, fare = self._trip("quote", body, supported, alerted)
        try:
            plan = self.dispatcher.quote(trip, self.clock.now_s())
        except DispatchError as exc:
            raise _problem(exc) from None
        return {
            "pickup": pickup,
            "dropoff": dropoff,
            "earliest": _iso(self.clock.to_time(trip.earliest_s)),
            "latest": _iso(self.clock.to_time(trip.latest_s)),
            "pickupEta": _iso(self.clock.to_time(plan.pickup_s)),
            "arrival": _iso(self.clock.to_time(plan.dropoff_s)),
            "passengers": trip.passengers,
            "fareYen": fare,
            "pointsUsableMax": fare,
            "evacuation": trip.evacuation,
            "simulated": True,
            "vehicleSpeedKmh": VEHICLE_SPEED_KMH,
        }

    def book(self, key: str, owner: str, body: dict[str, Any], supported: bool, alerted: bool) -> tuple[dict[str, Any], bool]:
        """(view, created). The same key from the same account answers the ride it already is."""
        known = self.rides.get(_trip_id(owner, key))
        if known is not None:
            return self.view(known), False
        trip, _, dropoff, fare = self._trip(_trip_id(owner, key), body, supported, alerted)
        booked = _Ride(key, owner, body, trip, self.clock.to_time(self.clock.now_s()), dropoff=dropoff, fare_yen=fare)
        try:
            self.dispatcher.submit(trip, self.clock.now_s())
        except DispatchError as exc:
            if exc.code not in (DispatchErrorCode.NO_VEHICLE, DispatchErrorCode.UNREACHABLE, DispatchErrorCode.NO_SAFE_SHELTER):
                raise _problem(exc) from None
            booked.status, booked.reason_key = "rejected", exc.message_key  # a ride the resident can see in history
        self.rides[trip.id] = booked
        self._dirty.add(trip.id)
        return self.view(booked), True

    def cancel(self, booked: _Ride) -> dict[str, Any]:
        if booked.status == "cancelled":
            return self.view(booked)  # cancelling twice is one cancel
        if booked.status == "rejected":
            raise RideProblem(409, DispatchErrorCode.NOT_CANCELLABLE.value, "the ride was rejected")
        try:
            self.dispatcher.cancel(booked.trip.id, self.clock.now_s())
        except DispatchError as exc:
            raise _problem(exc) from None
        booked.status, booked.reason_key = "cancelled", "rides.reason.cancelled_by_you"
        self._dirty.add(booked.trip.id)
        return self.view(booked)

    def set_alert(self, hazard: HazardType | None) -> None:
        """Start or end an alert: new travel times for every vehicle (plans are re-timed on them)."""
        self.dispatcher.use_times(self._times_for(hazard))
        self.alert = hazard

    def _trip(self, trip_id: str, body: Any, supported: bool, alerted: bool) -> tuple[Trip, dict[str, Any], dict[str, Any], int]:
        """The trip, the pickup and drop-off as understood, and the fare. ``alerted``: an alert covers the pickup."""
        if not isinstance(body, dict):
            raise RideProblem(400, "invalid_request", "the body must be a JSON object")
        pickup, dropoff = _place(body, "pickup"), _place(body, "dropoff")
        passengers, companions, wheelchairs = (_int(body, k, d) for k, d in (("passengers", 1), ("companions", 0), ("wheelchairs", 0)))
        if not (0 <= companions < passengers):
            raise RideProblem(400, DispatchErrorCode.INVALID_PARTY.value, "companions must be fewer than passengers")
        now = self.clock.now_s()
        earliest = _time(body, "earliest", self.clock) if body.get("earliest") else now
        latest = _time(body, "latest", self.clock) if body.get("latest") else earliest + 1800.0
        evacuation = False
        if body.get("evacuation") is True:  # 要支援者: the platform picks the safe shelter
            if self.alert is None and not alerted:
                raise RideProblem(409, "no_alert", "evacuation rides are booked only during an alert")
            if not supported:
                raise RideProblem(403, "not_registered_for_support", "evacuation rides are for residents registered as needing support")
            try:
                shelter = safe_shelter(self.dispatcher.times, LatLon(pickup["lat"], pickup["lon"]), self.stops, self.alert, self.layers)
            except DispatchError as exc:
                raise _problem(exc) from None
            dropoff = {"kind": "shelter", "lat": shelter.lat, "lon": shelter.lon, "name": shelter.name, "ref": shelter.id}
            evacuation = True
        elif (self.alert is not None or alerted) and (at_shelter := self._shelter_at(dropoff)) is not None:
            evacuation = True  # from inside the alert's area to a shelter
            dropoff = {**dropoff, "kind": "shelter", "ref": dropoff["ref"] or at_shelter.id, "name": dropoff["name"] or at_shelter.name}
        trip = Trip(trip_id, LatLon(pickup["lat"], pickup["lon"]), LatLon(dropoff["lat"], dropoff["lon"]), passengers, wheelchairs, earliest, latest,
                    evacuation)
        fare = self.evacuation_fare_yen * (passengers - companions) if evacuation else FARE_YEN_PER_RIDER * (passengers - companions)
        return trip, pickup, dropoff, fare

    def _shelter_at(self, place: dict[str, Any]) -> Shelter | None:
        """The shelter a drop-off names (by ref) or lies at (within SHELTER_MATCH_M)."""
        for shelter in self.stops:
            if place["ref"] and place["ref"] == shelter.id:
                return shelter
        here = Point(place["lat"], place["lon"])
        near = [(distance_m(here, Point(s.lat, s.lon)), s) for s in self.stops]
        best = min(near, default=None, key=lambda pair: pair[0])
        return best[1] if best is not None and best[0] <= SHELTER_MATCH_M else None


def _place(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise RideProblem(400, "bad_place", f"{key} must be an object with lat and lon")
    lat, lon = _degrees(value.get("lat")), _degrees(value.get("lon"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise RideProblem(400, "bad_place", f"{key}.lat/lon must be a position in degrees")
    return {"kind": str(value.get("kind", "point"))[:16], "lat": lat, "lon": lon,
            "name": str(value.get("name", ""))[:200], "ref": str(value.get("ref", ""))[:64]}


def _degrees(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _int(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise RideProblem(400, DispatchErrorCode.INVALID_PARTY.value, f"{key} must be a whole number 0–100")
    return value


def _time(body: dict[str, Any], key: str, clock: _Clock) -> float:
    value = body.get(key)
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise RideProblem(400, DispatchErrorCode.INVALID_TIME_WINDOW.value, f"{key} must be an ISO 8601 time, got {str(value)[:40]!r}") from None
    if moment.tzinfo is None:
        raise RideProblem(400, DispatchErrorCode.INVALID_TIME_WINDOW.value, f"{key} needs a time zone")
    return clock.to_s(moment)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Services:
    """Ride services per municipality, built on first use (a few seconds: the street import)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.scale = float(os.environ.get("MAMORI_RIDE_TIME_SCALE", "1") or 1)
        self._made: dict[str, RideService] = {}
        self._lock = threading.Lock()

    def get(self, code: str) -> RideService:
        with self._lock:
            if code not in self._made:
                self._made[code] = self._build(code)
            return self._made[code]

    def _build(self, code: str) -> RideService:
        try:
            region = find_region(self.platform.settings.data_dir, code)
        except RegionNotFound:
            raise RideProblem(503, "no_service", f"no ride service in municipality {code}") from None
        db = region_db()
        import_region(db, region)
        loaded = EvacuationRouter.for_region(db, code)  # streets, shelters and hazard layers from the store
        if loaded.graph is None or loaded.layers is None:
            raise RideProblem(503, "no_service", f"municipality {code} has no street network for ride dispatch")
        return RideService(code, loaded.graph, loaded.shelters, loaded.layers, self.scale, self.platform.settings.evacuation_fare_yen)


def _services(request: Request) -> _Services:
    state = request.app.state
    with _BOOT:
        if not hasattr(state, "rides"):
            state.rides = _Services(platform_of(request))
    return state.rides


_BOOT = threading.Lock()


def forget_rides(conn: Connection, owner: str) -> int:
    """Delete a resident's bookings (their ride_history consent was revoked); the dispatcher
    drops their trips the next time it loads (the revision moves)."""
    tenants = conn.execute(select(ride.c.tenant).where(ride.c.owner == owner).distinct()).scalars().all()
    deleted = conn.execute(delete(ride).where(ride.c.owner == owner)).rowcount
    if tenants:
        conn.execute(update(ride_service).where(ride_service.c.tenant.in_(tenants)).values(revision=ride_service.c.revision + 1))
    return deleted


def _caller(request: Request) -> Caller:
    caller = platform_of(request).caller(request)
    if caller is None:
        raise unauthorized("ride booking needs a bearer token", error="invalid_request")
    return caller


def _supported(conn: Connection, caller: Caller) -> bool:
    """Registered as needing support (要支援者): a CareInformation entity of the caller exists."""
    row = conn.execute(
        select(entity.c.id).where(
            entity.c.tenant == caller.municipality_code, entity.c.type == "CareInformation",
            entity.c.owner_sub == caller.sub, entity.c.deleted.is_(False),
        ).limit(1)
    ).first()
    return row is not None


def _alerted(conn: Connection, tenant: str, body: Any) -> bool:
    """An active NGSI-LD Alert of the municipality covers the ride's pickup."""
    pickup = body.get("pickup") if isinstance(body, dict) else None
    if not isinstance(pickup, dict) or _degrees(pickup.get("lat")) is None or _degrees(pickup.get("lon")) is None:
        return False
    here, now = Place(pickup["lat"], pickup["lon"], tenant), datetime.now(UTC)
    for stored in conn.execute(select(entity.c.body).where(entity.c.tenant == tenant, entity.c.type == "Alert",
                                                           entity.c.deleted.is_(False))).scalars():
        try:
            alert = alert_from_entity(stored)
        except InvalidAlert:
            continue  # not an alert anyone can act on
        if alert.active(now) and alert.covers(here):
            return True
    return False


def _check_booking(conn: Connection, caller: Caller, body: Any) -> None:
    """Stored only with the ride_history consent; onBehalfOf only for a person who made the caller their caregiver."""
    if CONSENT_CATEGORY not in active_categories(conn, caller.sub):
        raise RideProblem(403, "consent_required", "booking a ride stores it in your ride history: it needs your active ride_history consent")
    person = body.get("onBehalfOf") if isinstance(body, dict) else None
    if person is None:
        return
    if not isinstance(person, str) or not conn.execute(select(family_caregiver.c.relation).where(
            family_caregiver.c.person_sub == person, family_caregiver.c.caregiver_sub == caller.sub)).first():
        raise RideProblem(403, "not_caregiver", "onBehalfOf must be someone who named you as their caregiver")


def router() -> APIRouter:
    api = APIRouter(prefix="/rides/v1", tags=["Rides"])
    errors = problem_responses(400, 401, 403, 404, 409, 415, 503)

    def service_of(request: Request) -> tuple[Platform, Caller, RideService]:
        caller = _caller(request)
        return platform_of(request), caller, _services(request).get(caller.municipality_code)

    @api.get("/service", summary="Stops, service area, fleet (simulated) and fares of the caller's municipality", responses=errors)
    def info(request: Request) -> dict[str, Any]:
        platform, _, service = service_of(request)
        with service.session(platform.store):
            return service.info()

    @api.post("/quotes", summary="Pickup ETA, arrival and fare for a ride, without booking it; restates pickup, drop-off and window",
              responses=errors, openapi_extra=_body_doc(RideBody))
    async def quote(request: Request) -> dict[str, Any]:
        body, _ = await read_json(request)
        platform, caller, service = service_of(request)

        def run() -> dict[str, Any]:
            with service.session(platform.store) as conn:
                return service.quote(body, _supported(conn, caller), _alerted(conn, caller.municipality_code, body))

        return await run_in_threadpool(run)

    @api.post("/rides", status_code=201, summary="Book a ride; Idempotency-Key (the app's booking id, per account) makes a retry safe",
              responses={200: {"description": "this Idempotency-Key was booked before: the same ride"}, **errors}, openapi_extra=_body_doc(RideBody))
    async def book(request: Request, idempotency_key: str = Header(..., alias="Idempotency-Key")) -> JSONResponse:
        if not _ID.match(idempotency_key):
            raise RideProblem(400, "invalid_request", "Idempotency-Key must be 8–64 letters, digits or '-'")
        body, _ = await read_json(request)
        platform, caller, service = service_of(request)

        def run() -> tuple[dict[str, Any], bool]:
            with service.session(platform.store) as conn:
                _check_booking(conn, caller, body)
                return service.book(idempotency_key, caller.sub, body, _supported(conn, caller), _alerted(conn, caller.municipality_code, body))

        view, created = await run_in_threadpool(run)
        return JSONResponse(view, status_code=201 if created else 200)

    @api.get("/rides", summary="The caller's rides, newest first", responses=errors)
    def history(request: Request) -> list[dict[str, Any]]:
        platform, caller, service = service_of(request)
        with service.session(platform.store):
            return service.history(caller.sub)

    @api.get("/rides/{ride_id}", summary="A ride's status now (poll)", responses=errors)
    def status(request: Request, ride_id: str) -> dict[str, Any]:
        platform, caller, service = service_of(request)
        with service.session(platform.store):
            return service.view(service.owned(caller.sub, ride_id))

    @api.post("/rides/{ride_id}/cancel", summary="Cancel before pickup (409 not_cancellable once on board)", responses=errors)
    def cancel(request: Request, ride_id: str) -> dict[str, Any]:
        platform, caller, service = service_of(request)
        with service.session(platform.store):
            return service.cancel(service.owned(caller.sub, ride_id))

    @api.get("/rides/{ride_id}/events", summary="Server-sent events: one 'status' event per change, until the ride ends",
             responses={200: {"content": {"text/event-stream": {}}}, **errors})
    def events(request: Request, ride_id: str) -> StreamingResponse:
        platform, caller, service = service_of(request)
        with service.session(platform.store):
            service.owned(caller.sub, ride_id)

        def current() -> dict[str, Any]:
            with service.session(platform.store):
                return service.view(service.owned(caller.sub, ride_id))

        async def stream() -> AsyncIterator[str]:
            last, ends = -1, time.monotonic() + SSE_MAX_S
            while time.monotonic() < ends and not await request.is_disconnected():
                try:
                    view = await run_in_threadpool(current)
                except RideProblem:  # deleted meanwhile (consent revoked)
                    return
                if view["version"] != last:
                    last = view["version"]
                    yield f"id: {last}\nevent: status\ndata: {json.dumps(view, ensure_ascii=False)}\n\n"
                    if view["status"] in ("done", "cancelled", "rejected"):
                        return
                await asyncio.sleep(SSE_POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @api.post("/alert", summary="City staff: start ({'hazard': 'tsunami'}) or end ({'hazard': null}) an alert for ride dispatch",
              responses=errors, openapi_extra=_body_doc(AlertBody))
    async def alert(request: Request) -> dict[str, Any]:
        body, _ = await read_json(request)
        platform, caller, service = service_of(request)
        if "city_staff" not in caller.roles:
            raise RideProblem(403, "forbidden", "only city staff start or end an alert")
        value = body.get("hazard") if isinstance(body, dict) else None
        try:
            hazard = HazardType(value) if value is not None else None
        except ValueError:
            raise RideProblem(400, "invalid_request", f"hazard must be one of {', '.join(h.value for h in HazardType)} or null") from None

        def run() -> dict[str, Any]:
            with service.session(platform.store):
                service.set_alert(hazard)
                return {"alert": hazard.value if hazard else None}

        return await run_in_threadpool(run)

    return api


def _iso_us(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
