"""Home answers "must I evacuate, and where to?" first: for the hazard of an active alert (else
the chosen one) a verdict for home and the current position, the nearest open suitable shelter
with its walking distance and time, and one tap to the route on the map. Then alerts, the
nearest shelters and how fresh the data is."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import flet as ft

from app.connection import ShelterStatus
from app.state import Mamori
from geo.models import LatLon, Shelter
from geo.routing import RouteResult
from protocol.hazards import HazardType
from views.features.family_ctl import current_alerts
from views.hazard import advice_card, distance_text
from views.shelters import live_status
from views.widgets import format_distance, heading, local_time, notice

ShowRoute = Callable[[str, RouteResult], None]  # (origin: "home" | "position", route) → the route map


def build(app: Mamori, navigate: Callable[[str], None], banners: Sequence[ft.Control] = (), *,
          show_route: ShowRoute | None = None) -> list[ft.Control]:
    """``banners``: what must come first (disaster alerts from the family-safety feature);
    ``show_route(origin, route)``: open the route map with that route drawn."""
    t = app.t
    alert = _alert(app) if banners else None
    summary = app.summary()
    region_name = summary.name if app.prefs.language != "en" else summary.name_en
    controls: list[ft.Control] = [*banners, *answer(app, navigate, alert, show_route)]
    controls += [
        ft.Text(t("home.alerts.title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD),
    ]
    unreachable = _unreachable_text(app)
    if unreachable:  # never calmer than it is: say the check failed, even under a banner
        controls.append(notice(unreachable, ft.Icons.CLOUD_OFF, key="alert-unreachable"))
    elif not banners:
        controls.append(notice(_no_alert_text(app), ft.Icons.NOTIFICATIONS_NONE, key="alert-area"))
    controls += _nearest(app, navigate, alert)
    controls.append(ft.Text(t("home.data.title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD))
    controls.append(ft.Text(t("home.region", name=region_name)))
    if not summary.datasets:
        controls.append(notice(t("home.data.none"), ft.Icons.WARNING_AMBER))
    for info in summary.datasets:
        controls.append(
            ft.Text(
                t("home.data.row", dataset=t(f"dataset.{info.dataset}"), n=info.feature_count, when=local_time(info.imported_at))
            )
        )
    return controls


def answer(app: Mamori, navigate: Callable[[str], None], alert: tuple[HazardType, int] | None,
           show_route: ShowRoute | None) -> list[ft.Control]:
    """The verdicts and the way to the nearest open suitable shelter."""
    t = app.t
    hazard, level = alert if alert else (app.prefs.hazard, None)
    why = t("home.answer.from_alert", level=level) if alert else t("home.answer.chosen")
    controls: list[ft.Control] = [
        heading(t("home.answer.title", hazard=t(f"hazard.{hazard.value}"))),
        ft.Text(why, theme_style=ft.TextThemeStyle.BODY_SMALL),
    ]
    places = [(place, point) for place, point in (("home", app.prefs.home), ("position", app.position)) if point]
    if not places:
        return [*controls, ft.Text(t("home.nearest.no_home")),
                ft.Button(t("home.set_home"), icon=ft.Icons.HOME, on_click=lambda e: navigate("/shelters/map"))]
    app.evacuation.hurry()  # a place asks for a route: no waiting for the first frame
    if not app.evacuation.layers_ready:  # the first start derives the hazard scenarios in the background
        return [*controls, notice(t("home.answer.preparing"), ft.Icons.HOURGLASS_TOP, key="answer-preparing")]
    for place, point in places:
        controls.append(advice_card(app, app.evacuation.assess(place, point, hazard, alert_level=level)))
    if not app.evacuation.ready:  # then indexes the streets
        return [*controls, notice(t("home.answer.preparing"), ft.Icons.HOURGLASS_TOP, key="answer-preparing")]
    place, origin = places[0]
    route = app.evacuation.nearest_open(origin, hazard, lambda s: _closed(app, s))
    controls += _shelter_card(app, place, route, show_route)
    return controls


def _closed(app: Mamori, shelter: Shelter) -> bool:
    live = _live(app, shelter)
    return live is not None and live.status in ("closed", "full")


def _shelter_card(app: Mamori, place: str, route: RouteResult, show_route: ShowRoute | None) -> list[ft.Control]:
    t = app.t
    if route.shelter is None:
        return [notice(t(route.message_key), ft.Icons.WARNING_AMBER, key="answer-no-shelter")]
    lines: list[ft.Control] = [
        ft.Text(t("home.answer.go_to"), theme_style=ft.TextThemeStyle.LABEL_LARGE),
        ft.Text(route.shelter.name, theme_style=ft.TextThemeStyle.TITLE_LARGE, weight=ft.FontWeight.BOLD, key="answer-shelter"),
        ft.Text(distance_text(app, route, place), key="answer-distance"),
    ]
    if route.status.message_key != "route.ok":
        lines.append(ft.Text(t(route.message_key), theme_style=ft.TextThemeStyle.BODY_SMALL))
    if route.path and show_route:
        lines.append(ft.Button(t("home.answer.show_route"), icon=ft.Icons.DIRECTIONS_WALK, key="answer-route",
                               height=52, on_click=lambda e: show_route(place, route)))
    return [ft.Container(ft.Column(lines, spacing=4), padding=12, border_radius=8,
                         border=ft.Border.all(1, ft.Colors.OUTLINE), key="answer-shelter-card")]


def _no_alert_text(app: Mamori) -> str:
    """Why no alert shows: no platform to send one, none received yet, or none since a check."""
    link = app.link
    if not (link and link.configured):
        return app.t("home.alerts.no_platform")
    state = link.state()
    alerts = state.datasets.get("alerts") if state else None
    if alerts is None or not alerts.last_success_at:
        return app.t("home.alerts.not_received")
    return app.t("home.alerts.none", when=local_time(alerts.last_success_at))


def _unreachable_text(app: Mamori) -> str | None:
    """The platform could not be reached at the last check: when the last good one was, and what to do."""
    link = app.link
    state = link.state() if link and link.configured else None
    alerts = state.datasets.get("alerts") if state else None
    if alerts is None or not alerts.last_error or (alerts.last_success_at or "") >= (alerts.last_attempt_at or ""):
        return None
    if alerts.last_success_at:
        return app.t("home.alerts.unreachable", when=local_time(alerts.last_success_at))
    return app.t("home.alerts.unreachable_never")


def _alert(app: Mamori) -> tuple[HazardType, int] | None:
    """The hazard and 警戒レベル of the most severe active alert for home or position, when its
    hazard is one of the eight."""
    values = {h.value for h in HazardType}
    return next(((HazardType(a.hazard), a.level) for a in current_alerts(app) if a.hazard in values), None)


def _live(app: Mamori, shelter: Shelter) -> ShelterStatus | None:
    """What the platform said about this record, or the same facility's other GSI record."""
    statuses = app.link.shelter_statuses() if app.link else {}
    if not statuses:
        return None
    other = app.shelters.same_place(shelter)
    return statuses.get(shelter.id) or (statuses.get(other.id) if other else None)


