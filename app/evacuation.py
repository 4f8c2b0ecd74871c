"""My Hazard as one service for the screens: hazard layers, "must I evacuate?", the route to
a safe shelter, and the household's plan and supplies. No Flet; all offline.

The router takes about a second to index a city's streets, so it is built on first use and
kept; ``warm_up`` lets the UI build it in the background before the resident asks, at once or
after the first screen is drawn.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from app.household import (
    EvacuationPlan,
    Household,
    HouseholdStore,
    SupplyItem,
    evacuation_plan,
    stockpile_days,
    supplies,
    walking_speed_mps,
)
from geo.hazards import AreaShape, EvacuationAdvice, HazardLayer, HazardLayers
from geo.models import LatLon, Shelter
from geo.routing import EvacuationRouter, RouteResult
from protocol.hazards import HazardType


@dataclass(frozen=True, slots=True)
class Assessment:
    """The answer for one place: which place, and the advice."""

    place: str  # "home" | "position" | "picked"
    point: LatLon
    advice: EvacuationAdvice


class Evacuation:
    def __init__(self, db: sqlite_utils.Database, region: str, household_key: bytes):
        self.db, self.region = db, region
        self._households = HouseholdStore(db, household_key)
        self._layers: HazardLayers | None = None
        self._router: EvacuationRouter | None = None
        self._lock = threading.RLock()
        self._warming = threading.Lock()  # guards the three below, never held during the build
        self._warm_started = False
        self._warm_now = threading.Event()
        self._on_ready: list[Callable[[], None]] = []

    # ---- hazards ----
    @property
    def hazard_layers(self) -> HazardLayers:
        # The first use derives scenario layers into SQLite: one thread at a time on the
        # shared connection, or two transactions would interleave.
        with self._lock:
            if self._layers is None:
                self._layers = HazardLayers.for_region(self.db, self.region)
            return self._layers

    def layers(self, hazard: HazardType) -> list[HazardLayer]:
        return self.hazard_layers.active_layers(hazard)

    def shapes(self, hazard: HazardType) -> list[tuple[HazardLayer, AreaShape]]:
        return [(layer, shape) for layer in self.layers(hazard) for shape in self.hazard_layers.shapes(layer.id)]

    def assess(self, place: str, point: LatLon, hazard: HazardType, alert_level: int | None = None) -> Assessment:
        early = self.household().needs_early_evacuation
        return Assessment(place, point, self.hazard_layers.assess(point, hazard, alert_level=alert_level, early=early))

    # ---- routing ----
    @property
    def router(self) -> EvacuationRouter:
        _ = self.hazard_layers  # derived first, under the lock; the router then only reads them
        with self._lock:  # one build, even when the warm-up thread and a tap race
            if self._router is None:
                self._router = EvacuationRouter.for_region(self.db, self.region)
            return self._router

    @property
    def layers_ready(self) -> bool:
        """Hazard layers are derived: verdicts come at once."""
        return self._layers is not None

    @property
    def ready(self) -> bool:
        """Hazard layers are derived and the router built: answers come at once."""
        return self._router is not None

    def warm_up(self, on_ready: Callable[[], None] | None = None, after_s: float = 0.0) -> None:
        """Derive the hazard layers and build the router in one background thread, then call each
        ``on_ready`` given (at once when it is built already). ``after_s`` waits first: a browser
        drawing its first frame on the same cores needs the CPU more; ``hurry`` ends the wait."""
        with self._warming:
            if self._router is None and on_ready is not None:
                self._on_ready.append(on_ready)
                on_ready = None
            if after_s <= 0:
                self._warm_now.set()
            start, self._warm_started = not self._warm_started, True
        if on_ready is not None:
            on_ready()
        if start:
            threading.Thread(target=self._warm, args=(after_s,), name="mamori-router", daemon=True).start()

    def hurry(self) -> None:
        """A warm-up waiting for the first frame starts now: a place asks for a route."""
        self._warm_now.set()

    def _warm(self, after_s: float) -> None:
        self._warm_now.wait(after_s)
        _ = self.router
        with self._warming:
            ready, self._on_ready = self._on_ready, []
        for on_ready in ready:
            on_ready()

    def walking_speed(self) -> float:
        return walking_speed_mps(self.household())

    def route(self, origin: LatLon, hazard: HazardType, shelter_id: str | None = None) -> RouteResult:
        speed = self.walking_speed()
        if shelter_id:
            return self.router.to_shelter(origin, hazard, shelter_id, walking_speed_mps=speed)
        return self.router.nearest(origin, hazard, walking_speed_mps=speed)

    def nearest_open(self, origin: LatLon, hazard: HazardType, closed: Callable[[Shelter], bool]) -> RouteResult:
        """The route to the nearest suitable shelter not ``closed`` (reported closed or full),
        trying the others by walking time; with none open, the nearest one as it is."""
        first = self.route(origin, hazard)
        if first.shelter is None or not closed(first.shelter):
            return first
        for other in sorted(first.alternatives, key=lambda a: a.walking_time_s):
            if not closed(other.shelter):
                return self.route(origin, hazard, other.shelter.id)
        return first

    # ---- household, plan, supplies ----
    def household(self) -> Household:
        ids = self._households.ids()
        return (self._households.load(ids[0]) if ids else None) or Household()

    def save_household(self, household: Household) -> None:
        self._households.save(household)

    def plan(self, hazard: HazardType, home: LatLon | None) -> EvacuationPlan:
        return evacuation_plan(self.household(), hazard, self.router, home, stockpile_days(self.db, self.region))

    def supplies(self) -> list[SupplyItem]:
        return supplies(self.household(), stockpile_days(self.db, self.region))

    def tick(self, key: str, done: bool) -> None:
        household = self.household()
        (household.checked.add if done else household.checked.discard)(key)
        self.save_household(household)
