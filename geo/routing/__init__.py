"""Evacuation routing on the walking network, fully offline, no Flet.

Usage::

    router = EvacuationRouter.for_region(db, "352021")      # roads, shelters and hazard layers, once
    router.prepare(HazardType.TSUNAMI)                        # per hazard; cached
    result = router.nearest(LatLon(33.95, 131.25), HazardType.TSUNAMI, walking_speed_mps=1.0)
    result.status, result.message_key, result.shelter, result.path       # path: [(lat, lon), ...]
    result.distance_m, result.walking_time_s, result.alternatives          # up to 3 other shelters
    result = router.to_shelter(point, HazardType.TSUNAMI, shelter_id="…", walking_speed_mps=0.7)
    if is_off_route(position, result.path): ...                            # recompute

How it is fast: ``prepare`` weights every edge for the hazard (edges inside a blocking level
cost more than any clean route, so they are used only when nothing clean exists; lower
levels are penalised ×(1+level); for tsunami/storm surge low ground costs up to 50 % more),
then runs one multi-source Dijkstra from all suitable shelters over the reversed graph. Every
node then knows its cost to the nearest suitable shelter and the next edge towards it, so
``nearest`` is a snap to the closest street plus a pointer walk. Alternatives come from an A*
search from the origin whose heuristic is that prepared cost (exact, and it explores little).

A region without roads (Aizu-Wakamatsu) gets straight-line distance and bearing with
``straight_line=True``; every other trouble (far from the network, nothing reachable, no
suitable shelter, every shelter inside the hazard) is a ``RouteStatus`` with a message key and
the least-bad answer, never an exception.
"""
from __future__ import annotations

from geo.routing._geometry import OFF_ROUTE_M, distance_to_route_m, is_off_route
from geo.routing._graph import MAX_SNAP_M, RoadGraph
from geo.routing._result import Alternative, RouteResult, RouteStatus, Street
from geo.routing._router import (
    ALTERNATIVES,
    DEFAULT_WALKING_SPEED_MPS,
    EvacuationRouter,
)

__all__ = [
    "ALTERNATIVES",
    "DEFAULT_WALKING_SPEED_MPS",
    "MAX_SNAP_M",
    "OFF_ROUTE_M",
    "Alternative",
    "EvacuationRouter",
    "RoadGraph",
    "RouteResult",
    "RouteStatus",
    "Street",
    "distance_to_route_m",
    "is_off_route",
]
