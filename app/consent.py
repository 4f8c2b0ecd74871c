"""Opt-in consent per data category (オプトイン), kept locally with its history.

Each category has one purpose and one recipient, named by short ids the platform's consent
registry understands; the UI shows them through message keys
(``consent.<category>.title|purpose|recipient``, in ``assets/i18n/consent.<lang>.json``).
Granting or revoking records the choice and its history locally and queues the change for
the platform in the outbox, so it works offline and reaches the platform before (grant) or
instead of (revoke) the data it governs. Revoking also drops every queued write of the
category; the platform deletes what it already holds when it receives the revocation.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

import sqlite_utils

from geo.sql import utc_now
from offline.outbox import Outbox


class DataCategory(str, Enum):
    LOCATION = "location"
    SAFETY_STATUS = "safety_status"
    EVACUEE_CARD = "evacuee_card"
    HEALTH_ACTIVITY = "health_activity"
    CARE_INFORMATION = "care_information"
    RIDE_HISTORY = "ride_history"


@dataclass(frozen=True, slots=True)
class Use:
    """What a category's data is for and who receives it (platform registry ids)."""

    purpose: str
    recipient: str


# One use per category, matching the ids of the cityos consent registry (docs/cityos.md).
USES: dict[DataCategory, Use] = {
    DataCategory.LOCATION: Use("disaster_response", "city"),
    DataCategory.SAFETY_STATUS: Use("disaster_response", "city"),
    DataCategory.EVACUEE_CARD: Use("disaster_response", "city"),
    DataCategory.HEALTH_ACTIVITY: Use("health_promotion", "city"),
    DataCategory.CARE_INFORMATION: Use("care", "city"),
    DataCategory.RIDE_HISTORY: Use("transport", "transport_operator"),
}


@dataclass(frozen=True, slots=True)
class ConsentChoice:
    """One row of the consent screen."""

    category: DataCategory
    granted: bool
    changed_at: str | None
    use: Use

    @property
    def title_key(self) -> str:
        return f"consent.{self.category.value}.title"

    @property
    def purpose_key(self) -> str:
        return f"consent.purpose.{self.use.purpose}"

    @property
    def recipient_key(self) -> str:
        return f"consent.recipient.{self.use.recipient}"


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    category: DataCategory
    action: str  # "grant" | "revoke"
    purpose: str
    recipient: str
    at: str


class ConsentLedger:
    """The resident's consent choices in the local store; reading needs no network."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def is_granted(self, category: str) -> bool:
        row = self._db.execute("SELECT granted FROM consent_state WHERE category = ?", [category]).fetchone()
        return bool(row and row[0])

    def choices(self) -> list[ConsentChoice]:
        state = {c: (bool(g), at) for c, g, at in self._db.execute("SELECT category, granted, changed_at FROM consent_state")}
        return [ConsentChoice(cat, *state.get(cat.value, (False, None)), USES[cat]) for cat in DataCategory]

    def history(self, category: DataCategory | None = None) -> list[ConsentEvent]:
        """Every grant and revoke, oldest first (the 同意履歴 screen)."""
        sql = "SELECT category, action, purpose, recipient, at FROM consent_event"
        rows = (self._db.execute(sql + " WHERE category = ? ORDER BY seq", [category.value]) if category
                else self._db.execute(sql + " ORDER BY seq"))
        return [ConsentEvent(DataCategory(c), a, p, r, at) for c, a, p, r, at in rows]


class Consents:
    """Granting and revoking: local ledger + outbox, in one transaction."""

    def __init__(self, db: sqlite_utils.Database, outbox: Outbox) -> None:
        self._db = db
        self._outbox = outbox
        self.ledger = ConsentLedger(db)

    def grant(self, category: DataCategory) -> bool:
        """Opt in; False when it was already granted (nothing recorded twice)."""
        return self._change(category, granted=True)

    def revoke(self, category: DataCategory) -> bool:
        """Opt out: drop the category's queued writes and ask the platform to delete its copy."""
        return self._change(category, granted=False)

    def share(self, category: DataCategory, recipient: str, granted: bool) -> None:
        """A grant/revoke to another recipient of the same use (e.g. ``family``): recorded in the
        history like any consent and queued for the platform, which enforces and deletes."""
        category, now = DataCategory(category), utc_now()
        action: Literal["grant", "revoke"] = "grant" if granted else "revoke"
        purpose = USES[category].purpose
        with self._db.atomic():
            self._db.execute("INSERT INTO consent_event (category, action, purpose, recipient, at) VALUES (?, ?, ?, ?, ?)",
                             [category.value, action, purpose, recipient, now])
            self._outbox.enqueue_consent(action, category.value, purpose, recipient, now)

    def _change(self, category: DataCategory, granted: bool) -> bool:
        category = DataCategory(category)
        use, now = USES[category], utc_now()
        action: Literal["grant", "revoke"] = "grant" if granted else "revoke"
        with self._db.atomic():
            if self.ledger.is_granted(category.value) == granted:
                return False
            self._db.execute("INSERT OR REPLACE INTO consent_state VALUES (?, ?, ?)", [category.value, int(granted), now])
            self._db.execute("INSERT INTO consent_event (category, action, purpose, recipient, at) VALUES (?, ?, ?, ?, ?)",
                             [category.value, action, use.purpose, use.recipient, now])
            if not granted:
                self._outbox.purge(category.value)
            self._outbox.enqueue_consent(action, category.value, use.purpose, use.recipient, now)
        return True
