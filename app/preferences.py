"""The resident's own settings, kept in the local store (table ``setting``)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import sqlite_utils

from app.i18n import DEFAULT_LANGUAGE, LANGUAGES
from app.models import HazardType, LatLon


@dataclass(frozen=True, slots=True)
class Preferences:
    language: str = DEFAULT_LANGUAGE
    large_text: bool = False
    high_contrast: bool = False
    home: LatLon | None = None
    hazard: HazardType = HazardType.TSUNAMI
    region: str | None = None  # the region last chosen in Settings

    def with_(self, **changes: object) -> "Preferences":
        return replace(self, **changes)


_KEY = "preferences"


def load_preferences(db: sqlite_utils.Database) -> Preferences:
    row = db.execute("SELECT value FROM setting WHERE key = ?", [_KEY]).fetchone()
    if not row:
        return Preferences()
    data = json.loads(row[0])
    home = data.get("home")
    language = data.get("language", DEFAULT_LANGUAGE)
    return Preferences(
        language=language if language in LANGUAGES else DEFAULT_LANGUAGE,
        large_text=bool(data.get("large_text")),
        high_contrast=bool(data.get("high_contrast")),
        home=LatLon(**home) if home else None,
        hazard=HazardType(data.get("hazard", HazardType.TSUNAMI.value)),
        region=data.get("region"),
    )


def save_preferences(db: sqlite_utils.Database, prefs: Preferences) -> None:
    data = asdict(prefs)
    data["hazard"] = prefs.hazard.value
    db["setting"].upsert({"key": _KEY, "value": json.dumps(data, ensure_ascii=False)}, pk="key")
