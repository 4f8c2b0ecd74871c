"""The resident's points ledger on the device: append-only, offline, sealed at rest.

Every activity is written at once as a *pending* entry with a provisional figure from the
cached rules; the platform later confirms it (possibly with other points) or rejects it with
a reason, and that verdict is final. Spends (donations, ride fares) are entries with negative
points. Without the health-activity consent nothing leaves the device: entries stay pending
here and ``Balance.shared`` is False so the screen can say so.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlite_utils

from app.devicekeys import KeyStore, get_or_create
from app.points._csv import parse_steps_csv
from app.points._trusted import TrustedKeys
from geo.sql import utc_now
from offline import points_store
from offline.atrest import decrypt_at_rest, encrypt_at_rest
from protocol.points import (
    EVENT_SIGNER,
    Activity,
    AlreadyClaimed,
    ConsentNeeded,
    CsvImportError,
    DayTally,
    InsufficientPoints,
    InvalidEntry,
    OverDailyLimit,
    Rules,
    Spend,
    TooOld,
    WrongMunicipality,
    credit,
    reject_key,
    today_jst,
    verify_event_qr,
)

AT_REST_KEY = "points.at_rest"  # names in the device KeyStore
ID_KEY = "points.ids"
EARN_KINDS = (*tuple(a.value for a in Activity), "donation_received")
# What leaves the device: readings, sources and titles stay sealed here.
WIRE_FIELDS = frozenset({"kind", "day", "quantity", "qr", "toCause", "toResident", "rideId"})
MAX_STEPS_INPUT = 1_000_000  # beyond any rule: refuse as a typo before anything else


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger line for the history screen."""

    seq: int
    id: str
    kind: str
    day: date
    points: int  # signed; provisional while ``status == "pending"``
    status: str  # "pending" | "confirmed" | "rejected"
    reason_key: str | None  # message key of the platform's reason, for rejected entries
    origin: str  # "device" | "platform"
    detail: dict[str, Any]  # quantity and details (readings, event title, recipient)
    created_at: str


@dataclass(frozen=True, slots=True)
class Balance:
    confirmed: int  # what the platform has confirmed (the authority's balance once synced)
    pending_earned: int  # provisional earnings not yet confirmed
    pending_spent: int  # spends sent or queued, not yet confirmed (positive number)
    shared: bool  # health-activity consent given: pending entries will be sent for confirmation
    platform_balance: int | None  # the balance the platform reported at its last answer
    platform_checked_at: str | None

    @property
    def available(self) -> int:
        """What may still be spent: confirmed minus spends on their way."""
        return self.confirmed - self.pending_spent

    @property
    def status_key(self) -> str:
        if not self.shared:
            return "points.balance.device_only"
        return "points.balance.pending" if self.pending_earned or self.pending_spent else "points.balance.confirmed"


@dataclass(frozen=True, slots=True)
class ImportReport:
    added: int  # days whose total was new or higher
    unchanged: int  # days already recorded with this total or more
    too_old: int  # days before the validity period, skipped


@dataclass(frozen=True, slots=True)
class ChartPoint:
    start: date  # the day, or the Monday that starts the week
    steps: int
    points: int


