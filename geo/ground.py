"""Ground height between the road network's measured points, and the scenario areas contoured
from it: ``GroundModel(samples)`` interpolates (inverse-distance weighting within
``IDW_RADIUS_M``, else unknown); ``derive_scenario_areas(ground, water_level_m)`` turns the
depth below a water level into smooth filled contours per depth rank, plus the ground-unknown
areas. Separate from geo.hazards so numpy, scipy and contourpy load only when deriving."""
from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import contourpy
import numpy as np
from scipy.spatial import cKDTree

from geo.hazard_import import DEPTH_RANK_BOUNDS, AreaRecord
from geo.hazards import (
    IDW_MIN_M,
    IDW_NEIGHBOURS,
    IDW_RADIUS_M,
    METRES_PER_DEG_LAT,
    SCENARIO_CELL_M,
    SCENARIO_TILE_NODES,
    UNKNOWN_GROUND,
    UNKNOWN_MARGIN_M,
)

__all__ = ["GroundModel", "derive_scenario_areas"]


def derive_scenario_areas(ground: GroundModel, water_level_m: float) -> list[AreaRecord]:

    """Filled contours of the water depth over the interpolated ground (see ``GroundModel``):
    one area per depth rank and map tile, plus the ground-unknown areas (name ``UNKNOWN_GROUND``,
    level 1 where the ground farther away is lower than ``water_level_m + UNKNOWN_MARGIN_M``,
    else 0). Tiles keep each polygon small, so point-in-area tests stay fast."""
    lats, lons, height, known, far = ground.grid
    depth = water_level_m - height
    areas = _bands(lons, lats, np.ma.masked_array(depth, ~known), [(r, lo, hi) for r, (lo, hi) in enumerate(_DEPTH_BANDS, 1)])
    # Unknown nodes, and the known nodes next to them (so no seam is left between the two fields).
    edge = known & ~_eroded(known)
    risky = (water_level_m + UNKNOWN_MARGIN_M - far > 0).astype(float)
    unknown = np.ma.masked_array(risky, ~(~known | edge))
    areas += _bands(lons, lats, unknown, [(1, 0.5, 1.5), (0, -0.5, 0.5)], UNKNOWN_GROUND)
    return areas


_DEPTH_BANDS = list(zip((0.0, *DEPTH_RANK_BOUNDS), (*DEPTH_RANK_BOUNDS, 1e6), strict=False))


def _eroded(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:, :] &= mask[:-1, :]
    out[:-1, :] &= mask[1:, :]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def _bands(lons: np.ndarray, lats: np.ndarray, z: np.ma.MaskedArray, bands: list[tuple[int, float, float]],
           name: str = "") -> list[AreaRecord]:
    generator = contourpy.contour_generator(lons, lats, z, fill_type=contourpy.FillType.OuterOffset,
                                            chunk_size=SCENARIO_TILE_NODES)
    areas = []
    for level, lower, upper in bands:
        filled: Any = generator.filled(lower, upper)  # FillType.OuterOffset: (points, offsets) per polygon
        for xy, cuts in zip(filled[0], filled[1], strict=True):
            coords = np.round(xy, 6).tolist()
            rings = [[(x, y) for x, y in coords[a:b]] for a, b in itertools.pairwise(cuts.tolist())]
            areas.append(AreaRecord(level, name, [rings]))
    return areas


class GroundModel:
    """Ground height from the road network's measured points: inverse-distance weighting of the
    points within ``IDW_RADIUS_M``; farther than that the height is unknown (``far`` then holds
    an estimate from the nearest points, used only to decide whether unknown ground is near
    the water level)."""

    def __init__(self, samples: list[tuple[float, float, float]]) -> None:
        data = np.asarray(samples, dtype=float)
        self.lat0, self.lon0 = data[:, 0].min(), data[:, 1].min()
        self.lat1, self.lon1 = data[:, 0].max(), data[:, 1].max()
        self.my = METRES_PER_DEG_LAT
        self.mx = METRES_PER_DEG_LAT * math.cos(math.radians(float(data[:, 0].mean())))
        self.elev = data[:, 2]
        self.tree = cKDTree(self._xy(data[:, 0], data[:, 1]))

    def _xy(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        return np.column_stack(((lon - self.lon0) * self.mx, (lat - self.lat0) * self.my))

    def heights(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(height, known, far estimate) at each point."""
        xy = self._xy(np.asarray(lat, dtype=float), np.asarray(lon, dtype=float))
        near_d, near_i = self.tree.query(xy, k=IDW_NEIGHBOURS, distance_upper_bound=IDW_RADIUS_M)
        known = np.isfinite(near_d[:, 0])
        height = _idw(near_d, near_i, self.elev)
        far = height.copy()
        if not known.all():
            far_d, far_i = self.tree.query(xy[~known], k=IDW_NEIGHBOURS)
            far[~known] = _idw(far_d, far_i, self.elev)
        return np.where(known, height, np.nan), known, far

    @functools.cached_property
    def grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Grid axes (lat, lon) over the points plus ``IDW_RADIUS_M``, and per node (rows =
        latitudes) the height, whether it is known, and the far estimate."""
        pad_lat, pad_lon = IDW_RADIUS_M / self.my, IDW_RADIUS_M / self.mx
        lats = np.arange(self.lat0 - pad_lat, self.lat1 + pad_lat + 1e-12, SCENARIO_CELL_M / self.my)
        lons = np.arange(self.lon0 - pad_lon, self.lon1 + pad_lon + 1e-12, SCENARIO_CELL_M / self.mx)
        glon, glat = np.meshgrid(lons, lats)
        height, known, far = self.heights(glat.ravel(), glon.ravel())
        shape = glat.shape
        return lats, lons, np.nan_to_num(height.reshape(shape)), known.reshape(shape), far.reshape(shape)


def _idw(d: np.ndarray, i: np.ndarray, values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(d)
    safe_i = np.where(ok, i, 0)
    w = np.where(ok, 1.0 / np.maximum(d, IDW_MIN_M) ** 2, 0.0)
    total = w.sum(axis=1)
    return (w * values[safe_i]).sum(axis=1) / np.where(total > 0, total, 1.0)
