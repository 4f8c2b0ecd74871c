"""Translations: one JSON file per language in assets/i18n, nothing hard-coded in views.

Languages: ``ja`` (default), ``en`` and ``ja-easy`` (やさしい日本語: short sentences,
furigana-free common words, for residents still learning Japanese and for children).
A feature may ship its strings as a fragment ``<feature>.<lang>.json``; fragments are merged.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = ("ja", "en", "ja-easy")
DEFAULT_LANGUAGE = "ja"
I18N_DIR = Path(__file__).resolve().parent.parent / "assets" / "i18n"


@cache
def messages(lang: str) -> dict[str, str]:
    """All strings of ``lang``: ``<lang>.json`` plus every ``*.<lang>.json`` fragment."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    merged: dict[str, str] = {}
    for path in [I18N_DIR / f"{lang}.json", *sorted(I18N_DIR.glob(f"*.{lang}.json"))]:
        with path.open(encoding="utf-8") as fh:
            merged.update(json.load(fh))
    return merged


class Translator:
    """``t("shelter.count", n=3)`` → the string for the current language, formatted."""

    def __init__(self, lang: str = DEFAULT_LANGUAGE):
        self.lang = lang
        self._messages = messages(lang)

    def has(self, key: str) -> bool:
        return key in self._messages

    def __call__(self, key: str, **values: object) -> str:
        # A missing key falls back to Japanese rather than showing nothing; the
        # completeness test keeps this from happening in a release.
        text = self._messages.get(key) or messages(DEFAULT_LANGUAGE).get(key, key)
        return text.format(**values) if values else text