class PointsLedger:
    """The device ledger for one resident in one municipality."""

    def __init__(self, db: sqlite_utils.Database, keys: KeyStore, municipality_code: str,
                 consented: Callable[[], bool], *, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.municipality_code = municipality_code
        self._consented = consented
        self._key = get_or_create(keys, AT_REST_KEY)
        self._id_key = get_or_create(keys, ID_KEY)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rules: Rules | None = None

    # -- rules -------------------------------------------------------------------------------
    def rules(self) -> Rules | None:
        """The municipality's rules as last fetched from the platform; None before the first sync."""
        if self._rules is None:
            cached = points_store.get_rules(self.db, self.municipality_code)
            self._rules = None if cached is None else Rules.from_json(json.loads(cached[0]))
        return self._rules

    def cache_rules(self, rules: Rules) -> None:
        if rules.municipality_code != self.municipality_code:
            raise InvalidEntry(f"rules are for {rules.municipality_code}, this ledger is for {self.municipality_code}")
        points_store.put_rules(self.db, rules.municipality_code, rules.version,
                               json.dumps(rules.to_json(), ensure_ascii=False))
        self._rules = rules

    def today(self) -> date:
        return today_jst(self._clock())

    # -- earning -----------------------------------------------------------------------------
    def record_steps(self, day: date, total: int, source: str = "manual") -> Entry:
        """The day's step total so far (pedometer, typed, or imported). A total not higher than
        one already recorded for the day adds nothing and returns the existing entry."""
        if not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= MAX_STEPS_INPUT:
            raise InvalidEntry(f"steps for {day}: expected a whole number 0..{MAX_STEPS_INPUT}")
        entry_id = self._ref("steps", day.isoformat(), str(total))
        with self.db.atomic():
            known = points_store.entry(self.db, entry_id)
            if known is not None:
                return self._entry(known)
            return self._earn(Activity.STEPS, day, total, entry_id, {"source": source})

    def import_steps_csv(self, text: str) -> ImportReport:
        """Daily steps from a health app's CSV export (see ``app.points._csv``), all or nothing.

        Days older than the validity period are skipped and counted; a future day or an
        implausible count fails the whole import with the day named.
        """
        days = parse_steps_csv(text)
        today, rules = self.today(), self.rules()
        oldest = rules.oldest_day(today) if rules else date.min
        limit = rules.rule(Activity.STEPS) if rules else None
        for day, steps in sorted(days.items()):
            if day > today:
                raise CsvImportError(f"{day}: the file has steps for a future day")
            if limit is not None and steps > limit.max_per_day and day >= oldest:
                raise OverDailyLimit(f"{day}: {steps} steps is more than the {limit.max_per_day} allowed in a day")
        added = unchanged = 0
        with self.db.atomic():
            for day, steps in sorted(days.items()):
                if day < oldest:
                    continue
                before = points_store.entry(self.db, self._ref("steps", day.isoformat(), str(steps)))
                if before is not None or steps <= self.steps_on(day):
                    unchanged += 1
                    continue
                self.record_steps(day, steps, source="csv")
                added += 1
        return ImportReport(added, unchanged, sum(1 for d in days if d < oldest))

    def record_blood_pressure(self, day: date, systolic: int, diastolic: int, pulse: int | None = None) -> Entry:
        for name, value, low, high in (("systolic", systolic, 50, 300), ("diastolic", diastolic, 20, 200),
                                       ("pulse", pulse if pulse is not None else 60, 20, 250)):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise InvalidEntry(f"blood pressure {name}: expected a whole number {low}..{high}")
        if diastolic >= systolic:
            raise InvalidEntry("blood pressure: the lower (diastolic) value must be below the upper (systolic)")
        # The readings stay on the device (sealed); the platform only learns that a log was made.
        detail = {"systolic": systolic, "diastolic": diastolic, "pulse": pulse}
        with self.db.atomic():
            return self._earn(Activity.BLOOD_PRESSURE, day, 1, self._ref("bp", uuid.uuid4().hex), detail)

    def record_checkup(self, day: date) -> Entry:
        """Health check-up attended (one a day counts)."""
        entry_id = self._ref("checkup", day.isoformat())
        with self.db.atomic():
            known = points_store.entry(self.db, entry_id)
            if known is not None:
                return self._entry(known)
            return self._earn(Activity.CHECKUP, day, 1, entry_id, {})

    def scan_event_qr(self, text: str) -> Entry:
        """The organiser's signed event QR (health class, event, evacuation drill): verified
        offline against the platform's cached key; each event earns once."""
        event = verify_event_qr(text, TrustedKeys(self.db).lookup(EVENT_SIGNER), self._clock().timestamp())
        if event.municipality_code != self.municipality_code:
            raise WrongMunicipality(f"this event is run by municipality {event.municipality_code}, "
                                    f"your points are with {self.municipality_code}")
        entry_id = self._ref("qr", event.event_id)
        with self.db.atomic():
            if points_store.entry(self.db, entry_id) is not None:
                raise AlreadyClaimed("this event QR has already earned points: each event counts once")
            return self._earn(event.activity, self.today(), 1, entry_id,
                              {"eventId": event.event_id, "qr": text, "title": event.title})

    def _earn(self, activity: Activity, day: date, quantity: int, entry_id: str, detail: dict[str, Any]) -> Entry:
        today = self.today()
        if day > today:
            raise InvalidEntry(f"{activity.value}: {day} is in the future")
        rules = self.rules()
        points = 0
        if rules is not None:
            if day < rules.oldest_day(today):
                raise TooOld(f"{activity.value}: {day} is older than the {rules.validity_days}-day validity period")
            rule = rules.rule(activity)
            if rule is None:
                raise InvalidEntry(f"{activity.value}: this municipality gives no points for it")
            result = credit(rule, activity, self._tally(activity, day), quantity)
            if result.reason == "over_daily_limit":
                raise OverDailyLimit(f"{activity.value} on {day}: more than {rule.max_per_day} in a day is refused")
            points = result.points
        payload = {"kind": activity.value, "day": day.isoformat(), "quantity": quantity, **detail}
        self._append(entry_id, activity.value, day, points, payload)
        if activity is Activity.STEPS:
            self._raise_steps_day(day, quantity)
        return self._entry(points_store.entry(self.db, entry_id))  # type: ignore[arg-type]

    def _tally(self, activity: Activity, day: date) -> DayTally:
        rows = points_store.day_entries(self.db, day.isoformat(), activity.value)
        earned = sum(r.points for r in rows)
        if activity is Activity.STEPS:
            return DayTally(self.steps_on(day), earned)
        return DayTally(len(rows), earned)

    # -- spending ------------------------------------------------------------------------------
    def donate(self, points: int, *, to_cause: str | None = None, to_resident: str | None = None) -> Entry:
        """Give points to a local cause (id from the rules) or to another resident (their points
        receive code). Queued like any entry; the platform confirms if the balance allows."""
        if (to_cause is None) == (to_resident is None):
            raise InvalidEntry("donation: name exactly one recipient, a cause or a resident")
        rules = self.rules()
        if to_cause is not None and rules is not None and to_cause not in {c.id for c in rules.causes}:
            raise InvalidEntry(f"donation: {to_cause!r} is not one of this municipality's causes")
        detail = {"toCause": to_cause} if to_cause else {"toResident": to_resident}
        return self._spend(Spend.DONATION, points, self._ref("donation", uuid.uuid4().hex), detail)

    def pay_ride_fare(self, ride_id: str, points: int) -> Entry:
        """The rides feature calls this to pay a fare with points; calling it again for the same
        ride returns the same entry (never charges twice)."""
        if not isinstance(ride_id, str) or not 1 <= len(ride_id) <= 128:
            raise InvalidEntry("ride fare: ride_id must be 1..128 characters")
        entry_id = self._ref("ride", ride_id)
        known = points_store.entry(self.db, entry_id)
        if known is not None:
            return self._entry(known)
        return self._spend(Spend.RIDE_FARE, points, entry_id, {"rideId": ride_id})

    def _spend(self, kind: Spend, points: int, entry_id: str, detail: dict[str, Any]) -> Entry:
        rules = self.rules()
        limit = rules.max_spend if rules else 10_000
        if not isinstance(points, int) or isinstance(points, bool) or not 1 <= points <= limit:
            raise InvalidEntry(f"{kind.value}: points must be a whole number 1..{limit}")
        if not self._consented():
            raise ConsentNeeded(f"{kind.value}: spending needs the health-activity consent (the platform keeps the balance)")
        with self.db.atomic():
            available = self.balance().available
            if points > available:
                raise InsufficientPoints(f"{kind.value}: {points} points asked, {available} available")
            day = self.today()
            self._append(entry_id, kind.value, day, -points,
                         {"kind": kind.value, "day": day.isoformat(), "quantity": points, **detail})
        return self._entry(points_store.entry(self.db, entry_id))  # type: ignore[arg-type]

    # -- reading -------------------------------------------------------------------------------
    def balance(self) -> Balance:
        confirmed, pending_earned, pending_spent = points_store.totals(self.db)
        reported = points_store.get_state(self.db, "platform_balance")
        return Balance(confirmed, pending_earned, -pending_spent, self._consented(),
                       int(reported) if reported is not None else None,
                       points_store.get_state(self.db, "platform_checked_at"))

    def history(self, limit: int = 50, before_seq: int | None = None) -> list[Entry]:
        return [self._entry(r) for r in points_store.entries(self.db, limit=limit, before_seq=before_seq)]

    def get(self, entry_id: str) -> Entry | None:
        row = points_store.entry(self.db, entry_id)
        return None if row is None else self._entry(row)

    def steps_on(self, day: date) -> int:
        sealed = points_store.steps_day(self.db, day.isoformat())
        return 0 if sealed is None else self._open_steps(day.isoformat(), sealed)

    def daily_chart(self, first: date, last: date) -> list[ChartPoint]:
        """Steps and points earned per day, every day in [first, last] (zeros included)."""
        steps = {d: self._open_steps(d, s) for d, s in points_store.steps_days(self.db, first.isoformat(), last.isoformat())}
        points = points_store.points_by_day(self.db, first.isoformat(), last.isoformat(), EARN_KINDS)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return [ChartPoint(d, steps.get(d.isoformat(), 0), points.get(d.isoformat(), 0)) for d in days]

    def weekly_chart(self, first: date, last: date) -> list[ChartPoint]:
        """Steps and points per ISO week (Monday start) covering [first, last]."""
        monday = first - timedelta(days=first.weekday())
        weeks: dict[date, list[int]] = {monday + timedelta(weeks=i): [0, 0]
                                        for i in range((last - monday).days // 7 + 1)}
        for point in self.daily_chart(monday, last):
            totals = weeks[point.start - timedelta(days=point.start.weekday())]
            totals[0] += point.steps
            totals[1] += point.points
        return [ChartPoint(week, s, p) for week, (s, p) in weeks.items()]

    # -- applying the platform's answers (used by PointsSync) ----------------------------------
    def pending_payloads(self, limit: int) -> list[dict[str, Any]]:
        """The oldest pending device entries as the platform's wire format (decrypted)."""
        return [{"id": r.id, **{k: v for k, v in self._open(r.id, r.sealed).items() if k in WIRE_FIELDS}}
                for r in points_store.pending(self.db, limit) if r.origin == "device"]

    def apply_platform_entries(self, items: list[dict[str, Any]]) -> int:
        """Apply a page of the platform's ledger in one transaction; return entries changed.

        A pending entry of ours takes the platform's verdict and points; an entry we do not have
        (a donation received, an expiry, a coupon, or history restored on a new phone) is added
        as the platform states it. Verdicts are final: a settled entry never changes again.
        """
        changed, new_rows = 0, []
        steps_levels: dict[str, int] = {}
        rebuild: set[date] = set()
        with self.db.atomic():
            for item in items:
                entry_id, kind, day, quantity, points, status, reason = _verdict(item)
                row = points_store.entry(self.db, entry_id)
                if row is not None:
                    if points_store.settle(self.db, entry_id, status, points, reason):
                        changed += 1
                        if status == "rejected" and row.kind == Activity.STEPS.value:
                            rebuild.add(date.fromisoformat(row.day))
                    continue
                if kind is None or day is None:
                    raise InvalidEntry(f"platform ledger entry {entry_id[:12]}…: unknown here and without kind/day")
                payload = {"kind": kind, "day": day, "quantity": quantity}
                new_rows.append({"id": entry_id, "kind": kind, "day": day, "points": points, "status": status,
                                 "reason": reason, "origin": "platform",
                                 "sealed": self._seal(entry_id, payload), "settled_at": utc_now()})
                if kind == Activity.STEPS.value and status == "confirmed":
                    steps_levels[day] = max(steps_levels.get(day, 0), quantity)
            changed += points_store.insert_entries(self.db, new_rows)
            for iso, level in steps_levels.items():
                self._raise_steps_day(date.fromisoformat(iso), level)
            for rejected_day in rebuild:
                self._rebuild_steps_day(rejected_day)
        return changed

    # -- sealing -------------------------------------------------------------------------------
    def _ref(self, *parts: str) -> str:
        return hmac.new(self._id_key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

    def _append(self, entry_id: str, kind: str, day: date, points: int, payload: dict[str, Any]) -> None:
        points_store.insert_entries(self.db, [{"id": entry_id, "kind": kind, "day": day.isoformat(), "points": points,
                                               "status": "pending", "origin": "device",
                                               "sealed": self._seal(entry_id, payload)}])

    def _seal(self, entry_id: str, payload: dict[str, Any]) -> bytes:
        return encrypt_at_rest(self._key, json.dumps(payload, ensure_ascii=False).encode(), _aad(entry_id))

    def _open(self, entry_id: str, sealed: bytes) -> dict[str, Any]:
        return json.loads(decrypt_at_rest(self._key, sealed, _aad(entry_id)))

    def _entry(self, row: points_store.EntryRow) -> Entry:
        detail = self._open(row.id, row.sealed)
        detail.pop("qr", None)  # the proof is for the platform, not the screen
        return Entry(row.seq, row.id, row.kind, date.fromisoformat(row.day), row.points, row.status,
                     reject_key(row.reason) if row.status == "rejected" else None, row.origin, detail, row.created_at)

    def _open_steps(self, day: str, sealed: bytes) -> int:
        return int(decrypt_at_rest(self._key, sealed, b"points-steps-day\0" + day.encode()))

    def _seal_steps(self, day: date, steps: int) -> None:
        iso = day.isoformat()
        points_store.put_steps_day(self.db, iso, encrypt_at_rest(self._key, str(steps).encode(),
                                                                 b"points-steps-day\0" + iso.encode()))

    def _raise_steps_day(self, day: date, total: int) -> None:
        if total > self.steps_on(day):
            self._seal_steps(day, total)

    def _rebuild_steps_day(self, day: date) -> None:
        rows = points_store.day_entries(self.db, day.isoformat(), Activity.STEPS.value)
        best = max((int(self._open(r.id, r.sealed)["quantity"]) for r in rows), default=None)
        if best is None:
            points_store.delete_steps_day(self.db, day.isoformat())
        else:
            self._seal_steps(day, best)


def _verdict(item: Any) -> tuple[str, str | None, str | None, int, int, str, str | None]:
    """(id, kind, day, quantity, points, status, reason) of one platform ledger item, checked,
    so a malformed answer fails the whole page before anything is written."""
    try:
        entry_id, status, points = item["id"], item["status"], item["points"]
        kind, day, quantity, reason = item.get("kind"), item.get("day"), item.get("quantity") or 0, item.get("reason")
        ok = (isinstance(entry_id, str) and 0 < len(entry_id) <= 64 and status in ("confirmed", "rejected")
              and isinstance(points, int) and isinstance(quantity, int) and (reason is None or isinstance(reason, str))
              and (kind is None or isinstance(kind, str)) and (day is None or date.fromisoformat(day) is not None))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidEntry("the platform's points ledger answer has a malformed entry; nothing was applied")
    return entry_id, kind, day, quantity, points, status, reason


def _aad(entry_id: str) -> bytes:
    return b"points-entry\0" + entry_id.encode()
