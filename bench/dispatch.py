"""Ride dispatch benchmark: ``python -m bench dispatch [--requests N] [--vehicles N] [--seed N]``.

On the real Ube walking network (imported from the shared data folder into a throwaway
store; vehicles drive it at 25 km/h, see cityos.dispatch) it books 500 requests over a
four-hour service day onto 30 simulated vehicles with the insertion dispatcher, runs a
nearest-free-vehicle baseline (one trip at a time, no sharing) on the very same requests
and travel-time matrix, and compares vehicle-km and mean wait. Both count driving from the
depot to the last drop-off (no return to the depot). The last line is a one-line summary.
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cityos.dispatch import (
    DWELL_S,
    Assignment,
    Dispatcher,
    ServiceArea,
    TravelTimes,
    Trip,
    Vehicle,
)
from geo.models import LatLon
from geo.region_import import import_region
from geo.regions import default_data_dir, find_region
from geo.routing import RoadGraph
from offline.store import open_store

DAY_S = 4 * 3600.0
WINDOW_S = 30 * 60.0
SEATS, WHEELCHAIR_SLOTS = 6, 1


@dataclass(frozen=True, slots=True)
class Outcome:
    served: int
    vehicle_km: float
    mean_wait_s: float
    waits: dict[str, float]


def street_point(graph: RoadGraph, rnd: random.Random) -> LatLon:
    """A spot on or just beside a real street."""
    lat, lon = rnd.choice(graph.geometry(rnd.randrange(graph.edge_count)))
    return LatLon(lat + rnd.uniform(-1e-4, 1e-4), lon + rnd.uniform(-1e-4, 1e-4))


def make_requests(graph: RoadGraph, stops: list[LatLon], count: int, rnd: random.Random) -> list[Trip]:
    """Half of the pickups and 60 % of the drop-offs at stops, the rest door to door; 30-minute windows."""
    trips = []
    for k in range(count):
        pickup = rnd.choice(stops) if rnd.random() < 0.5 else street_point(graph, rnd)
        dropoff = rnd.choice(stops) if rnd.random() < 0.6 else street_point(graph, rnd)
        while dropoff == pickup:
            dropoff = street_point(graph, rnd)
        passengers = rnd.choices((1, 2, 3), (70, 25, 5))[0]
        wheelchairs = 1 if rnd.random() < 0.05 else 0
        start = rnd.uniform(0.0, DAY_S)
        trips.append(Trip(f"r{k:04d}", pickup, dropoff, passengers, wheelchairs, start, start + WINDOW_S))
    return trips


def insertion(times: TravelTimes, vehicles: list[Vehicle], area: ServiceArea, trips: list[Trip]) -> tuple[Outcome, float]:
    dispatcher = Dispatcher(times, vehicles, area)
    started = time.perf_counter()
    results = dispatcher.submit_many(trips, 0.0)
    elapsed = time.perf_counter() - started
    dispatcher.advance(float("inf"))
    by_id = {t.id: t for t in trips}
    waits = {tid: r.pickup_s - by_id[tid].earliest_s for tid, r in results.items() if isinstance(r, Assignment)}
    km = dispatcher.planned_drive_s() * times.speed_mps / 1000
    return Outcome(len(waits), km, statistics.fmean(waits.values()), waits), elapsed


def nearest_free_vehicle(times: TravelTimes, vehicles: list[Vehicle], trips: list[Trip]) -> Outcome:
    """The baseline: trips in order of window start, each to the vehicle that can be at the
    pickup first (a free one nearby, else the one that frees up soonest); one trip per vehicle at a time."""
    at = times.places(v.depot for v in vehicles)
    free = [0.0] * len(vehicles)
    driven = 0.0
    waits = {}
    for trip in sorted(trips, key=lambda t: t.earliest_s):
        p, d = times.places([trip.pickup, trip.dropoff])
        fit = [k for k, v in enumerate(vehicles) if v.seats >= trip.passengers and v.wheelchair_slots >= trip.wheelchairs]
        k = min(fit, key=lambda k: (max(free[k] + times.seconds(at[k], p), trip.earliest_s), times.seconds(at[k], p)))
        pickup = max(free[k] + times.seconds(at[k], p), trip.earliest_s)
        if not math.isfinite(pickup + times.seconds(p, d)):
            continue  # a street fragment no road joins: the dispatcher refuses it too (unreachable)
        driven += times.seconds(at[k], p) + times.seconds(p, d)
        free[k] = pickup + DWELL_S + times.seconds(p, d) + DWELL_S
        at[k] = d
        waits[trip.id] = pickup - trip.earliest_s
    return Outcome(len(waits), driven * times.speed_mps / 1000, statistics.fmean(waits.values()), waits)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench dispatch")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--vehicles", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    region = find_region(default_data_dir(), "352021")
    rnd = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_store(Path(tmp) / "bench.db")
        import_region(db, region)
        graph = RoadGraph.from_store(db, region.code)
        stops = [LatLon(r["lat"], r["lon"]) for r in db["shelter"].rows_where("region = ?", [region.code], order_by="kind, id")]
    assert graph is not None, "the Ube region has no road network"
    area = ServiceArea.around_network(region.code, graph)
    stops = [s for s in stops if area.contains(s)]
    trips = make_requests(graph, stops, args.requests, rnd)
    vehicles = [Vehicle(f"v{k:02d}", SEATS, WHEELCHAIR_SLOTS, rnd.choice(stops)) for k in range(args.vehicles)]
    started = time.perf_counter()
    times = TravelTimes(graph)
    times.places([*(v.depot for v in vehicles), *(p for t in trips for p in (t.pickup, t.dropoff))])
    precompute_s = time.perf_counter() - started
    print(f"ube: {graph.node_count} nodes, {graph.edge_count} edges, {len(stops)} stops; "
          f"{len(times)} places, travel-time matrix {precompute_s:.2f} s (25 km/h)")
    ours, dispatch_s = insertion(times, vehicles, area, trips)
    naive = nearest_free_vehicle(times, vehicles, trips)
    print(f"insertion: served {ours.served}/{len(trips)}, {ours.vehicle_km:.1f} vehicle-km, "
          f"mean wait {ours.mean_wait_s / 60:.1f} min, in {dispatch_s:.2f} s")
    print(f"nearest free vehicle: served {naive.served}/{len(trips)}, {naive.vehicle_km:.1f} vehicle-km, mean wait {naive.mean_wait_s / 60:.1f} min")
    both = [tid for tid in ours.waits if tid in naive.waits]
    wait_ratio = statistics.fmean(ours.waits[t] for t in both) / max(1e-9, statistics.fmean(naive.waits[t] for t in both))
    vkm_ratio = (ours.vehicle_km / ours.served) / (naive.vehicle_km / naive.served)  # per trip served
    print(
        f"dispatch s={dispatch_s:.2f} vkm_ratio_vs_naive={vkm_ratio:.3f} wait_ratio_vs_naive={wait_ratio:.3f} "
        f"served={ours.served}/{len(trips)} naive_served={naive.served}/{len(trips)} precompute_s={precompute_s:.2f} "
        f"requests={len(trips)} vehicles={len(vehicles)}"
    )
    return 0