def _open_state(app: Mamori, shelter: Shelter) -> str:
    """"開設中・3人" from the platform, else that it is not known."""
    live = _live(app, shelter)
    return live_status(app, live) if live else app.t("home.nearest.open_unknown")


def _nearest(app: Mamori, navigate: Callable[[str], None], alert: tuple[HazardType, int] | None) -> list[ft.Control]:
    """The three nearest sites safe for the chosen hazard — during an alert, for the alert's hazard,
    with whether each is open."""
    t = app.t
    hazard = alert[0] if alert else app.prefs.hazard
    key = "home.nearest.alert_title" if alert else "home.nearest.title"
    title = ft.Text(t(key, hazard=t(f"hazard.{hazard.value}")), theme_style=ft.TextThemeStyle.TITLE_MEDIUM,
                    weight=ft.FontWeight.BOLD, key="home-nearest-title")
    home = app.prefs.home
    if home is None:
        return []
    hits = app.shelters.nearest(LatLon(home.lat, home.lon), 3, hazard)
    if not hits:
        return [title, notice(t("home.nearest.none"), ft.Icons.WARNING_AMBER)]
    return [title] + [
        ft.ListTile(
            title=ft.Text(h.shelter.name),
            subtitle=ft.Text(t("dist.straight_from", distance=format_distance(app, h.distance_m), place=t("mh.place.home"))
                             + (f" · {_open_state(app, h.shelter)}" if alert else "")),
            leading=ft.Icon(ft.Icons.PLACE_OUTLINED),
            on_click=lambda e, s=h.shelter: navigate(f"/shelters/{s.kind.value}/{s.id}"),
        )
        for h in hits
    ]
