"""Disaster HQ (災害対策本部) view, /family/hq: counts by status per area, 要支援者 who
consented and have not answered, and located answers on a map. For ``city_staff`` only;
the platform decides what staff may see (consent), this screen only draws it."""
from __future__ import annotations

from dataclasses import dataclass

import flet as ft
import flet_map as fm

from app.family import SafetyStatus, age_key
from app.state import Mamori
from views.features.family_ctl import FamilyCtl
from views.widgets import heading, notice

UNLOCATED, OUTSIDE = "unlocated", "outside"
PAD = 0.02  # degrees (~2 km) around the shelters when the region pack has no boundary
# Colour and icon per status; the label always says it in words too.
STATUS_LOOK = {
    SafetyStatus.SAFE: ("#1B7F3B", ft.Icons.CHECK_CIRCLE),
    SafetyStatus.NEED_HELP: ("#B00000", ft.Icons.SOS),
    SafetyStatus.INJURED: ("#C2410C", ft.Icons.HEALING),
    SafetyStatus.EVACUATING: ("#0B5FA5", ft.Icons.DIRECTIONS_RUN),
    SafetyStatus.AT_SHELTER: ("#5B21B6", ft.Icons.HOLIDAY_VILLAGE),
}


def areas(app: Mamori) -> dict[str, list]:
    """The municipality as one area: its boundary, or (region packs without one, e.g. Ube)
    the box around its shelters, padded by about 2 km and named as approximate."""
    name = app.summary().name if app.prefs.language != "en" else app.region.name_en
    boundary = app.boundary()
    if boundary:
        polygons = boundary["coordinates"] if boundary["type"] == "MultiPolygon" else [boundary["coordinates"]]
        return {name: [[[(float(x), float(y)) for x, y, *_ in ring] for ring in polygon] for polygon in polygons]}
    bounds = app.shelters.bounds()
    if bounds is None:
        return {}
    (s, w), (n, e) = (bounds[0].lat - PAD, bounds[0].lon - PAD), (bounds[1].lat + PAD, bounds[1].lon + PAD)
    return {app.t("family.hq.area.approx", name=name): [[[(w, s), (e, s), (e, n), (w, n), (w, s)]]]}


def build(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    t = app.t
    if not ctl.logged_in:
        return [notice(t("family.hq.staff_only"), ft.Icons.LOCK, key="hq-staff-only"),
                ft.Button(content=t("family.to_account"), on_click=lambda e: ctl.shell.navigate("/settings/account"))]
    if ctl.identity is not None and not ctl.is_staff():
        return [notice(t("family.hq.staff_only"), ft.Icons.LOCK, key="hq-staff-only")]
    controls: list[ft.Control] = [heading(t("family.hq.title")), ft.Text(t("family.hq.intro"))]
    if ctl.message:
        controls.append(notice(ctl.message, key="family-message"))
    controls.append(ft.Button(content=t("family.hq.load"), icon=ft.Icons.REFRESH, on_click=lambda e: ctl.load_hq()))
    if ctl.hq is None:
        return controls
    since = ctl.hq_since()
    controls.append(ft.Text(t("family.hq.since", time=since.astimezone().strftime("%m/%d %H:%M")),
                            theme_style=ft.TextThemeStyle.BODY_SMALL))
    controls.append(ft.Text(t("family.hq.counts"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD))
    for area, counts in ctl.hq.counts(areas(app), since).items():
        label = t(f"family.hq.area.{area}") if area in (UNLOCATED, OUTSIDE) else area
        line = " / ".join(f"{t(SafetyStatus(s).label_key)} {n}" for s, n in counts.items())
        controls.append(ft.Text(f"{label}: {line}", key=f"hq-area-{area}"))
    people = ctl.hq.unanswered(since)
    controls.append(ft.Text(t("family.hq.unanswered", n=len(people)), theme_style=ft.TextThemeStyle.TITLE_MEDIUM,
                            weight=ft.FontWeight.BOLD))
    for p in people:
        needs = ", ".join(p.needs)
        controls.append(ft.ListTile(leading=ft.Icon(ft.Icons.ACCESSIBLE), title=ft.Text(p.name or p.person[:8]),
                                    subtitle=ft.Text(" · ".join(x for x in (p.address, needs) if x))))
    points = ctl.hq.map_points(since=since)
    controls.append(ft.Text(t("family.hq.map", n=len(points)), theme_style=ft.TextThemeStyle.TITLE_MEDIUM,
                            weight=ft.FontWeight.BOLD))
    if points:
        controls.append(answer_map(app, points))
    return controls


def answer_map(app: Mamori, points) -> ft.Control:
    t = app.t
    pins = [Pin(p.lat, p.lon, p.status, p.age_s, p.proxy, "") for p in points]
    return status_map(app, pins, t("family.hq.map_label"))


@dataclass(frozen=True, slots=True)
class Pin:
    lat: float
    lon: float
    status: SafetyStatus
    age_s: int | None
    proxy: bool
    name: str  # "" on the HQ map: staff see answers, not names


def status_map(app: Mamori, pins: list[Pin], label: str) -> ft.Control:
    """Located answers as markers coloured by status; each marker says who, what and how old."""
    t = app.t
    markers = []
    for p in pins:
        colour, icon = STATUS_LOOK[p.status]
        key, values = age_key(p.age_s)
        said = f"{t(p.status.label_key)} {t(key, **values)}" + (f" ({t('family.proxy_badge')})" if p.proxy else "")
        markers.append(fm.Marker(coordinates=fm.MapLatitudeLongitude(latitude=p.lat, longitude=p.lon), width=30, height=30,
                                 content=ft.Semantics(label=f"{p.name} {said}".strip(), content=ft.Icon(icon, color=colour, size=28))))
    lat = sum(p.lat for p in pins) / len(pins)
    lon = sum(p.lon for p in pins) / len(pins)
    map_ = fm.Map(initial_center=fm.MapLatitudeLongitude(latitude=lat, longitude=lon), initial_zoom=13, layers=[fm.MarkerLayer(markers=markers)])
    return ft.Semantics(label=label, container=True,
                        content=ft.Container(map_, height=320, border=ft.Border.all(1, ft.Colors.OUTLINE)))
