"""The resident's own settings, kept in the local store (table ``setting``).

The home location is personal data: it is stored sealed with the device's at-rest key
(``offline.atrest``), never as readable coordinates. The other settings are not personal.
"""
from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlite_utils

from app.i18n import DEFAULT_LANGUAGE, LANGUAGES
from geo.models import LatLon
from offline.atrest import AtRestKeyError, decrypt_at_rest, encrypt_at_rest
from protocol.hazards import HazardType


@dataclass(frozen=True, slots=True)
class Preferences:
    language: str = DEFAULT_LANGUAGE
    large_text: bool = False
    high_contrast: bool = False
    home: LatLon | None = None
    hazard: HazardType = HazardType.TSUNAMI
    region: str | None = None  # the region last chosen in Settings
    data_dir: str | None = None  # the data folder last chosen in Settings

    def with_(self, **changes: Any) -> Preferences:
        return replace(self, **changes)


_KEY, _HOME = "preferences", "home"
_HOME_AAD = b"setting:home"


def _setting(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM setting WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def load_preferences(db: sqlite_utils.Database, key: bytes | None = None) -> Preferences:
    """Settings as saved; without the at-rest ``key`` the home location stays unknown."""
    raw = _setting(db, _KEY)
    data = json.loads(raw) if raw else {}
    language = data.get("language", DEFAULT_LANGUAGE)
    return Preferences(
        language=language if language in LANGUAGES else DEFAULT_LANGUAGE,
        large_text=bool(data.get("large_text")),
        high_contrast=bool(data.get("high_contrast")),
        home=_load_home(db, key),
        hazard=HazardType(data.get("hazard", HazardType.TSUNAMI.value)),
        region=data.get("region"),
        data_dir=data.get("data_dir"),
    )


def _load_home(db: sqlite_utils.Database, key: bytes | None) -> LatLon | None:
    sealed = _setting(db, _HOME)
    if not sealed or key is None:
        return None
    try:
        return LatLon(**json.loads(decrypt_at_rest(key, base64.b64decode(sealed), _HOME_AAD)))
    except AtRestKeyError:
        return None  # the key file was lost or replaced: home must be set again, nothing else breaks


def save_preferences(db: sqlite_utils.Database, prefs: Preferences, key: bytes) -> None:
    data = asdict(prefs)
    data["hazard"] = prefs.hazard.value
    home = data.pop("home")
    with db.atomic():
        db.table("setting").upsert({"key": _KEY, "value": json.dumps(data, ensure_ascii=False)}, pk="key")
        if home is None:
            db.execute("DELETE FROM setting WHERE key = ?", [_HOME])
        else:
            sealed = encrypt_at_rest(key, json.dumps(home).encode(), _HOME_AAD)
            db.table("setting").upsert({"key": _HOME, "value": base64.b64encode(sealed).decode()}, pk="key")
