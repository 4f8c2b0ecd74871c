"""Ride booking API (``/rides/v1``): service info, quotes, bookings, status (poll or SSE), alerts.

The vehicles are SIMULATED for the demo (every answer carries ``"simulated": true``): they
follow their dispatch plans exactly, so a ride's status comes from the clock — assigned,
arriving (pickup within ARRIVING_S), on board, done. ``MAMORI_RIDE_TIME_SCALE`` (default 1)
makes simulated time run faster than real time, for demos and tests; answers carry the
simulated ``now``. Rides live in the process's memory (they are gone after a restart).

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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

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
from cityos.oidc import Caller
from cityos.problems import Problem, problem_responses, unauthorized
from cityos.store import entity
from geo.hazards import HazardLayers
from geo.models import LatLon, Shelter
from geo.region_import import import_region
from geo.regions import RegionNotFound, find_region
from geo.routing import EvacuationRouter, RoadGraph
from geo.schema import region_db
from protocol.hazards import HazardType, ShelterKind

FLEET_SIZE, FLEET_SEATS, FLEET_WHEELCHAIR_SLOTS = 6, 8, 1
FARE_YEN_PER_RIDER = 300  # companions ride free, evacuation rides are free
ARRIVING_S = 300.0
SSE_POLL_S = 1.0
SSE_MAX_S = 600.0  # a stream ends after this; the client reconnects
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
    evacuation: bool = Field(False, description="during an alert, for residents registered as needing support")


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


@dataclass(slots=True)
class _Ride:
    id: str
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


class _Clock:
    """Simulated seconds since the service started, and the matching wall-clock time."""

    def __init__(self, scale: float) -> None:
        self.scale, self.started, self.wall = scale, time.monotonic(), datetime.now(UTC)

    def now_s(self) -> float:
        return (time.monotonic() - self.started) * self.scale

    def to_time(self, seconds: float) -> datetime:
        return self.wall + timedelta(seconds=seconds)

    def to_s(self, moment: datetime) -> float:
        return (moment - self.wall).total_seconds()


class RideService:
    """One municipality's rides: the dispatcher, the fleet, the rides and the alert."""

    def __init__(self, code: str, graph: RoadGraph, shelters: list[Shelter], layers: HazardLayers, scale: float) -> None:
        self.code, self.graph, self.shelters, self.layers = code, graph, shelters, layers
        self.area = ServiceArea.around_network(code, graph)
        self.stops = [s for s in shelters if self.area.contains(LatLon(s.lat, s.lon))]
        depots = [s for s in self.stops if s.kind is ShelterKind.DESIGNATED_SHELTER] or self.stops
        step = max(1, len(depots) // FLEET_SIZE)
        self.fleet = [Vehicle(f"{code}-v{k + 1}", FLEET_SEATS, FLEET_WHEELCHAIR_SLOTS, LatLon(s.lat, s.lon)) for k, s in enumerate(depots[::step][:FLEET_SIZE])]
        self.clock = _Clock(scale)
        self.alert: HazardType | None = None
        self.dispatcher = Dispatcher(TravelTimes(graph), self.fleet, self.area)
        self.rides: dict[str, _Ride] = {}
        self.lock = threading.Lock()

    # -- reading --

    def info(self) -> dict[str, Any]:
        return {
            "municipalityCode": self.code,
            "simulated": True,
            "vehicleSpeedKmh": VEHICLE_SPEED_KMH,
            "vehicles": [{"id": v.id, "seats": v.seats, "wheelchairSlots": v.wheelchair_slots} for v in self.fleet],
            "fareYenPerRider": FARE_YEN_PER_RIDER,
            "alert": self.alert.value if self.alert else None,
            "serviceArea": {"type": "Polygon", "coordinates": [[list(p) for p in (*self.area.outer, self.area.outer[0])]]},
            "stops": [{"id": s.id, "name": s.name, "kind": s.kind.value, "lat": s.lat, "lon": s.lon} for s in self.stops],
            "now": _iso(self.clock.to_time(self.clock.now_s())),
        }

    def view(self, ride: _Ride) -> dict[str, Any]:
        """The ride as the resident sees it now; bumps ``version`` when anything shown changed."""
        now = self.clock.now_s()
        self.dispatcher.advance(now)
        eta = arrival = None
        vehicle = None
        if ride.status not in ("cancelled", "rejected"):
            try:
                plan = self.dispatcher.assignment(ride.id)
                phase = self.dispatcher.phase(ride.id)
                vehicle, eta, arrival = plan.vehicle_id, plan.pickup_s, plan.dropoff_s
                ride.status = "arriving" if phase == "assigned" and now >= eta - ARRIVING_S else phase
            except DispatchError:  # bumped by an evacuation ride
                ride.status, ride.reason_key = "rejected", DispatchErrorCode.BUMPED.message_key
        shown = (ride.status, ride.reason_key, vehicle, round(eta or 0), round(arrival or 0))
        if shown != ride.seen:
            ride.version += 0 if not ride.seen else 1
            ride.seen = shown
        return {
            "id": ride.id,
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

    def quote(self, body: dict[str, Any], supported: bool) -> dict[str, Any]:
        trip, dropoff, fare = self._trip("quote", body, supported)
        try:
            plan = self.dispatcher.quote(trip, self.clock.now_s())
        except DispatchError as exc:
            raise _problem(exc) from None
        return {
            "pickupEta": _iso(self.clock.to_time(plan.pickup_s)),
            "arrival": _iso(self.clock.to_time(plan.dropoff_s)),
            "fareYen": fare,
            "pointsUsableMax": fare,
            "simulated": True,
            "dropoff": dropoff,
            "vehicleSpeedKmh": VEHICLE_SPEED_KMH,
        }

    def book(self, ride_id: str, owner: str, body: dict[str, Any], supported: bool) -> tuple[dict[str, Any], bool]:
        """(view, created). The same id from the same owner answers the ride it already is."""
        known = self.rides.get(ride_id)
        if known is not None:
            if known.owner != owner:
                raise RideProblem(409, DispatchErrorCode.DUPLICATE_RIDE.value, "this Idempotency-Key is already used")
            return self.view(known), False
        trip, dropoff, fare = self._trip(ride_id, body, supported)
        ride = _Ride(ride_id, owner, body, trip, self.clock.to_time(self.clock.now_s()), dropoff=dropoff, fare_yen=fare)
        try:
            self.dispatcher.submit(trip, self.clock.now_s())
        except DispatchError as exc:
            if exc.code in (DispatchErrorCode.NO_VEHICLE, DispatchErrorCode.UNREACHABLE, DispatchErrorCode.NO_SAFE_SHELTER):
                ride.status, ride.reason_key = "rejected", exc.message_key  # a ride the resident can see in history
                self.rides[ride_id] = ride
                return self.view(ride), True
            raise _problem(exc) from None
        self.rides[ride_id] = ride
        return self.view(ride), True

    def cancel(self, ride: _Ride) -> dict[str, Any]:
        if ride.status == "cancelled":
            return self.view(ride)  # cancelling twice is one cancel
        if ride.status == "rejected":
            raise RideProblem(409, DispatchErrorCode.NOT_CANCELLABLE.value, "the ride was rejected")
        try:
            self.dispatcher.cancel(ride.id, self.clock.now_s())
        except DispatchError as exc:
            raise _problem(exc) from None
        ride.status, ride.reason_key = "cancelled", "rides.reason.cancelled_by_you"
        return self.view(ride)

    def set_alert(self, hazard: HazardType | None) -> None:
        """Start or end an alert: new travel times for every vehicle (plans are re-timed on them)."""
        slow = hazard_slow_edges(self.graph, self.layers, hazard) if hazard else None
        self.dispatcher.use_times(TravelTimes(self.graph, slow_edges=slow))
        self.alert = hazard

    def _trip(self, ride_id: str, body: Any, supported: bool) -> tuple[Trip, dict[str, Any], int]:
        if not isinstance(body, dict):
            raise RideProblem(400, "invalid_request", "the body must be a JSON object")
        pickup, dropoff = _place(body, "pickup"), _place(body, "dropoff")
        passengers, companions, wheelchairs = (_int(body, k, d) for k, d in (("passengers", 1), ("companions", 0), ("wheelchairs", 0)))
        if not (0 <= companions < passengers):
            raise RideProblem(400, DispatchErrorCode.INVALID_PARTY.value, "companions must be fewer than passengers")
        now = self.clock.now_s()
        earliest = _time(body, "earliest", self.clock) if body.get("earliest") else now
        latest = _time(body, "latest", self.clock) if body.get("latest") else earliest + 1800.0
        evacuation = body.get("evacuation") is True
        if evacuation:
            if self.alert is None:
                raise RideProblem(409, "no_alert", "evacuation rides are booked only during an alert")
            if not supported:
                raise RideProblem(403, "not_registered_for_support", "evacuation rides are for residents registered as needing support")
            try:
                shelter = safe_shelter(self.dispatcher.times, LatLon(pickup["lat"], pickup["lon"]), self.stops, self.alert, self.layers)
            except DispatchError as exc:
                raise _problem(exc) from None
            dropoff = {"kind": "shelter", "lat": shelter.lat, "lon": shelter.lon, "name": shelter.name, "ref": shelter.id}
        trip = Trip(ride_id, LatLon(pickup["lat"], pickup["lon"]), LatLon(dropoff["lat"], dropoff["lon"]), passengers, wheelchairs, earliest, latest, evacuation)
        fare = 0 if evacuation else FARE_YEN_PER_RIDER * (passengers - companions)
        return trip, dropoff, fare


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
        return RideService(code, loaded.graph, loaded.shelters, loaded.layers, self.scale)


def _services(request: Request) -> _Services:
    state = request.app.state
    with _BOOT:
        if not hasattr(state, "rides"):
            state.rides = _Services(platform_of(request))
    return state.rides


_BOOT = threading.Lock()


def _caller(request: Request) -> Caller:
    caller = platform_of(request).caller(request)
    if caller is None:
        raise unauthorized("ride booking needs a bearer token", error="invalid_request")
    return caller


def _supported(platform: Platform, caller: Caller) -> bool:
    """Registered as needing support (要支援者): a CareInformation entity of the caller exists."""
    with platform.store.read() as conn:
        row = conn.execute(
            select(entity.c.id).where(
                entity.c.tenant == caller.municipality_code, entity.c.type == "CareInformation",
                entity.c.owner_sub == caller.sub, entity.c.deleted.is_(False),
            ).limit(1)
        ).first()
    return row is not None


def router() -> APIRouter:
    api = APIRouter(prefix="/rides/v1", tags=["Rides"])
    errors = problem_responses(400, 401, 403, 404, 409, 415, 503)

    def service_of(request: Request) -> tuple[Caller, RideService]:
        caller = _caller(request)
        return caller, _services(request).get(caller.municipality_code)

    def owned(service: RideService, caller: Caller, ride_id: str) -> _Ride:
        ride = service.rides.get(ride_id)
        if ride is None or ride.owner != caller.sub:
            raise RideProblem(404, DispatchErrorCode.UNKNOWN_RIDE.value, "no such ride of yours")
        return ride

    @api.get("/service", summary="Stops, service area, fleet (simulated) and fares of the caller's municipality", responses=errors)
    def info(request: Request) -> dict[str, Any]:
        _, service = service_of(request)
        with service.lock:
            return service.info()

    @api.post("/quotes", summary="Pickup ETA, arrival and fare for a ride, without booking it", responses=errors, openapi_extra=_body_doc(RideBody))
    async def quote(request: Request) -> dict[str, Any]:
        body, _ = await read_json(request)
        caller, service = service_of(request)
        supported = _supported(platform_of(request), caller)
        with service.lock:
            return service.quote(body, supported)

    @api.post("/rides", status_code=201, summary="Book a ride; Idempotency-Key (the app's booking id) makes a retry safe",
              responses={200: {"description": "this Idempotency-Key was booked before: the same ride"}, **errors}, openapi_extra=_body_doc(RideBody))
    async def book(request: Request, idempotency_key: str = Header(..., alias="Idempotency-Key")) -> JSONResponse:
        if not _ID.match(idempotency_key):
            raise RideProblem(400, "invalid_request", "Idempotency-Key must be 8–64 letters, digits or '-'")
        body, _ = await read_json(request)
        caller, service = service_of(request)
        supported = _supported(platform_of(request), caller) if isinstance(body, dict) and body.get("evacuation") is True else False
        with service.lock:
            view, created = service.book(idempotency_key, caller.sub, body, supported)
        return JSONResponse(view, status_code=201 if created else 200)

    @api.get("/rides", summary="The caller's rides, newest first", responses=errors)
    def history(request: Request) -> list[dict[str, Any]]:
        caller, service = service_of(request)
        with service.lock:
            mine = [r for r in service.rides.values() if r.owner == caller.sub]
            return [service.view(r) for r in sorted(mine, key=lambda r: r.created_at, reverse=True)]

    @api.get("/rides/{ride_id}", summary="A ride's status now (poll)", responses=errors)
    def status(request: Request, ride_id: str) -> dict[str, Any]:
        caller, service = service_of(request)
        with service.lock:
            return service.view(owned(service, caller, ride_id))

    @api.post("/rides/{ride_id}/cancel", summary="Cancel before pickup (409 not_cancellable once on board)", responses=errors)
    def cancel(request: Request, ride_id: str) -> dict[str, Any]:
        caller, service = service_of(request)
        with service.lock:
            return service.cancel(owned(service, caller, ride_id))

    @api.get("/rides/{ride_id}/events", summary="Server-sent events: one 'status' event per change, until the ride ends",
             responses={200: {"content": {"text/event-stream": {}}}, **errors})
    def events(request: Request, ride_id: str) -> StreamingResponse:
        caller, service = service_of(request)
        with service.lock:
            owned(service, caller, ride_id)

        async def stream() -> AsyncIterator[str]:
            last, ends = -1, time.monotonic() + SSE_MAX_S
            while time.monotonic() < ends and not await request.is_disconnected():
                with service.lock:
                    view = service.view(service.rides[ride_id])
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
        caller, service = service_of(request)
        if "city_staff" not in caller.roles:
            raise RideProblem(403, "forbidden", "only city staff start or end an alert")
        value = body.get("hazard") if isinstance(body, dict) else None
        try:
            hazard = HazardType(value) if value is not None else None
        except ValueError:
            raise RideProblem(400, "invalid_request", f"hazard must be one of {', '.join(h.value for h in HazardType)} or null") from None
        with service.lock:
            service.set_alert(hazard)
            return {"alert": hazard.value if hazard else None}

    return api

