"""The application service the views talk to: one per running app, no Flet inside.

Views render from it and call its methods; it owns the store, the region, the
resident's preferences and the translator, and it is what the view tests build screens from.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from app import checkin, family, points, rides
from app.connection import PlatformLink
from app.devicekeys import KeyStore, get_or_create
from app.evacuation import Evacuation
from app.i18n import Translator
from app.mapdata import RoadStrokes, load_road_strokes
from app.preferences import Preferences, load_preferences, save_preferences
from app.shelters import ShelterDirectory
from geo.hazards import ensure_scenario_layers
from geo.models import DatasetInfo, LatLon
from geo.region_import import datasets, import_districts, import_region
from geo.regions import Region, RegionNotFound, find_region, list_regions
from protocol.hazards import HazardType

AT_REST_KEY = "store-at-rest"  # the device key that seals personal data in the local store
HOUSEHOLD_KEY = "household"  # seals the household profile (ages, medication, allergies)


@dataclass(slots=True)
class RegionSummary:
    code: str
    name: str  # as the data names it, e.g. 山口県宇部市
    name_en: str
    datasets: list[DatasetInfo]


class Mamori:
    def __init__(
        self,
        db: sqlite_utils.Database,
        region: Region,
        keys: KeyStore,
        data_dir: Path | None = None,
        language: str | None = None,
        link: PlatformLink | None = None,
    ):
        self.db = db
        self.link = link
        self.keys = keys
        self.data_dir = data_dir
        self.region = region
        self.shelters = ShelterDirectory(db, region.code)
        self._at_rest_key = get_or_create(keys, AT_REST_KEY)
        self.prefs = load_preferences(db, self._at_rest_key)
        if language and language != self.prefs.language:
            self.update_prefs(language=language)
        self.t = Translator(self.prefs.language)
        self._roads: RoadStrokes | None = None
        self.picked_point: LatLon | None = None  # a point picked on the map, for distance sorting
        self.position: LatLon | None = None  # the device's position, when the resident allowed it
        self.evacuation = Evacuation(db, region.code, get_or_create(keys, HOUSEHOLD_KEY))
        self._checkin: checkin.CheckinService | None = None
        self.family = family.FamilyService(self)
        if link is not None:
            for feature in (*checkin.sync_features(), points.sync_feature(), rides.sync_feature(), family.sync_feature()):
                link.sync.register(feature)

    # ---- application services (the screens call these) ----
    @property
    def checkin(self) -> checkin.CheckinService:
        """Rebuilt when the resident switches region or logs in or out (demo keys ↔ platform keys)."""
        svc = self._checkin
        if svc is None or svc.municipality != self.region.code or svc.platform != checkin.platform_mode(self.link):
            svc = self._checkin = checkin.CheckinService(self.db, self.keys, self.region.code, self.link)
        return svc

    @property
    def points(self) -> points.PointsService:
        return points.PointsService(self.db, self.keys, self.region.code, self.link)

    @property
    def rides(self) -> rides.RidesService:
        return rides.RidesService(self.db, self.keys, self.region.code, self.link)

    # ---- data ----
    def ensure_imported(self, force: bool = False, progress: Callable[[str], None] | None = None) -> list[DatasetInfo]:
        """Import the region on first start (or when asked); return what was imported now."""
        if force or not datasets(self.db, self.region.code):
            imported = import_region(self.db, self.region, progress)
            # Scenario hazard layers are derived with the import (seconds, once), so a warm start's
            # first screens and the route map answer at once.
            ensure_scenario_layers(self.db, self.region.code)
            self._forget_region_caches()
            return imported
        if self.region.districts_file and "districts" not in {d.dataset for d in datasets(self.db, self.region.code)}:
            imported = [import_districts(self.db, self.region.code, self.region.districts_file)]  # supplied since
            self._forget_region_caches()
            return imported
        return []

    def _forget_region_caches(self) -> None:
        """Drop what was derived from the region's data (road strokes, router, hazard layers, HQ areas)."""
        self._roads = None
        self.picked_point = None
        self.evacuation = Evacuation(self.db, self.region.code, get_or_create(self.keys, HOUSEHOLD_KEY))
        self.family = family.FamilyService(self)  # the HQ's areas

    def switch_region(self, code: str) -> list[DatasetInfo]:
        """Show another region from the data folder, importing it on first use."""
        self.region = find_region(self.data_dir, code)
        self.shelters = ShelterDirectory(self.db, self.region.code)
        self._forget_region_caches()
        self.update_prefs(region=self.region.code)
        if self.link:
            self.link.tenant = self.region.code
        return self.ensure_imported()

    def set_data_dir(self, folder: Path) -> list[Region]:
        """Use another data folder; it must hold at least one region."""
        regions = list_regions(folder)
        if not regions:
            raise RegionNotFound(f"no regions/<name>-<code>/ folder under {folder}")
        self.data_dir = folder
        self.update_prefs(data_dir=str(folder))
        return regions

    def summary(self) -> RegionSummary:
        row = self.db.execute("SELECT name FROM region_info WHERE region = ?", [self.region.code]).fetchone()
        name = row[0] if row else self.region.name_en
        return RegionSummary(self.region.code, name, self.region.name_en, datasets(self.db, self.region.code))

    def roads(self) -> RoadStrokes:
        if self._roads is None:
            self._roads = load_road_strokes(self.db, self.region.code)
        return self._roads

    def boundary(self) -> dict | None:
        row = self.db.execute("SELECT geometry FROM boundary WHERE region = ?", [self.region.code]).fetchone()
        return json.loads(row[0]) if row else None

    # ---- preferences ----
    def update_prefs(self, **changes: object) -> Preferences:
        self.prefs = self.prefs.with_(**changes)
        save_preferences(self.db, self.prefs, self._at_rest_key)
        if "language" in changes:
            self.t = Translator(self.prefs.language)
        return self.prefs

    def set_home(self, point: LatLon | None) -> None:
        self.update_prefs(home=point)

    def set_hazard(self, hazard: HazardType) -> None:
        self.update_prefs(hazard=hazard)

    def distance_origin(self) -> LatLon | None:
        """Where 'distance' is measured from: a point picked on the map, else home."""
        return self.picked_point or self.prefs.home
