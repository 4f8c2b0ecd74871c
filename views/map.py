"""The shelter map: flet-map vector layers only (no internet tiles): boundary, roads,
shelters coloured by suitability for the chosen hazard, home and a picked point.

Tapping a shelter opens it; tapping the map offers to make that spot home, or to sort
shelters by distance from it. The screen object keeps its Map so that taps and hazard
changes update only the markers and never reset where the resident has panned to.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import flet as ft
import flet_map as fm

from app.state import Mamori
from geo.hazards import UNKNOWN_GROUND, AreaShape, HazardLayer
from geo.models import LatLon, Shelter
from geo.routing import RouteResult, Street
from protocol.hazards import HazardType, ShelterKind
from views import theme
from views.hazard import guiding_streets
from views.widgets import icon_action

ROADS_NEAR_M = 1500.0  # minor roads are drawn within this distance of the focus point
BOTTOM_H = 190  # the box under the map (what was tapped, the route): scrolls on its own
FIT_PADDING = 48  # pixels kept free around a fitted route (the buttons sit in the corner)
# Hazard areas: deeper levels darker; translucent so streets stay readable underneath.
LEVEL_FILL = {level: ft.Colors.with_opacity(0.25 + 0.1 * level, "#1565C0") for level in range(1, 7)}
UNKNOWN_FILL = ft.Colors.with_opacity(0.35, "#8D6E63")  # no ground height measured nearby, treated as at risk

Ring = list[tuple[float, float]]
_MAP_KEYS = itertools.count()


def bridged(outer: Ring, holes: list[Ring]) -> Ring:
    """One ring that draws ``outer`` minus ``holes`` (flet-map polygons take no holes): each hole
    is joined to the ring by a zero-width cut between their closest vertices."""
    ring = list(outer)
    for hole in holes:
        i, j = min(((i, j) for i in range(len(ring)) for j in range(len(hole))),
                   key=lambda ij: (ring[ij[0]][0] - hole[ij[1]][0]) ** 2 + (ring[ij[0]][1] - hole[ij[1]][1]) ** 2)
        ring = ring[: i + 1] + hole[j:] + hole[:j + 1] + ring[i:]
    return ring


def street_layer(app: Mamori, centre: LatLon) -> fm.PolylineLayer | None:
    """The streets under a map's markers: major roads, and minor ones near ``centre`` (None without roads)."""
    roads = app.roads()
    lines = [(s, theme.ROAD_MAJOR, 2.5) for s in roads.major()] + [(s, theme.ROAD_MINOR, 1.2) for s in roads.minor_near(centre, ROADS_NEAR_M)]
    if not lines:
        return None
    return fm.PolylineLayer(
        polylines=[fm.PolylineMarker(coordinates=[_ll(lat, lon) for lat, lon in s.points], color=colour, stroke_width=width)
                   for s, colour, width in lines]
    )


def shelter_layer(app: Mamori, centre: LatLon, radius_m: float = ROADS_NEAR_M) -> fm.MarkerLayer | None:
    """Shelters near ``centre`` as small labelled markers (a family map's landmarks; the shelter
    map has its own, coloured by hazard). None when there is none nearby."""
    near = [h.shelter for h in app.shelters.nearest(centre, n=30) if (h.distance_m or 0.0) <= radius_m]
    if not near:
        return None
    return fm.MarkerLayer(markers=[
        fm.Marker(coordinates=_ll(s.lat, s.lon), width=22, height=22,
                  content=ft.Semantics(label=app.t("map.shelter_named", name=s.name),
                                       content=ft.Icon(ft.Icons.HOUSE, color=theme.SHELTER_MARK, size=20)))
        for s in near])


@dataclass(frozen=True, slots=True)
class TapAction:
    """A button offered after the map is tapped: label key, icon, what to do with the point."""

    label_key: str
    icon: str
    run: Callable[[LatLon], None]


