"""Disaster HQ (災害対策本部) view, /family/hq: alerts (issue, update, end), every shelter's
status and count, open SOS with name, message, place and time (mark handled), search by name,
counts per area (the city's districts, else designated shelters' catchments), 要支援者 who consented and have not answered, and
located answers on a map. Kept current by the live event stream and the background poll.
For ``city_staff`` only; the platform decides what staff may see (consent), this screen draws it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import flet as ft
import flet_map as fm

from app.family import (
    HqPerson,
    SafetyStatus,
    age_key,
    shelter_board,
)
from app.state import Mamori
from geo.models import LatLon
from protocol.hazards import ShelterKind
from views.features.family_ctl import FamilyCtl
from views.map import shelter_layer, street_layer
from views.widgets import clock, heading, helped, notice, text_field

UNLOCATED, OUTSIDE = "unlocated", "outside"
ALERT_HAZARDS = ("flood", "landslide", "storm_surge", "tsunami", "earthquake", "inland_flood", "heavy_rain", "fire")
# Colour and icon per status; the label always says it in words too.
STATUS_LOOK = {
    SafetyStatus.SAFE: ("#1B7F3B", ft.Icons.CHECK_CIRCLE),
    SafetyStatus.NEED_HELP: ("#B00000", ft.Icons.SOS),
    SafetyStatus.INJURED: ("#C2410C", ft.Icons.HEALING),
    SafetyStatus.EVACUATING: ("#0B5FA5", ft.Icons.DIRECTIONS_RUN),
    SafetyStatus.AT_SHELTER: ("#5B21B6", ft.Icons.HOLIDAY_VILLAGE),
}


def build(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    t = app.t
    if not ctl.logged_in:
        return [notice(t("family.hq.staff_only"), ft.Icons.LOCK, key="hq-staff-only"),
                ft.Button(content=t("family.to_account"), on_click=lambda e: ctl.shell.navigate("/settings/account"))]
    if ctl.identity is not None and not ctl.is_staff():
        return [notice(t("family.hq.staff_only"), ft.Icons.LOCK, key="hq-staff-only")]
    ctl.watch_alerts()  # live updates and the background poll keep this screen current
    controls: list[ft.Control] = [heading(t("family.hq.title")), ft.Text(t("family.hq.intro"))]
    if ctl.message:
        controls.append(notice(ctl.message, key="family-message"))
    refresh: list[ft.Control] = [ft.Button(content=t("family.hq.load"), icon=ft.Icons.REFRESH, on_click=lambda e: ctl.load_hq())]
    if ctl.hq_loaded_at:
        refresh.append(ft.Text(t("family.hq.loaded_at", time=clock(ctl.hq_loaded_at, "%H:%M:%S")),
                               theme_style=ft.TextThemeStyle.BODY_SMALL))
    controls.append(ft.Row(refresh, wrap=True))
    controls += alerts_part(app, ctl)
    controls += shelters_part(app)
    if ctl.hq is None:
        return controls
    since = ctl.hq_since()
    controls += sos_part(app, ctl)
    controls += search_part(app, ctl)
    controls.append(ft.Text(t("family.hq.since", time=clock(since, "%m/%d %H:%M")),
                            theme_style=ft.TextThemeStyle.BODY_SMALL))
    controls.append(section(t("family.hq.counts")))
    areas = app.family.hq_areas()
    controls.append(ft.Text(t(f"family.hq.areas.{areas.kind}"), theme_style=ft.TextThemeStyle.BODY_SMALL, key="hq-areas-kind"))
    for area, counts in ctl.hq.counts(areas.polygons, since).items():
        if not any(counts.values()):
            continue
        label = (t(f"family.hq.area.{area}") if area in (UNLOCATED, OUTSIDE)
                 else area if areas.kind == "district" else t("family.hq.area.catchment", name=area))
        line = " / ".join(f"{t(SafetyStatus(s).label_key)} {n}" for s, n in counts.items() if n)
        controls.append(ft.Text(f"{label}: {line}", key=f"hq-area-{area}"))
    people = ctl.hq.unanswered(since)
    controls.append(section(t("family.hq.unanswered", n=len(people))))
    for p in people:
        needs = "、".join(t(f"family.need.{n}") if t.has(f"family.need.{n}") else n for n in p.needs)
        controls.append(ft.ListTile(leading=ft.Icon(ft.Icons.ACCESSIBLE), title=ft.Text(p.name or p.person[:8]),
                                    subtitle=ft.Text(" · ".join(x for x in (p.address, needs) if x))))
        controls.append(ft.Button(content=t("family.hq.remind", name=p.name or p.person[:8]), icon=ft.Icons.CAMPAIGN,
                                  on_click=lambda e, who=p.person: ctl.hq_remind(who)))
    points = ctl.hq.map_points(since=since)
    controls.append(section(t("family.hq.map", n=len(points))))
    if points:
        controls.append(answer_map(app, points))
    return controls


def section(text: str) -> ft.Control:
    return ft.Text(text, theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD)


def catchments(app: Mamori):
    """The nearest designated shelter (指定避難所) of a point: the HQ's areas by default."""
    shelters = [hit.shelter for hit in app.shelters.search(kind=ShelterKind.DESIGNATED_SHELTER)]

    def nearest(lat: float, lon: float) -> str | None:
        best = min(shelters, key=lambda s: (s.lat - lat) ** 2 + ((s.lon - lon) * 0.83) ** 2, default=None)
        return best.name if best else None

    return nearest


