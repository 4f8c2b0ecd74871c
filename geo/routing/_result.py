"""What a route query returns: status with message keys, the route and its alternatives."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from geo.models import Shelter
from protocol.hazards import HazardType


class RouteStatus(str, Enum):
    OK = "ok"
    ROUTE_THROUGH_HAZARD = "route_through_hazard"  # no clean way out: least exposure chosen
    ALL_SHELTERS_IN_HAZARD = "all_shelters_in_hazard"
    NO_SUITABLE_SHELTER = "no_suitable_shelter"  # none flagged for the hazard: nearest site instead
    NO_ROAD_NETWORK = "no_road_network"  # straight line
    OUTSIDE_NETWORK = "outside_network"  # straight line
    OUTSIDE_REGION = "outside_region"  # straight line, and every shelter is farther than OUTSIDE_REGION_M
    NO_REACHABLE_SHELTER = "no_reachable_shelter"  # straight line
    NO_SHELTER = "no_shelter"
    UNKNOWN_SHELTER = "unknown_shelter"

    @property
    def message_key(self) -> str:
        return f"route.{self.value}"




@dataclass(frozen=True, slots=True)
class Street:
    """A named street the route follows, in walking order, and a point on it (for a map label)."""

    name: str
    length_m: float
    at: tuple[float, float]  # (lat, lon) on the longest piece of it


@dataclass(frozen=True, slots=True)
class Alternative:
    shelter: Shelter
    distance_m: float
    walking_time_s: float
    straight_line: bool = False


@dataclass(slots=True)
class RouteResult:
    status: RouteStatus
    hazard: HazardType
    shelter: Shelter | None = None
    path: list[tuple[float, float]] = field(default_factory=list)  # (lat, lon), origin first
    distance_m: float = 0.0
    walking_time_s: float = 0.0
    straight_line: bool = False
    bearing_deg: float | None = None  # from the origin to the shelter, 0 = north, clockwise
    alternatives: list[Alternative] = field(default_factory=list)
    hazard_exposure_m: float = 0.0  # metres walked inside a blocking hazard level
    access_m: float = 0.0  # from the point to the street the route starts on
    suitable: bool = True  # the shelter is designated for the hazard
    cost: float = 0.0  # the weighted cost minimised (for tests and the benchmark)
    streets: list[Street] = field(default_factory=list)  # named streets walked, in order (unnamed ones left out)

    @property
    def message_key(self) -> str:
        return self.status.message_key
