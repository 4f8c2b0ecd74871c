"""Disaster alerts on the phone: which of the platform's ``Alert`` entities (format:
``protocol.family``) concern a place (home, current position) now, and what to show. The sync
engine already pulls ``Alert`` into its local cache (dataset ``alerts``), so alerts are kept and
shown offline; this module remembers which were notified so a resident is told once.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlite_utils

from app.i18n import Translator
from protocol.entities import iso_utc, utc
from protocol.family import Alert, InvalidAlert, Place, alert_from_entity

log = logging.getLogger(__name__)  # alert ids and counts only


def read_alerts(entities: Iterable[dict[str, Any]]) -> list[Alert]:
    """Every readable alert; unreadable ones are logged by id and skipped, never half-shown."""
    alerts = []
    for entity in entities:
        try:
            alerts.append(alert_from_entity(entity))
        except InvalidAlert as exc:
            log.warning("alert skipped: %s", exc)
    return alerts


def alerts_for(alerts: Iterable[Alert], places: Sequence[Place], now: datetime | None = None) -> list[Alert]:
    """Active alerts covering any of ``places``, most severe and newest first."""
    moment = utc(now)
    found = [a for a in alerts if a.active(moment) and any(a.covers(p) for p in places)]
    return sorted(found, key=lambda a: (-a.level, -a.issued_at.timestamp(), a.id))


class Notifier(Protocol):
    def notify(self, title: str, message: str, app_name: str, timeout: int) -> Any: ...


@dataclass(frozen=True, slots=True)
class Banner:
    """What the full-screen banner shows (the lead draws it)."""

    alert: Alert
    title: str
    body: str
    ask_for_answer: bool


class AlertDesk:
    """Which alerts concern the resident now, and which were already notified/answered."""

    def __init__(self, db: sqlite_utils.Database, t: Translator) -> None:
        self._db, self._t = db, t

    def banner(self, alert: Alert) -> Banner:
        title = self._t(alert.level_key) + ("" if not alert.is_test else f" ({self._t('family.alert.test')})")
        body = alert.headline or self._t("family.alert.hazard", hazard=self._t(f"family.hazard.{alert.hazard}")
                                         if self._t.has(f"family.hazard.{alert.hazard}") else alert.hazard)
        answered = self._seen(alert.id)[1] is not None
        return Banner(alert, title, body, ask_for_answer=not answered)

    def banners(self, alerts: Iterable[Alert], places: Sequence[Place], now: datetime | None = None) -> list[Banner]:
        return [self.banner(a) for a in alerts_for(alerts, places, now)]

    def notify_new(self, alerts: Iterable[Alert], places: Sequence[Place], notifier: Notifier | None = None,
                   now: datetime | None = None) -> list[Alert]:
        """Raise a local notification once per alert that concerns a place; return those notified."""
        fresh = [a for a in alerts_for(alerts, places, now) if self._seen(a.id)[0] is None]
        for alert in fresh:
            banner = self.banner(alert)
            _send(notifier, banner.title, banner.body)
            self._db.execute("INSERT INTO family_alert_seen (alert_id, notified_at) VALUES (?, ?) "
                             "ON CONFLICT(alert_id) DO UPDATE SET notified_at = excluded.notified_at",
                             [alert.id, iso_utc(utc(now))])
        return fresh

    def mark_answered(self, alert_id: str, now: datetime | None = None) -> None:
        self._db.execute("INSERT INTO family_alert_seen (alert_id, answered_at) VALUES (?, ?) "
                         "ON CONFLICT(alert_id) DO UPDATE SET answered_at = excluded.answered_at",
                         [alert_id, iso_utc(utc(now))])

    def _seen(self, alert_id: str) -> tuple[str | None, str | None]:
        row = self._db.execute("SELECT notified_at, answered_at FROM family_alert_seen WHERE alert_id = ?", [alert_id]).fetchone()
        return (row[0], row[1]) if row else (None, None)


def _send(notifier: Notifier | None, title: str, body: str) -> bool:
    """plyer's desktop notification by default; a phone without a notifier still shows the banner."""
    if notifier is None:
        from plyer import notification

        notifier = notification
    try:
        notifier.notify(title=title, message=body[:250], app_name="Mamori", timeout=30)
        return True
    except Exception as exc:
        log.warning("local notification not shown: %s", type(exc).__name__)
        return False
