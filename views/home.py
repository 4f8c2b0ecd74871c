"""Home: where the resident is (region), how fresh the data is, and where alerts will appear."""
from __future__ import annotations

from collections.abc import Callable

import flet as ft

from app.state import Mamori
from geo.models import LatLon
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
    if not banners:
        controls.append(notice(_no_alert_text(app), ft.Icons.NOTIFICATIONS_NONE, key="alert-area"))
    controls += _nearest(app, navigate)
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


def _nearest(app: Mamori, navigate: Callable[[str], None]) -> list[ft.Control]:
    t = app.t
    hazard = app.prefs.hazard
    title = ft.Text(
        t("home.nearest.title", hazard=t(f"hazard.{hazard.value}")), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD
    )
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
            subtitle=ft.Text(format_distance(app, h.distance_m)),
            leading=ft.Icon(ft.Icons.DIRECTIONS_WALK),
            on_click=lambda e, s=h.shelter: navigate(f"/shelters/{s.kind.value}/{s.id}"),
        )
        for h in hits
    ]
