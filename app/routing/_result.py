"""What a route query returns: status with message keys, the route and its alternatives."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from app.models import HazardType, Shelter


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


MESSAGES: dict[str, dict[str, str]] = {
    "ja": {
        "route.ok": "避難経路",
        "route.route_through_hazard": "危険区域を通らない道がありません。区域内を通る距離が最も短い経路です。",
        "route.all_shelters_in_hazard": "適した避難場所がすべて危険区域内にあります。最も安全に近づける場所を示します。",
        "route.no_suitable_shelter": "この災害に指定された避難場所がありません。最寄りの避難場所を示します。",
        "route.no_road_network": "この地域の道路データがありません。直線距離と方角を示します。",
        "route.outside_network": "道路網から離れています。直線距離と方角を示します。",
        "route.outside_region": "この地域の外にいるようです。いまいる地域を選んでください。",
        "route.no_reachable_shelter": "道路でたどり着ける避難場所がありません。直線距離と方角を示します。",
        "route.no_shelter": "この地域の避難場所データがありません。",
        "route.unknown_shelter": "その避難場所は見つかりません。",
    },
    "en": {
        "route.ok": "Evacuation route",
        "route.route_through_hazard": "No way avoids the hazard area: this route spends the least distance inside it.",
        "route.all_shelters_in_hazard": "Every suitable shelter is inside the hazard area: showing the least exposed one.",
        "route.no_suitable_shelter": "No shelter is designated for this hazard: showing the nearest shelter.",
        "route.no_road_network": "No road data for this region: straight-line distance and bearing.",
        "route.outside_network": "Far from the road network: straight-line distance and bearing.",
        "route.outside_region": "You seem to be outside this region: choose the region you are in.",
        "route.no_reachable_shelter": "No shelter can be reached by road: straight-line distance and bearing.",
        "route.no_shelter": "No shelter data for this region.",
        "route.unknown_shelter": "That shelter was not found.",
    },
}


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

    @property
    def message_key(self) -> str:
        return self.status.message_key
