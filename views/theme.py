"""Look and feel: large-text and high-contrast modes, and the colours that carry meaning."""
from __future__ import annotations

import flet as ft

from app.preferences import Preferences

LARGE_TEXT_SCALE = 1.4
# Bundled (assets/fonts): offline, Flutter cannot fetch a CJK fallback font.
FONT_FAMILY = "NotoSansJP"
FALLBACK_FONTS = ["NotoSansDevanagari"]  # glyphs Noto Sans CJK lacks (the Nepali language name)
FONTS = {FONT_FAMILY: "fonts/NotoSansJP-Mamori.ttf", "NotoSansDevanagari": "fonts/NotoSansDevanagari-Mamori.ttf"}

# Base sizes (logical pixels) of Material 3's text roles.
_ROLE_SIZES = {
    "display_large": 57, "display_medium": 45, "display_small": 36,
    "headline_large": 32, "headline_medium": 28, "headline_small": 24,
    "title_large": 22, "title_medium": 16, "title_small": 14,
    "body_large": 16, "body_medium": 14, "body_small": 12,
    "label_large": 14, "label_medium": 12, "label_small": 11,
}  # fmt: skip


def text_scale(prefs: Preferences) -> float:
    return LARGE_TEXT_SCALE if prefs.large_text else 1.0


def make_theme(prefs: Preferences) -> ft.Theme:
    scale = text_scale(prefs)
    text_theme = ft.TextTheme(
        **{role: ft.TextStyle(size=round(size * scale), font_family=FONT_FAMILY, font_family_fallback=FALLBACK_FONTS)
           for role, size in _ROLE_SIZES.items()}
    )
    # Tab labels keep one size in large text (the icons carry them; six labels share 390 px), so
    # none wraps or clips: every label is at most 5 full-width characters.
    nav = ft.NavigationBarTheme(label_text_style=ft.TextStyle(size=12, font_family=FONT_FAMILY, font_family_fallback=FALLBACK_FONTS))
    if prefs.high_contrast:
        scheme = ft.ColorScheme(
            primary="#000000", on_primary="#FFFFFF", secondary="#000000", on_secondary="#FFFFFF",
            surface="#FFFFFF", on_surface="#000000", error="#B00000", on_error="#FFFFFF",
            primary_container="#FFE600", on_primary_container="#000000",
            secondary_container="#FFE600", on_secondary_container="#000000",
            outline="#000000",
        )  # fmt: skip
        return ft.Theme(color_scheme=scheme, text_theme=text_theme, primary_text_theme=text_theme, font_family=FONT_FAMILY,
                        navigation_bar_theme=nav)
    return ft.Theme(color_scheme_seed="#0B5FA5", text_theme=text_theme, primary_text_theme=text_theme, font_family=FONT_FAMILY,
                    navigation_bar_theme=nav)


def apply_theme(page: ft.Page, prefs: Preferences) -> None:
    """The app's look on ``page``, switched at once: Flutter's animated switch to larger text once
    froze the web client, and its in-between frames draw text in Flutter's default font, for
    which the web engine fetches a CJK fallback font (offline: fails, and lays everything out again)."""
    page.theme = make_theme(prefs)
    page.theme_mode = ft.ThemeMode.LIGHT
    page.theme_animation_style = ft.AnimationStyle.no_animation()


def suitability_colour(suitable: bool | None, prefs: Preferences) -> str:
    """Green suitable, red not suitable, grey not assessed. Icons repeat the meaning for colour-blind users."""
    if prefs.high_contrast:
        return {True: "#005A00", False: "#B00000", None: "#000000"}[suitable]
    return {True: "#1B7F3B", False: "#C62828", None: "#616161"}[suitable]


def verdict_colours(verdict: str, prefs: Preferences) -> tuple[str, str, str]:
    """(background, text, border) of an answer card: "danger" (must evacuate) is always the
    strongest; "outside" (outside a hazard area, no all-clear) and "unknown" (no data) stay calm;
    unknown is grey, never the colour of safety."""
    if prefs.high_contrast:
        return {"danger": ("#B00000", "#FFFFFF", "#000000"), "outside": ("#FFFFFF", "#000000", "#000000"),
                "unknown": ("#FFFFFF", "#000000", "#000000")}[verdict]
    return {"danger": ("#FFDAD6", "#410002", "#BA1A1A"), "outside": ("#E3F0FA", "#0B2A45", "#E3F0FA"),
            "unknown": ("#EEEEEE", "#1F1F1F", "#9E9E9E")}[verdict]


def suitability_icon(suitable: bool | None) -> str:
    return {True: ft.Icons.CHECK_CIRCLE, False: ft.Icons.CANCEL, None: ft.Icons.HELP_OUTLINE}[suitable]


SHELTER_MARK = "#2E5E4E"  # a landmark on maps that are about something else (family, HQ)
ROAD_MAJOR = "#5C6B7A"
ROAD_MINOR = "#9AA7B4"
BOUNDARY = "#0B5FA5"
HOME = "#6A1B9A"
PICKED = "#E65100"
POSITION = "#0D47A1"
ROUTE = "#D81B60"
