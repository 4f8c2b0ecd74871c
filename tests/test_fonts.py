"""The bundled fonts draw every character the app can show offline: every i18n string, every
string of the region data (shelter names, addresses, street names) and common symbols."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parent.parent
FONTS = ROOT / "assets" / "fonts"


@pytest.fixture(scope="module")
def make_font():
    spec = importlib.util.spec_from_file_location("make_font", ROOT / "scripts" / "make_font.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def covered() -> set[int]:
    return set(TTFont(FONTS / "NotoSansJP-Mamori.ttf").getBestCmap()) | set(TTFont(FONTS / "NotoSansDevanagari-Mamori.ttf").getBestCmap())


def missing(covered: set[int], codepoints: set[int]) -> str:
    return "".join(sorted(chr(c) for c in codepoints - covered))


def test_every_i18n_character_has_a_glyph(make_font, covered):
    assert missing(covered, make_font.text_characters(make_font.i18n_texts())) == ""


def test_every_region_data_character_has_a_glyph(make_font, covered, data_dir):
    texts = list(make_font.region_texts(data_dir))
    assert any("鵜の島ふれあいセンター" in t for t in texts)  # the shelter names are read
    assert missing(covered, make_font.text_characters(texts)) == ""


def test_common_symbols_and_language_names_have_glyphs(make_font, covered):
    assert missing(covered, make_font.text_characters([make_font.COMMON_SYMBOLS, "〜～①⑳–", "한국어 Tiếng Việt नेपाली"])) == ""


def test_theme_falls_back_to_the_devanagari_font():
    from app.preferences import Preferences
    from views.theme import FONTS as THEME_FONTS
    from views.theme import make_theme

    theme = make_theme(Preferences())
    fallback = theme.text_theme.body_large.font_family_fallback
    assert fallback and all((ROOT / "assets" / THEME_FONTS[name]).exists() for name in [theme.font_family, *fallback])
