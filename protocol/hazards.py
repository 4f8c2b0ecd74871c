"""Hazard constants: the hazard types and shelter kinds every layer and the platform name the same way."""
from __future__ import annotations

from enum import Enum


class HazardType(str, Enum):
    """The eight hazard types of Japan's designated emergency evacuation sites (災害対策基本法).

    The value is the stable key used in the database, translation files and URLs;
    ``gsi_column`` is the column heading in GSI's published GeoJSON/CSV.
    """

    FLOOD = "flood"
    LANDSLIDE = "landslide"
    STORM_SURGE = "storm_surge"
    EARTHQUAKE = "earthquake"
    TSUNAMI = "tsunami"
    FIRE = "fire"
    INLAND_FLOOD = "inland_flood"
    VOLCANO = "volcano"

    @property
    def gsi_column(self) -> str:
        return _GSI_COLUMNS[self]


_GSI_COLUMNS = {
    HazardType.FLOOD: "洪水",
    HazardType.LANDSLIDE: "崖崩れ、土石流及び地滑り",
    HazardType.STORM_SURGE: "高潮",
    HazardType.EARTHQUAKE: "地震",
    HazardType.TSUNAMI: "津波",
    HazardType.FIRE: "大規模な火事",
    HazardType.INLAND_FLOOD: "内水氾濫",
    HazardType.VOLCANO: "火山現象",
}


class ShelterKind(str, Enum):
    EMERGENCY_SITE = "emergency_site"  # 指定緊急避難場所: safe place to flee to, per hazard
    DESIGNATED_SHELTER = "designated_shelter"  # 指定避難所: place to stay