def place_of(app: Mamori, lat: float | None, lon: float | None, place: str | None) -> str:
    if place:
        return place
    if lat is None or lon is None:
        return app.t("family.sos.no_place")
    name = catchments(app)(lat, lon)
    return app.t("family.hq.near", name=name) if name else f"{lat:.4f}, {lon:.4f}"


def person_tile(app: Mamori, ctl: FamilyCtl, person: HqPerson, key: str) -> list[ft.Control]:
    t = app.t
    answer = person.sos or person.latest
    if answer is None:
        return []
    colour, icon = STATUS_LOOK[answer.status]
    who = t("family.by_self") if not answer.is_proxy else t("family.hq.by_caregiver")
    lines = [f"{t(answer.status.label_key)} · {clock(answer.observed_at, '%m/%d %H:%M')} · {who}",
             place_of(app, answer.lat, answer.lon, answer.place)]
    if answer.message:
        lines.append(answer.message)
    controls: list[ft.Control] = [ft.ListTile(leading=ft.Icon(icon, color=colour, size=32), title=ft.Text(person.name),
                                              subtitle=ft.Text("\n".join(lines)), key=key)]
    if person.sos is not None:
        controls.append(ft.Button(content=t("family.hq.resolve", name=person.name), icon=ft.Icons.CHECK_CIRCLE,
                                  on_click=lambda e, p=person.person: ctl.hq_resolve(p)))
    return controls


