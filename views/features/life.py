"""Life: health points (/life/points...) and on-demand rides (/life/rides...).

The tab shows two large entries, each with one line saying where things stand.
"""
from __future__ import annotations

import flet as ft

from app.state import Mamori
from views.contract import Screens
from views.features import life_points, life_rides
from views.widgets import heading


def tab(app: Mamori, shell: Screens) -> list[ft.Control]:
    t = app.t
    return [
        heading(t("life.title")),
        ft.Text(t("life.purpose")),
        _entry(t("points.title"), life_points.status_line(app), ft.Icons.DIRECTIONS_WALK, lambda e: shell.navigate("/life/points")),
        _entry(t("rides.title"), life_rides.status_line(app), ft.Icons.DIRECTIONS_BUS, lambda e: shell.navigate("/life/rides")),
    ]


def _entry(title: str, status: str, icon: str, on_click) -> ft.Control:
    return ft.Card(
        ft.ListTile(
            leading=ft.Icon(icon, size=40),
            title=ft.Text(title, theme_style=ft.TextThemeStyle.TITLE_LARGE, weight=ft.FontWeight.BOLD),
            subtitle=ft.Text(status),
            trailing=ft.Icon(ft.Icons.CHEVRON_RIGHT),
            on_click=on_click,
            content_padding=ft.Padding.symmetric(horizontal=16, vertical=12),
        )
    )
