"""Regions: a folder of public files per municipality, found in the data directory.

Folder names are ``<slug>-<6-digit municipality code>``, e.g. ``ube-352021``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REGION = "352021"  # 宇部市: the one sample region with both roads and shelters
_FOLDER = re.compile(r"^(?P<slug>[a-z0-9_]+)-(?P<code>\d{6})$")


class RegionNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Region:
    code: str  # 全国地方公共団体コード, 6 digits with check digit
    slug: str
    folder: Path

    @property
    def name_en(self) -> str:
        return {"aizuwakamatsu": "Aizu-Wakamatsu"}.get(self.slug, self.slug.replace("_", " ").title())

    def _first(self, *names: str) -> Path | None:
        return next((self.folder / n for n in names if (self.folder / n).is_file()), None)

    @property
    def emergency_sites_file(self) -> Path | None:
        return self._first("gsi_emergency_sites.geojson", "gsi_emergency_sites.csv")

    @property
    def designated_shelters_file(self) -> Path | None:
        return self._first("gsi_designated_shelters.geojson", "gsi_designated_shelters.csv")

    @property
    def p20_file(self) -> Path | None:
        return self._first("shelters_p20_ksj.zip")

    @property
    def roads_file(self) -> Path | None:
        return self._first("roads_walk.geojson")

    @property
    def boundary_file(self) -> Path | None:
        return self._first("boundary_n03.geojson")

    @property
    def districts_file(self) -> Path | None:
        """The city's own district polygons (地区), when its engineers supply them."""
        return self._first("districts.geojson")


def default_data_dir() -> Path | None:
    """``$MAMORI_DATA_DIR``, else ``../shared/data`` beside the checkout when present."""
    env = os.environ.get("MAMORI_DATA_DIR")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return shared if shared.is_dir() else None


def list_regions(data_dir: Path | None) -> list[Region]:
    root = data_dir / "regions" if data_dir else None
    if not root or not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        match = _FOLDER.match(folder.name)
        if match and folder.is_dir():
            found.append(Region(code=match["code"], slug=match["slug"], folder=folder))
    return found


def find_region(data_dir: Path | None, code_or_slug: str) -> Region:
    for region in list_regions(data_dir):
        if code_or_slug in (region.code, region.slug):
            return region
    raise RegionNotFound(f"no region {code_or_slug!r} under {data_dir}/regions")
