"""The entrance poster (/checkin/desk/poster): the signed QR that residents scan to check
themselves in and out. Staff show it on a screen or print it and put it up at the entrance."""
from __future__ import annotations

import io
from datetime import UTC, datetime

import flet as ft
import segno

from app.checkin import CheckinError, ShelterPoster, StoredKeyDirectory, verify_poster
from app.platform import PlatformError
from app.state import Mamori
from geo.models import Shelter
from views.features.checkin_form import problem
from views.features.checkin_state import CheckinScreen
from views.widgets import clock, notice

POSTER_SIDE_PX = 360


def screen(app: Mamori, shell, state: CheckinScreen, shelter: Shelter) -> list[ft.Control]:
    t = app.t
    try:
        text = _token(app, state, shelter)
    except (CheckinError, PlatformError) as exc:
        return [problem(t("checkin.poster.failed", error=str(exc)))]
    poster = verify_poster(text, StoredKeyDirectory(app.db), datetime.now().timestamp())
    qr = segno.make_qr(text, error="m")
    side = qr.symbol_size(border=4)[0]
    scale = max(2, POSTER_SIDE_PX // side)
    picture = io.BytesIO()
    qr.save(picture, kind="png", scale=scale, border=4)
    return [
        ft.Text(t("checkin.poster.heading"), theme_style=ft.TextThemeStyle.HEADLINE_SMALL, weight=ft.FontWeight.BOLD),
        ft.Text(poster.shelter_name, theme_style=ft.TextThemeStyle.TITLE_LARGE, weight=ft.FontWeight.BOLD),
        ft.Row([ft.Image(src=picture.getvalue(), width=side * scale, height=side * scale,
                         filter_quality=ft.FilterQuality.NONE, semantics_label=t("checkin.poster.image"))],
               alignment=ft.MainAxisAlignment.CENTER),
        ft.Text(t("checkin.poster.how")),
        ft.Text(_validity(app, poster)),
        notice(t("checkin.poster.staff_note"), ft.Icons.PRINT),
    ]


def _token(app: Mamori, state: CheckinScreen, shelter: Shelter) -> str:
    """One poster per shelter while the screen is open; a new one would be a new print."""
    cached = state.poster
    if cached is None or cached[0] != shelter.id:
        cached = state.poster = (shelter.id, app.checkin.poster_token(shelter))
    return cached[1]


def _validity(app: Mamori, poster: ShelterPoster) -> str:
    until = clock(datetime.fromtimestamp(poster.valid_until, UTC), "%Y-%m-%d %H:%M")
    return app.t("checkin.poster.valid_until", time=until)