def sos_part(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    """Open SOS, oldest first: name, status, time, place and message, and where they are on a street map."""
    sos = [p for p in ctl.hq_people if p.sos is not None]
    controls: list[ft.Control] = [section(app.t("family.hq.sos", n=len(sos)))]
    for person in sorted(sos, key=lambda p: p.sos.observed_at):  # type: ignore[union-attr]
        controls += person_tile(app, ctl, person, f"hq-sos-{person.person}")
    now = datetime.now(UTC)
    pins = [Pin(a.lat, a.lon, a.status, max(0, int((now - a.observed_at).total_seconds())), a.is_proxy, p.name)  # type: ignore[arg-type]
            for p in sos if (a := p.sos) is not None and a.has_location]
    if pins:
        controls.append(status_map(app, pins, app.t("family.hq.sos_map", n=len(pins))))
    return controls


def search_part(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    t = app.t
    controls: list[ft.Control] = [
        section(t("family.hq.search")),
        text_field(label=t("family.hq.search_label"), **helped(t("family.hq.search_label_help")), value=ctl.hq_query, max_length=60,
                     on_submit=lambda e: ctl.search_hq(e.control.value or ""),
                     on_change=lambda e: setattr(ctl, "hq_query", e.control.value or "")),
        ft.Button(content=t("family.hq.search_button"), icon=ft.Icons.SEARCH, on_click=lambda e: ctl.search_hq(ctl.hq_query)),
    ]
    if ctl.hq_found is not None:
        if not ctl.hq_found:
            controls.append(ft.Text(t("family.hq.search_none")))
        for person in ctl.hq_found:
            controls += person_tile(app, ctl, person, f"hq-found-{person.person}")
    return controls


def shelters_part(app: Mamori) -> list[ft.Control]:
    """Every shelter the platform has a status for: open/full/closed, people vs capacity, households in cars."""
    t = app.t
    rows = shelter_board(app.link.entities("shelter_status")) if app.link else []
    controls: list[ft.Control] = [section(t("family.hq.shelters", n=len(rows)))]
    for row in rows:
        shelter = app.shelters.get(ShelterKind.DESIGNATED_SHELTER, row.shelter_id) or app.shelters.get(ShelterKind.EMERGENCY_SITE, row.shelter_id)
        status = t(f"live.{row.status}") if t.has(f"live.{row.status}") else row.status
        count = (t("family.hq.load_line", n=row.occupancy, capacity=row.capacity, pct=row.load_pct) if row.capacity
                 else t("family.hq.load_line_no_capacity", n=row.occupancy))
        if row.self_reported:
            count += t("live.self_reported", n=row.self_reported)
        if row.in_car_households:
            count += t("family.hq.in_car", households=row.in_car_households, persons=row.in_car_persons)
        controls.append(ft.Text(f"{shelter.name if shelter else row.shelter_id}: {status} · {count}", key=f"hq-shelter-{row.shelter_id}"))
    return controls


def area_choice(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    """Whole municipality, or chosen areas (added one by one)."""
    t, form = app.t, ctl.alert_form
    chosen = list(form["areas"])  # type: ignore[call-overload]

    def choose(name: str | None) -> None:
        if name and name not in chosen:
            form["areas"] = (*chosen, name)
        ctl.shell.render()

    def drop(name: str) -> None:
        form["areas"] = tuple(n for n in chosen if n != name)
        ctl.shell.render()

    controls: list[ft.Control] = [ft.Text(t("family.hq.alert_area_chosen", names="、".join(chosen)) if chosen
                                          else t("family.hq.alert_area_all"), key="hq-alert-area")]
    controls += [ft.Button(content=t("family.hq.alert_area_drop", name=n), icon=ft.Icons.CLOSE, on_click=lambda e, n=n: drop(n))
                 for n in chosen]
    controls.append(ft.Dropdown(label=t("family.hq.alert_area_add"), value=None,
                                options=[ft.DropdownOption(key=n, text=n) for n in sorted(app.family.hq_areas().polygons)],
                                on_select=lambda e: choose(e.control.value)))
    return controls


def alerts_part(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    """Issue, update and end alerts for the whole municipality or chosen areas."""
    t, form = app.t, ctl.alert_form
    now = datetime.now(UTC)
    active = [a for a in ctl.alerts() if a.active(now)]
    controls: list[ft.Control] = [section(t("family.hq.alerts", n=len(active)))]
    for alert in active:
        hazard = t(f"family.hazard.{alert.hazard}") if t.has(f"family.hazard.{alert.hazard}") else alert.hazard
        controls.append(ft.Text(f"{t(alert.level_key)} · {hazard} · {alert.headline}", key=f"hq-alert-{alert.id}"))
        controls.append(ft.Row([
            ft.Button(content=t("family.hq.alert_edit"), icon=ft.Icons.EDIT,
                      on_click=lambda e, a=alert: (ctl.alert_form.update(id=a.id.rsplit(":", 1)[-1], hazard=a.hazard, level=a.level,
                                                                          headline=a.headline), ctl.shell.render())),
            ft.Button(content=t("family.hq.alert_end"), icon=ft.Icons.STOP_CIRCLE, on_click=lambda e, a=alert: ctl.end_alert(a)),
        ], wrap=True))

    def set_(name: str, value: object) -> None:
        form[name] = value

    controls += [
        ft.Dropdown(label=t("family.hq.alert_hazard"), value=str(form["hazard"]),
                    options=[ft.DropdownOption(key=h, text=t(f"family.hazard.{h}")) for h in ALERT_HAZARDS],
                    on_select=lambda e: set_("hazard", e.control.value)),
        ft.Dropdown(label=t("family.hq.alert_level"), value=str(form["level"]),
                    options=[ft.DropdownOption(key=str(n), text=t(f"family.alert.level.{n}")) for n in range(1, 6)],
                    on_select=lambda e: set_("level", int(e.control.value))),
        text_field(label=t("family.hq.alert_headline"), value=str(form["headline"]), max_length=200,
                     on_change=lambda e: set_("headline", e.control.value or "")),
        *area_choice(app, ctl),
        ft.Button(content=t("family.hq.alert_update" if form.get("id") else "family.hq.alert_issue"), icon=ft.Icons.CAMPAIGN,
                  key="hq-alert-issue", on_click=lambda e: ctl.publish_alert()),
    ]
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
    """Located answers as markers coloured by status over the streets; each marker says who, what and how old."""
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
    streets, shelters = street_layer(app, LatLon(lat, lon)), shelter_layer(app, LatLon(lat, lon))
    map_ = fm.Map(initial_center=fm.MapLatitudeLongitude(latitude=lat, longitude=lon), initial_zoom=14,
                  layers=[layer for layer in (streets, shelters) if layer] + [fm.MarkerLayer(markers=markers)])
    return ft.Semantics(label=label, container=True,
                        content=ft.Container(map_, height=320, border=ft.Border.all(1, ft.Colors.OUTLINE)))
