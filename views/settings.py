"""Settings: language, large text, high contrast, home, data folder and region; About and credits."""
from __future__ import annotations

from collections.abc import Callable

import flet as ft

from app.i18n import LANGUAGES
from app.state import Mamori
from geo.regions import list_regions
from views.widgets import heading, helped, local_time, notice, radio, switch, text_field

LANGUAGE_NAMES = {"ja": "日本語", "en": "English", "ja-easy": "やさしい にほんご"}


def build(
    app: Mamori,
    change: Callable[..., None],
    navigate: Callable[[str], None],
    switch_region: Callable[[str], None],
    reimport: Callable[[], None],
    set_data_dir: Callable[[str], None],
) -> list[ft.Control]:
    """``change(**prefs)`` saves preferences and redraws; the other callbacks act on the app."""
    t, prefs = app.t, app.prefs
    home = prefs.home
    regions = list_regions(app.data_dir)
    return [
        heading(t("settings.title")),
        ft.Text(t("settings.language"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM),
        ft.RadioGroup(
            value=prefs.language,
            on_change=lambda e: change(language=e.control.value),
            content=ft.Column([radio(code, LANGUAGE_NAMES[code]) for code in LANGUAGES]),
        ),
        switch(t("settings.large_text"), prefs.large_text, lambda e: change(large_text=e.control.value)),
        switch(t("settings.high_contrast"), prefs.high_contrast, lambda e: change(high_contrast=e.control.value)),
        ft.Text(t("settings.home"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM),
        ft.Text(t("settings.home_set") if home else t("settings.home_unset"), key="home-status"),
        ft.Row(
            [
                ft.Button(t("settings.home_on_map"), icon=ft.Icons.MAP, on_click=lambda e: navigate("/shelters/map")),
                *([ft.Button(t("settings.home_clear"), icon=ft.Icons.DELETE_OUTLINE, on_click=lambda e: change(home=None))] if home else []),
            ],
            wrap=True,
        ),
        ft.Text(t("settings.region"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM),
        ft.RadioGroup(
            value=app.region.code,
            on_change=lambda e: switch_region(e.control.value),
            content=ft.Column([radio(r.code, t(f"region.{r.code}") if t.has(f"region.{r.code}") else r.name_en) for r in regions]),
        )
        if regions
        else notice(t("settings.no_regions")),
        ft.ExpansionTile(  # a folder path means nothing to a resident: folded, for whoever set the device up
            title=ft.Text(t("settings.advanced")),
            controls=[text_field(
                label=t("settings.data_dir"),
                **helped(t("settings.data_dir_help")),
                value=str(app.data_dir) if app.data_dir else "",
                hint_text=t("settings.data_dir_none"),
                on_submit=lambda e: set_data_dir(e.control.value),
            )],
        ),
        ft.Button(t("settings.reimport"), icon=ft.Icons.REFRESH, on_click=lambda e: reimport()),
        ft.Button(t("settings.account"), icon=ft.Icons.ACCOUNT_CIRCLE, on_click=lambda e: navigate("/settings/account")),
        ft.Button(t("settings.about"), icon=ft.Icons.INFO_OUTLINE, on_click=lambda e: navigate("/settings/about")),
    ]


# Credits as SOURCES.md requires them, per dataset the app can show.
CREDITS = (
    ("about.credit.osm", "© OpenStreetMap contributors (ODbL 1.0)"),
    ("about.credit.gsi", "出典：国土地理院 指定緊急避難場所・指定避難所データ（国土地理院コンテンツ利用規約）"),
    ("about.credit.p20", "出典：国土数値情報（避難施設データ）（国土交通省）"),
    ("about.credit.n03", "出典：国土数値情報（行政区域データ N03, 2021）（国土交通省）"),
)


def build_about(app: Mamori) -> list[ft.Control]:
    t = app.t
    controls: list[ft.Control] = [heading(t("about.title")), ft.Text(t("about.what")),
                                  ft.Text(t("about.sources"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM)]
    for key, credit in CREDITS:
        controls += [ft.Text(credit, weight=ft.FontWeight.BOLD, selectable=True), ft.Text(t(key))]
    controls.append(ft.Text(t("about.imported"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM))
    for info in app.summary().datasets:
        controls.append(ft.Text(f"{t(f'dataset.{info.dataset}')}: {info.licence}（{local_time(info.imported_at)}）", selectable=True))
    controls.append(notice(t("about.no_official_hazard"), ft.Icons.INFO_OUTLINE))
    return controls