def fit_zoom(bounds: tuple[tuple[float, float], tuple[float, float]], width: float, height: float) -> float:
    """The Web Mercator zoom that shows ``bounds`` in a map area of this size with FIT_PADDING around."""
    (lat0, lon0), (lat1, lon1) = bounds
    dx = max(abs(lon1 - lon0), 1e-5) / 360
    y = lambda lat: math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))  # noqa: E731
    dy = max(abs(y(lat1) - y(lat0)), 1e-5) / (2 * math.pi)
    zoom = min(math.log2((width - 2 * FIT_PADDING) / 256 / dx), math.log2((height - 2 * FIT_PADDING) / 256 / dy))
    return max(10.0, min(18.0, zoom))


def _ll(lat: float, lon: float) -> fm.MapLatitudeLongitude:
    return fm.MapLatitudeLongitude(latitude=lat, longitude=lon)


class MapScreen:
    def __init__(
        self,
        app: Mamori,
        navigate: Callable[[str], None],
        redraw: Callable[[], None],
        focus: Shelter | None = None,
        *,
        hazard_areas: Callable[[HazardType], list[tuple[HazardLayer, AreaShape]]] | None = None,
        route: RouteResult | None = None,
        tap_actions: list[TapAction] | None = None,
        footer: list[ft.Control] = (),
        on_hazard: Callable[[HazardType], None] | None = None,
    ):
        self.app, self.navigate, self.redraw, self.focus = app, navigate, redraw, focus
        self.hazard_areas, self.route, self.footer = hazard_areas, route, list(footer)
        self.show_areas = True
        self.on_hazard = on_hazard  # the route map: a new hazard means a new route, drawn at once
        self.areas = fm.PolygonLayer(polygons=[])  # redrawn when the hazard changes
        self.tap_actions = tap_actions if tap_actions is not None else [
            TapAction("map.set_home", ft.Icons.HOME, self._set_home),
            TapAction("map.sort_from_here", ft.Icons.SORT, self._sort_from_here),
        ]
        self.tapped: LatLon | None = None
        self.markers = fm.MarkerLayer(markers=[])
        self.panel = ft.Column([], key="map-panel")
        # What was tapped and the route, under the map: shown (in place) once there is something.
        self.below = ft.Container(ft.Column([self.panel, *self.footer], scroll=ft.ScrollMode.AUTO, spacing=6),
                                  height=BOTTOM_H, key="map-below")
        self.chips = ft.Row([], wrap=True)
        centre = self._centre()
        self.size = (360.0, 480.0)  # the map's size on screen (a phone's until it is laid out)
        bounds = self._route_bounds()
        self.fitted = bounds is None  # a route is fitted again once the map's real size is known
        self.map = fm.Map(
            # A new key per screen: Flutter would otherwise keep the old map's camera and skip
            # this one's fit to the route (the route drawn from a picked point stayed off-screen).
            key=f"shelter-map-{next(_MAP_KEYS)}",
            expand=True,
            on_size_change=self._sized,
            size_change_interval=250,
            initial_center=_ll(centre.lat, centre.lon),
            # The whole route (origin to shelter) in view, padded. (flet-map's initial_camera_fit is
            # not applied by the web client: the fit is computed here.)
            initial_zoom=fit_zoom(bounds, *self.size) if bounds else 15 if focus or app.prefs.home else 13,
            on_tap=self._on_tap,
            layers=[*self._static_layers(centre), self.markers],
        )
        self._refresh()

    def controls(self) -> list[ft.Control]:
        """Map first, filling the screen; the hint, hazard chips and legend folded under it; what
        was tapped and the route summary below, in a box that scrolls on its own (large text
        never squeezes the map)."""
        t = self.app.t
        legend = ft.Row(
            [
                self._legend_item(True, t("map.legend.suitable")),
                self._legend_item(False, t("map.legend.unsuitable")),
                self._legend_item(None, t("map.legend.not_assessed")),
                ft.Row([ft.Icon(ft.Icons.HOME, color=theme.HOME), ft.Text(t("map.legend.home"))], tight=True),
            ],
            wrap=True,
        )
        area_toggle: list[ft.Control] = []
        if self.hazard_areas:
            legend.controls.append(ft.Row([ft.Icon(ft.Icons.SQUARE, color=LEVEL_FILL[3]), ft.Text(t("map.legend.area"))], tight=True))
            legend.controls.append(ft.Row([ft.Icon(ft.Icons.SQUARE, color=UNKNOWN_FILL), ft.Text(t("map.legend.unknown"))], tight=True))
            area_toggle.append(ft.Switch(label=t("map.show_areas"), value=self.show_areas, on_change=self._toggle_areas))
        buttons = ft.Column(
            [
                icon_action(ft.Icons.ADD, t("map.zoom_in"), self._zoom_in),
                icon_action(ft.Icons.REMOVE, t("map.zoom_out"), self._zoom_out),
                icon_action(ft.Icons.MY_LOCATION, t("map.my_position"), self._to_position),
                *([icon_action(ft.Icons.FIT_SCREEN, t("map.fit_route"), self._fit)] if self._route_bounds() else []),
            ],
            spacing=4,
        )
        map_area = ft.Stack(
            [
                ft.Semantics(label=t("map.area_label"), container=True, expand=True,
                             content=ft.Container(self.map, expand=True, border=ft.Border.all(1, ft.Colors.OUTLINE))),
                ft.Container(buttons, right=8, top=8, bgcolor=ft.Colors.with_opacity(0.85, ft.Colors.SURFACE), border_radius=8),
                ft.Container(ft.Text(t("map.credit"), size=10), left=4, bottom=2,
                             bgcolor=ft.Colors.with_opacity(0.7, ft.Colors.SURFACE)),
            ],
            expand=True,
        )
        return [
            map_area,
            self.below,
            ft.ExpansionTile(
                title=ft.Text(t("map.options")),
                leading=ft.Icon(ft.Icons.TUNE),
                controls=[ft.Text(t("map.hint")), self.chips, *area_toggle, legend],
                key="map-options",
            ),
        ]

    # ---- map buttons ----
    async def _zoom_in(self, e) -> None:
        await self.map.zoom_in()

    async def _zoom_out(self, e) -> None:
        await self.map.zoom_out()

    async def _to_position(self, e) -> None:
        where = self.app.position or self.app.prefs.home
        if where is not None:
            await self.map.center_on(_ll(where.lat, where.lon), zoom=16)

    async def _fit(self, e) -> None:
        bounds = self._route_bounds()
        if bounds:
            centre = self._centre()
            await self.map.move_to(_ll(centre.lat, centre.lon), zoom=fit_zoom(bounds, *self.size))

    async def _sized(self, e: ft.LayoutSizeChangeEvent) -> None:
        self.size = (e.width, e.height)
        if not self.fitted:
            self.fitted = True
            await self._fit(e)

    def _route_bounds(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        if not (self.route and self.route.path):
            return None
        points = [*self.route.path] + ([(self.route.shelter.lat, self.route.shelter.lon)] if self.route.shelter else [])
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        return (min(lats), min(lons)), (max(lats), max(lons))

    def _legend_item(self, suitable: bool | None, label: str) -> ft.Control:
        return ft.Row([ft.Icon(theme.suitability_icon(suitable), color=theme.suitability_colour(suitable, self.app.prefs)), ft.Text(label)],
                      tight=True)

    def _centre(self) -> LatLon:
        bounds = self._route_bounds()
        if bounds:
            (lat0, lon0), (lat1, lon1) = bounds
            return LatLon((lat0 + lat1) / 2, (lon0 + lon1) / 2)
        if self.focus:
            return LatLon(self.focus.lat, self.focus.lon)
        if self.app.prefs.home:
            return self.app.prefs.home
        roads = self.app.roads().centre()
        if roads:
            return roads  # where the network (and most residents) are
        bounds = self.app.shelters.bounds()
        if bounds:
            return LatLon((bounds[0].lat + bounds[1].lat) / 2, (bounds[0].lon + bounds[1].lon) / 2)
        return LatLon(35.68, 139.76)

    def _static_layers(self, centre: LatLon) -> list[fm.MapLayer]:
        layers: list[fm.MapLayer] = []
        boundary = self.app.boundary()
        if boundary:
            polygons = boundary["coordinates"] if boundary["type"] == "MultiPolygon" else [boundary["coordinates"]]
            layers.append(
                fm.PolygonLayer(
                    polygons=[
                        fm.PolygonMarker(
                            coordinates=[_ll(lat, lon) for lon, lat in polygon[0]],
                            color=ft.Colors.TRANSPARENT,
                            border_color=theme.BOUNDARY,
                            border_stroke_width=2,
                        )
                        for polygon in polygons
                    ]
                )
            )
        if self.hazard_areas:
            layers.append(self.areas)
        streets = street_layer(self.app, centre)
        if streets:
            layers.append(streets)
        if self.route and self.route.path:
            layers.append(
                fm.PolylineLayer(
                    polylines=[
                        fm.PolylineMarker(
                            coordinates=[_ll(lat, lon) for lat, lon in self.route.path],
                            color=theme.ROUTE,
                            stroke_width=6,
                            border_color="#FFFFFF",
                            border_stroke_width=2,
                        )
                    ]
                )
            )
        return layers

    # ---- state that changes while the screen is open ----
    def _refresh(self) -> None:
        app, t = self.app, self.app.t
        hazard = app.prefs.hazard
        self.chips.controls = [
            ft.Chip(label=ft.Text(t(f"hazard.{h.value}")), selected=h is hazard, on_select=lambda e, h=h: self._set_hazard(h))
            for h in HazardType
        ]
        if self.hazard_areas:
            shapes = self.hazard_areas(hazard) if self.show_areas else []
            self.areas.polygons = [
                fm.PolygonMarker(
                    coordinates=[_ll(lat, lon) for lat, lon in bridged(shape.outer, shape.holes)],
                    color=UNKNOWN_FILL if shape.name == UNKNOWN_GROUND else LEVEL_FILL.get(shape.level, LEVEL_FILL[6]),
                    border_color=ft.Colors.TRANSPARENT,
                )
                for _, shape in shapes
                if shape.level > 0  # unknown ground well above the water is not drawn as a hazard
            ]
        streets = guiding_streets(self.route) if self.route else []
        markers = [*map(self._street_marker, streets), *(self._shelter_marker(hit.shelter, hazard) for hit in app.shelters.search())]
        if app.prefs.home:
            markers.append(self._point_marker(app.prefs.home, ft.Icons.HOME, theme.HOME, t("map.home_marker")))
        if self.route and self.route.path:
            markers.append(self._point_marker(LatLon(*self.route.path[0]), ft.Icons.TRIP_ORIGIN, theme.ROUTE, t("map.route_start")))
            if self.route.shelter:
                markers.append(self._name_marker(self.route.shelter))
        if self.app.position:
            markers.append(self._point_marker(self.app.position, ft.Icons.MY_LOCATION, theme.POSITION, t("map.position_marker")))
        if self.tapped:
            markers.append(self._point_marker(self.tapped, ft.Icons.ADD_LOCATION_ALT, theme.PICKED, t("map.picked_marker")))
        self.markers.markers = markers
        self.panel.controls = self._panel()
        self.below.visible = bool(self.panel.controls or self.footer)

    def _shelter_marker(self, shelter: Shelter, hazard: HazardType) -> fm.Marker:
        suitable = shelter.suits(hazard) if shelter.kind is ShelterKind.EMERGENCY_SITE else None
        t = self.app.t
        state = {True: "map.legend.suitable", False: "map.legend.unsuitable", None: "map.legend.not_assessed"}[suitable]
        label = f"{shelter.name} ({t(state)})"
        return fm.Marker(
            coordinates=_ll(shelter.lat, shelter.lon),
            width=34,
            height=34,
            content=ft.Semantics(
                label=label,
                button=True,
                content=ft.GestureDetector(
                    content=ft.Icon(theme.suitability_icon(suitable), color=theme.suitability_colour(suitable, self.app.prefs), size=30),
                    on_tap=lambda e: self.navigate(f"/shelters/{shelter.kind.value}/{shelter.id}"),
                ),
            ),
        )

    @staticmethod
    def _name_marker(shelter: Shelter) -> fm.Marker:
        """The destination's name under its marker."""
        return fm.Marker(
            coordinates=_ll(shelter.lat, shelter.lon),
            width=180,
            height=64,
            alignment=ft.Alignment(0, 1),
            content=ft.Container(
                ft.Text(shelter.name, size=13, weight=ft.FontWeight.BOLD, max_lines=2, overflow=ft.TextOverflow.ELLIPSIS,
                        text_align=ft.TextAlign.CENTER, color="#000000"),
                bgcolor=ft.Colors.with_opacity(0.9, "#FFFFFF"), border_radius=4, padding=3, margin=ft.Margin.only(top=36),
            ),
        )

    @staticmethod
    def _street_marker(street: Street) -> fm.Marker:
        """The name of a street the route follows, on the street (under the shelter markers)."""
        return fm.Marker(
            coordinates=_ll(*street.at),
            width=160,
            height=24,
            content=ft.Container(
                ft.Container(
                    ft.Text(street.name, size=12, italic=True, max_lines=1, overflow=ft.TextOverflow.ELLIPSIS, color="#202020"),
                    bgcolor=ft.Colors.with_opacity(0.8, "#FFFFFF"), border_radius=4, padding=ft.Padding.symmetric(horizontal=4),
                ),
                alignment=ft.Alignment(0, 0),  # the label hugs the name, centred on the street
            ),
        )

    @staticmethod
    def _point_marker(point: LatLon, icon: str, colour: str, label: str) -> fm.Marker:
        return fm.Marker(
            coordinates=_ll(point.lat, point.lon),
            width=34,
            height=34,
            content=ft.Semantics(label=label, content=ft.Icon(icon, color=colour, size=32)),
        )

    def _panel(self) -> list[ft.Control]:
        t = self.app.t
        if not self.tapped:
            return []
        point = self.tapped
        return [
            ft.Text(t("mh.place.picked"), key="tapped-point", weight=ft.FontWeight.BOLD),
            ft.Row(
                [ft.Button(t(a.label_key), icon=a.icon, on_click=lambda e, a=a: a.run(point)) for a in self.tap_actions]
                + [icon_action(ft.Icons.CLOSE, t("common.close"), lambda e: self._clear_tap())],
                wrap=True,
            ),
        ]

    def _update(self) -> None:
        self._refresh()
        self.redraw()

    def _on_tap(self, e: fm.MapTapEvent) -> None:
        self.tapped = LatLon(e.coordinates.latitude, e.coordinates.longitude)
        self._update()

    def _toggle_areas(self, e) -> None:
        self.show_areas = bool(e.control.value)
        self._update()

    def _set_hazard(self, hazard: HazardType) -> None:
        if self.on_hazard is not None:
            self.on_hazard(hazard)
            return
        self.app.set_hazard(hazard)
        self._update()

    def _set_home(self, point: LatLon) -> None:
        self.app.set_home(point)
        self.tapped = None
        self._update()

    def _sort_from_here(self, point: LatLon) -> None:
        self.app.picked_point = point
        self.navigate("/shelters")

    def _clear_tap(self) -> None:
        self.tapped = None
        self._update()
