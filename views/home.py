"""Home: where the resident is (region), how fresh the data is, and where alerts will appear."""
from __future__ import annotations

from collections.abc import Callable

import flet as ft

from app.state import Mamori
from geo.models import LatLon, Shelter
from protocol.hazards import HazardType
from views.features.family_ctl import current_alerts
from views.shelters import live_status
from views.widgets import format_distance, heading, local_time, notice


def build(app: Mamori, navigate: Callable[[str], None], banners: list[ft.Control] = ()) -> list[ft.Control]:
    """``banners``: what must come first (disaster alerts from the family-safety feature)."""
    t = app.t
    summary = app.summary()
    region_name = summary.name if app.prefs.language != "en" else summary.name_en
    controls: list[ft.Control] = [
        *banners,
        heading(t("home.region", name=region_name)),
        ft.Text(t("home.alerts.title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD),
    ]
    unreachable = _unreachable_text(app)
    if unreachable:  # never calmer than it is: say the check failed, even under a banner
        controls.append(notice(unreachable, ft.Icons.CLOUD_OFF, key="alert-unreachable"))
    elif not banners:
        controls.append(notice(_no_alert_text(app), ft.Icons.NOTIFICATIONS_NONE, key="alert-area"))
    controls += _nearest(app, navigate, _alert_hazard(app) if banners else None)
    controls.append(ft.Text(t("home.data.title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD))
    if not summary.datasets:
        controls.append(notice(t("home.data.none"), ft.Icons.WARNING_AMBER))
    for info in summary.datasets:
        controls.append(
            ft.Text(
                t("home.data.row", dataset=t(f"dataset.{info.dataset}"), n=info.feature_count, when=local_time(info.imported_at))
            )
        )
    return controls


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


def _alert_hazard(app: Mamori) -> HazardType | None:
    """The hazard of the most severe active alert for home or position, when it is one of the eight."""
    values = {h.value for h in HazardType}
    return next((HazardType(a.hazard) for a in current_alerts(app) if a.hazard in values), None)


def _open_state(app: Mamori, shelter: Shelter) -> str:
    """"開設中・3人" from the platform (this record, or the same facility's other GSI record)."""
    statuses = app.link.shelter_statuses() if app.link else {}
    other = app.shelters.same_place(shelter)
    live = statuses.get(shelter.id) or (statuses.get(other.id) if other else None)
    return live_status(app, live) if live else app.t("home.nearest.open_unknown")


def _nearest(app: Mamori, navigate: Callable[[str], None], alert_hazard: HazardType | None = None) -> list[ft.Control]:
    """The three nearest sites safe for the chosen hazard — during an alert, for the alert's hazard,
    with whether each is open."""
    t = app.t
    hazard = alert_hazard or app.prefs.hazard
    key = "home.nearest.alert_title" if alert_hazard else "home.nearest.title"
    title = ft.Text(t(key, hazard=t(f"hazard.{hazard.value}")), theme_style=ft.TextThemeStyle.TITLE_MEDIUM,
                    weight=ft.FontWeight.BOLD, key="home-nearest-title")
    home = app.prefs.home
    if home is None:
        return [
            title,
            ft.Text(t("home.nearest.no_home")),
            ft.Button(t("home.set_home"), icon=ft.Icons.HOME, on_click=lambda e: navigate("/shelters/map")),
        ]
    hits = app.shelters.nearest(LatLon(home.lat, home.lon), 3, hazard)
    if not hits:
        return [title, notice(t("home.nearest.none"), ft.Icons.WARNING_AMBER)]
    return [title] + [
        ft.ListTile(
            title=ft.Text(h.shelter.name),
            subtitle=ft.Text(format_distance(app, h.distance_m) + (f" · {_open_state(app, h.shelter)}" if alert_hazard else "")),
            leading=ft.Icon(ft.Icons.DIRECTIONS_WALK),
            on_click=lambda e, s=h.shelter: navigate(f"/shelters/{s.kind.value}/{s.id}"),
        )
        for h in hits
    ]
