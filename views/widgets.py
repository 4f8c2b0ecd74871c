"""Small building blocks shared by the screens. Every interactive one carries a label."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import flet as ft

from app.state import Mamori
from protocol.entities import RESIDENT_TZ


def icon_action(icon: str, label: str, on_click: Callable) -> ft.Control:
    """An icon button a screen reader (and Playwright's get_by_role) can name."""
    return ft.Semantics(label=label, button=True, container=True, content=ft.IconButton(icon, on_click=on_click))


def labelled(control: ft.Radio | ft.Checkbox | ft.Switch, label: str, *, disabled: bool = False) -> ft.Control:
    """A radio, checkbox or switch in a column, whose label wraps: Flet's own label stays on one
    line, cut off at a phone's edge in large text (「あるくのに じかんが かかる（つえ な」,
    「家族・介護者として、ほかの方の代わ」, the consent 「助けて ほしい ことの 情報（じょう」). The whole
    tile toggles it, and screen readers hear one control named by the label."""
    if isinstance(control, ft.Checkbox):
        control.visual_density = ft.VisualDensity.COMPACT  # as wide as a radio: labels in one column line up
    return ft.MergeSemantics(content=ft.ListTile(
        leading=control, title=ft.Text(label), toggle_inputs=True, disabled=disabled,
        visual_density=ft.VisualDensity.COMPACT, content_padding=ft.Padding.symmetric(horizontal=4), min_leading_width=32,
    ))  # fmt: skip


def radio(value: str, label: str, *, disabled: bool = False) -> ft.Control:
    """One choice of a RadioGroup's column (see ``labelled``)."""
    return labelled(ft.Radio(value=value, disabled=disabled), label, disabled=disabled)


def checkbox(label: str, value: bool, on_change: Callable[[ft.Event], None]) -> ft.Control:
    """A checkbox in a column (see ``labelled``)."""
    return labelled(ft.Checkbox(value=value, on_change=on_change), label)


def switch(label: str, value: bool, on_change: Callable[[ft.Event], None], *, disabled: bool = False) -> ft.Control:
    """A switch in a column (see ``labelled``)."""
    return labelled(ft.Switch(value=value, on_change=on_change, disabled=disabled), label, disabled=disabled)


def text_field(**options: Any) -> ft.TextField:
    """A text field as wide as its column, like the buttons around it: Flet draws one with
    neither ``width`` nor ``expand`` 300 px wide (a quarter of a desktop window). An infinite width
    is Flutter's "fill the parent"; in a Row, where that has no end, ``expand=True`` does it."""
    if not options.get("expand"):
        options.setdefault("width", float("inf"))
    return ft.TextField(**options)


def helped(text: str) -> dict[str, Any]:
    """A TextField's keywords for what its short label leaves out: said under the field, wrapping
    (a long label wrapped inside the box and spilled over its border on a phone)."""
    return {"helper": text, "helper_max_lines": 4}


def heading(text: str) -> ft.Text:
    return ft.Text(text, theme_style=ft.TextThemeStyle.TITLE_LARGE, weight=ft.FontWeight.BOLD)


def notice(text: str, icon: str = ft.Icons.INFO_OUTLINE, *, key: str | None = None) -> ft.Control:
    """A boxed message: honest statements such as 'not built yet' or 'no alerts'."""
    return ft.Container(
        key=key,
        content=ft.Row([ft.Icon(icon), ft.Text(text, expand=True)], vertical_alignment=ft.CrossAxisAlignment.START),
        padding=12,
        border=ft.Border.all(1, ft.Colors.OUTLINE),
        border_radius=8,
    )


def clock(when: datetime, fmt: str = "%H:%M") -> str:
    """A moment as the resident reads it: in the residents' time zone (JST), whatever the server's."""
    return when.astimezone(RESIDENT_TZ).strftime(fmt)


def local_time(iso_utc: str) -> str:
    """'2026-11-22T02:10:48+00:00' → '2026-11-22 11:10' in the residents' time zone (JST)."""
    return datetime.fromisoformat(iso_utc).astimezone(RESIDENT_TZ).strftime("%Y-%m-%d %H:%M")


def age_words(app: Mamori, iso_utc: str | None) -> str:
    """How long ago, in words: today, yesterday, 3 days ago, 2 months ago."""
    if not iso_utc:
        return ""
    then = datetime.fromisoformat(iso_utc).astimezone(RESIDENT_TZ)
    days = (datetime.now(RESIDENT_TZ).date() - then.date()).days
    if days <= 0:
        return app.t("age.today")
    if days == 1:
        return app.t("age.yesterday")
    if days < 60:
        return app.t("age.days", n=days)
    if days < 730:
        return app.t("age.months", n=days // 30)
    return app.t("age.years", n=days // 365)


def format_distance(app: Mamori, metres: float | None) -> str:
    if metres is None:
        return ""
    if metres < 1000:
        return app.t("unit.m", n=round(metres))
    return app.t("unit.km", n=f"{metres / 1000:.1f}")
