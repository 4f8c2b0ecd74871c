"""Every string exists in ja, en and やさしい日本語, with the same placeholders."""
from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from app.i18n import LANGUAGES, Translator, messages

ROOT = Path(__file__).resolve().parent.parent


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_in_every_language():
    keys = {lang: set(messages(lang)) for lang in LANGUAGES}
    for lang in LANGUAGES:
        assert keys[lang] == keys["ja"], f"{lang}: missing {sorted(keys['ja'] - keys[lang])}, extra {sorted(keys[lang] - keys['ja'])}"


def test_no_empty_strings_and_same_placeholders():
    for key, ja in messages("ja").items():
        for lang in LANGUAGES:
            text = messages(lang)[key]
            assert text.strip(), f"{lang}:{key} is empty"
            assert placeholders(text) == placeholders(ja), f"{lang}:{key} placeholders differ from ja"


def test_every_literal_key_used_in_views_exists():
    used = set()
    for path in (ROOT / "views").glob("*.py"):
        used |= set(re.findall(r"\bt\(\"([a-z_]+(?:\.[a-z_]+)+)\"", path.read_text(encoding="utf-8")))
    assert used, "no keys found: the pattern is wrong"
    assert used - set(messages("ja")) == set()


def test_translator_formats_and_rejects_unknown_language():
    assert Translator("en")("shelters.count", n=3) == "3 found"
    assert Translator("ja")("shelters.count", n=3) == "3件"
    with pytest.raises(ValueError):
        Translator("fr")
