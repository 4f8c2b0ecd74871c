"""My Hazard in Chromium: pick 津波, pick a point on low ground, see "evacuate" and a route with time."""
from __future__ import annotations

import io
import math
import time

import numpy as np
from PIL import Image

from geo.hazards import HazardLayers
from geo.models import LatLon
from offline.store import open_store
from protocol.hazards import HazardType
from tests.browser.conftest import snap, snap_on_failure, tap_canvas
from views import theme

TILE = 256  # flutter_map's tile size: pixels per world at zoom 0
ROUTE_RGB = tuple(int(theme.ROUTE[i : i + 2], 16) for i in (1, 3, 5))


def pixel_to_latlon(centre: LatLon, zoom: float, dx: float, dy: float) -> LatLon:
    """Web Mercator: the point ``dx, dy`` pixels from the map centre."""
    scale = TILE * 2**zoom
    x = (centre.lon + 180) / 360 * scale + dx
    siny = math.sin(math.radians(centre.lat))
    y = (0.5 - math.log((1 + siny) / (1 - siny)) / (4 * math.pi)) * scale + dy
    lon = x / scale * 360 - 180
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / scale))))
    return LatLon(lat, lon)


def latlon_to_pixel(centre: LatLon, zoom: float, point: LatLon) -> tuple[float, float]:
    """Offset in pixels of ``point`` from the map centre (inverse of pixel_to_latlon)."""

    def xy(p: LatLon) -> tuple[float, float]:
        scale = TILE * 2**zoom
        siny = math.sin(math.radians(p.lat))
        return (p.lon + 180) / 360 * scale, (0.5 - math.log((1 + siny) / (1 - siny)) / (4 * math.pi)) * scale

    (x0, y0), (x1, y1) = xy(centre), xy(point)
    return x1 - x0, y1 - y0


def drawn_route_box(page, timeout_s: float = 20.0) -> tuple[float, float, float, float]:
    """The box (CSS pixels) of what is drawn in the route's colour, once the route is drawn."""
    deadline = time.monotonic() + timeout_s
    while True:
        rgb = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(np.int16)
        scale = rgb.shape[1] / page.viewport_size["width"]
        ys, xs = np.nonzero(np.all(np.abs(rgb - ROUTE_RGB) <= 24, axis=2))
        if len(xs) >= 100 * scale * scale:  # a line of a few hundred pixels, not a stray icon
            return xs.min() / scale, ys.min() / scale, (xs.max() + 1) / scale, (ys.max() + 1) / scale
        assert time.monotonic() < deadline, "the route was never drawn on the map"
        page.wait_for_timeout(250)


def test_tsunami_point_must_evacuate_and_gets_a_route(page, ube_store_file):
    page.get_by_role("tab", name="ハザード").click()
    page.get_by_role("checkbox", name="津波").click()
    page.get_by_text("想定シナリオ（公式のハザードマップではありません）", exact=False).first.wait_for()
    page.get_by_role("button", name="地図で地点を選ぶ").click()
    area = page.get_by_label("地図（タップで地点を選ぶ）")
    area.wait_for()
    page.wait_for_timeout(1500)
    box = area.bounding_box()

    # Where the map starts (centre of Ube's road network, zoom 13): find an empty spot on low ground.
    db = open_store(ube_store_file)
    from app.mapdata import load_road_strokes
    from app.state import Mamori  # noqa: F401  (the same centre logic the map uses)

    centre = load_road_strokes(db, "352021").centre()
    layers = HazardLayers.for_region(db, "352021")
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    taken = [(cx + dx, cy + dy) for dx,
             dy in (latlon_to_pixel(centre, 13, LatLon(lat, lon)) for lat, lon in db.execute("SELECT lat, lon FROM shelter"))]
    spots = []
    for px in range(int(box["x"] + 40), int(box["x"] + box["width"] - 80), 12):  # clear of the map buttons
        for py in range(int(box["y"] + 40), int(box["y"] + box["height"] - 40), 12):
            point = pixel_to_latlon(centre, 13, px - cx, py - cy)
            gap = min((math.hypot(px - x, py - y) for x, y in taken), default=1e9)
            if layers.assess(point, HazardType.TSUNAMI).must_evacuate:
                spots.append((gap, px, py))
    assert spots, "no low-ground spot visible on the map"
    # Spots far from every shelter marker (placed by the same projection the map uses); if
    # a tap still opens a shelter, the next-best spot is tried.
    route_button = page.get_by_role("button", name="ここから避難経路を調べる")
    detail = page.get_by_text("避難所の詳細")
    for _, px, py in sorted(spots, reverse=True)[:5]:
        tap_canvas(page, px, py)
        route_button.or_(detail).first.wait_for(timeout=20_000)
        if route_button.count():
            break
        page.get_by_role("button", name="戻る").click()
        page.get_by_label("地図（タップで地点を選ぶ）").wait_for()
    route_button.click()
    # The route map comes back with the route drawn and fitted (its fit button appears with it).
    page.get_by_role("button", name="経路全体を表示").wait_for(timeout=30_000)
    # The whole route is on screen, inside the map and clear of its edges (it once ran off a phone).
    with snap_on_failure(page, "hazard-route-map"):
        area = page.get_by_label("地図（タップで地点を選ぶ）").bounding_box()
        x0, y0, x1, y1 = drawn_route_box(page)
    snap(page, "hazard-route-map")
    assert area["x"] + 8 <= x0 and x1 <= area["x"] + area["width"] - 8, (x0, x1, area)
    assert area["y"] + 8 <= y0 and y1 <= area["y"] + area["height"] - 8, (y0, y1, area)

    page.get_by_role("button", name="戻る").click()
    page.get_by_text("選んだ地点: 避難が必要です").wait_for()
    page.get_by_text("ほかの避難場所:").wait_for()
    page.get_by_text("（地図で選んだ地点から", exact=False).first.wait_for()  # says what (walking or straight line) and from where
    snap(page, "hazard-advice")
