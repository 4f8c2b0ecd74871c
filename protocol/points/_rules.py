"""Points rules of a municipality and the arithmetic both sides share.

The platform is the authority: it computes every credit with ``credit`` below over its own
record of the day, and the app runs the same function over its local ledger only to show a
provisional figure until the platform confirms. Rules travel as JSON (``Rules.to_json`` /
``Rules.from_json``) and the app caches the last copy per municipality.

Steps are a *level*: a report carries the day's total so far, so a later, higher total earns
only the difference and the same total sent twice earns nothing. Every other activity is a
*count* (one blood-pressure log, one class attended) added to the day.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from protocol.points._errors import InvalidEntry

JST = timezone(timedelta(hours=9))  # Japan has no daylight saving: a fixed offset is exact
_CODE = re.compile(r"^\d{6}$")
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Activity(str, Enum):
    STEPS = "steps"
    BLOOD_PRESSURE = "blood_pressure"
    CHECKUP = "checkup"
    HEALTH_CLASS = "health_class"
    EVENT = "event"
    EVACUATION_DRILL = "evacuation_drill"


# Activities earned by scanning an organiser's signed event QR (one claim per event).
QR_ACTIVITIES = frozenset({Activity.HEALTH_CLASS, Activity.EVENT, Activity.EVACUATION_DRILL})


class Spend(str, Enum):
    COUPON = "coupon"
    DONATION = "donation"
    RIDE_FARE = "ride_fare"


class Credit(str, Enum):
    """Entries only the platform makes; the app learns them when it pulls the ledger."""

    DONATION_RECEIVED = "donation_received"
    EXPIRY = "expiry"


def today_jst(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(JST).date()


@dataclass(frozen=True, slots=True)
class ActivityRule:
    points: int  # points per ``unit`` of quantity
    unit: int  # steps per point step (1000), 1 for counted activities
    daily_cap: int  # most points the activity earns in one day
    max_per_day: int  # larger daily quantity is implausible: rejected, not capped


@dataclass(frozen=True, slots=True)
class Cause:
    id: str
    name_ja: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Rules:
    municipality_code: str
    version: int
    validity_days: int  # points expire this many days after the day they were earned
    activities: Mapping[Activity, ActivityRule]
    causes: tuple[Cause, ...] = ()
    coupon_ttl_days: int = 30
    max_spend: int = 10_000  # most points one coupon, donation or fare may take
    extra: Mapping[str, Any] = field(default_factory=dict)

    def rule(self, activity: Activity) -> ActivityRule | None:
        return self.activities.get(activity)

    def oldest_day(self, today: date) -> date:
        return today - timedelta(days=self.validity_days - 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "municipalityCode": self.municipality_code, "version": self.version,
            "validityDays": self.validity_days, "couponTtlDays": self.coupon_ttl_days, "maxSpend": self.max_spend,
            "activities": {a.value: {"points": r.points, "unit": r.unit, "dailyCap": r.daily_cap,
                                     "maxPerDay": r.max_per_day} for a, r in self.activities.items()},
            "causes": [{"id": c.id, "name_ja": c.name_ja, "name_en": c.name_en} for c in self.causes],
        }

    @classmethod
    def from_json(cls, data: Any) -> Rules:
        """Strict parse: anything wrong raises ``InvalidEntry`` naming the field."""
        if not isinstance(data, dict):
            raise InvalidEntry("rules: expected a JSON object")
        code = data.get("municipalityCode")
        if not isinstance(code, str) or not _CODE.match(code):
            raise InvalidEntry("rules.municipalityCode: expected a 6-digit code")
        activities: dict[Activity, ActivityRule] = {}
        raw = data.get("activities")
        if not isinstance(raw, dict):
            raise InvalidEntry("rules.activities: expected an object")
        for name, spec in raw.items():
            try:
                activity = Activity(name)
            except ValueError:
                continue  # an activity this app version does not know: ignore, do not fail
            where = f"rules.activities.{name}"
            if not isinstance(spec, dict):
                raise InvalidEntry(f"{where}: expected an object")
            activities[activity] = ActivityRule(_int(spec, "points", where, 0), _int(spec, "unit", where, 1),
                                                _int(spec, "dailyCap", where, 0), _int(spec, "maxPerDay", where, 1))
        causes = []
        for i, c in enumerate(data.get("causes") or []):
            if not (isinstance(c, dict) and isinstance(c.get("id"), str) and _ID.match(c["id"])
                    and isinstance(c.get("name_ja"), str) and isinstance(c.get("name_en"), str)):
                raise InvalidEntry(f"rules.causes[{i}]: expected id, name_ja, name_en")
            causes.append(Cause(c["id"], c["name_ja"][:80], c["name_en"][:80]))
        return cls(code, _int(data, "version", "rules", 0), _int(data, "validityDays", "rules", 1),
                   activities, tuple(causes), _int(data, "couponTtlDays", "rules", 1, 30),
                   _int(data, "maxSpend", "rules", 1, 10_000))


def _int(data: Mapping[str, Any], key: str, where: str, low: int, default: int | None = None) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 10**9:
        raise InvalidEntry(f"{where}.{key}: expected an integer ≥ {low}")
    return value


def default_rules(municipality_code: str) -> Rules:
    """What the platform serves until the city sets its own (modelled on ふくしま健民アプリ-like
    schemes: a little every day for walking, more for check-ups and classes)."""
    return Rules(municipality_code, 1, 365, {
        Activity.STEPS: ActivityRule(points=1, unit=1000, daily_cap=10, max_per_day=100_000),
        Activity.BLOOD_PRESSURE: ActivityRule(points=1, unit=1, daily_cap=2, max_per_day=6),
        Activity.CHECKUP: ActivityRule(points=100, unit=1, daily_cap=100, max_per_day=1),
        Activity.HEALTH_CLASS: ActivityRule(points=20, unit=1, daily_cap=40, max_per_day=3),
        Activity.EVENT: ActivityRule(points=10, unit=1, daily_cap=30, max_per_day=5),
        Activity.EVACUATION_DRILL: ActivityRule(points=30, unit=1, daily_cap=30, max_per_day=2),
    }, causes=(Cause("school_sports", "地域の学校スポーツ支援", "Local school sports"),
               Cause("disaster_fund", "防災・災害支援基金", "Disaster relief fund")))


@dataclass(frozen=True, slots=True)
class DayTally:
    """What an activity already earned on one day: its quantity (level or count) and points."""

    quantity: int = 0
    points: int = 0


@dataclass(frozen=True, slots=True)
class CreditResult:
    points: int  # points this report adds (0 when capped or not higher than before)
    tally: DayTally  # the day's tally after it
    reason: str | None = None  # set when rejected: a ``REJECT_KEYS`` reason


def credit(rule: ActivityRule, activity: Activity, tally: DayTally, quantity: int) -> CreditResult:
    """Points one report earns given what the day already earned. Pure; both sides call it."""
    if quantity < 0:
        return CreditResult(0, tally, "invalid")
    if activity is Activity.STEPS:
        if quantity > rule.max_per_day:
            return CreditResult(0, tally, "over_daily_limit")
        level = max(tally.quantity, quantity)
        total = min(rule.daily_cap, level // rule.unit * rule.points)
        gained = max(0, total - tally.points)
        return CreditResult(gained, DayTally(level, tally.points + gained))
    count = tally.quantity + quantity
    if count > rule.max_per_day:
        return CreditResult(0, tally, "over_daily_limit")
    gained = max(0, min(rule.daily_cap - tally.points, quantity // rule.unit * rule.points))
    return CreditResult(gained, DayTally(count, tally.points + gained))


def expired_total(entries: Iterable[tuple[date, int]], validity_days: int, today: date) -> int:
    """Points expired by ``today``: earnings spent oldest-first (FIFO), each lot lapsing
    ``validity_days`` after the day it was earned.

    ``entries``: (day, signed points) of every confirmed credit and spend, oldest first, expiry
    entries excluded (this computes them).
    """
    lots: deque[list[Any]] = deque()  # [expires_on, remaining]
    expired = 0

    def lapse(until: date) -> None:
        nonlocal expired
        while lots and lots[0][0] <= until:
            expired += lots.popleft()[1]

    for day, points in entries:
        lapse(day)
        if points > 0:
            lots.append([day + timedelta(days=validity_days), points])
            continue
        owed = -points
        while owed and lots:
            take = min(owed, lots[0][1])
            lots[0][1] -= take
            owed -= take
            if not lots[0][1]:
                lots.popleft()
    lapse(today)
    return expired
