"""What the points screens call (no Flet): the ledger over the app's store, form values as
typed, coupons, and the points feature of the app's sync engine."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

import sqlite_utils

from app.consent import ConsentLedger, DataCategory
from app.devicekeys import KeyStore
from app.points._ledger import Balance, Entry, ImportReport, PointsLedger
from app.points._sync import PointsSync
from app.points._trusted import TrustedKeys
from app.sync import Feature, SyncContext
from offline import points_store
from offline.store import own_connection
from protocol.points import COUPON_SIGNER, ConsentNeeded, Coupon, InvalidEntry, PointsError, verify_coupon_qr

if TYPE_CHECKING:
    from app.connection import PlatformLink

FEATURE = "points"  # its name in the sync engine


def consent_check(db: sqlite_utils.Database) -> Callable[[], bool]:
    return lambda: ConsentLedger(db).is_granted(DataCategory.HEALTH_ACTIVITY.value)


def ledger_over(db: sqlite_utils.Database, keys: KeyStore, municipality: str) -> PointsLedger:
    return PointsLedger(db, keys, municipality, consent_check(db))


def parse_day(text: str | None, today: date) -> date:
    """A typed day (YYYY-MM-DD or YYYY/MM/DD); empty means today."""
    if not text or not text.strip():
        return today
    try:
        return date.fromisoformat(text.strip().replace("/", "-"))
    except ValueError:
        raise InvalidEntry(f"date {text.strip()[:20]!r}: expected YYYY-MM-DD") from None


def parse_whole(text: str | None, what: str, *, optional: bool = False) -> int | None:
    """A typed whole number (thousands separators allowed); InvalidEntry names ``what``."""
    cleaned = (text or "").strip().replace(",", "").replace("，", "")
    if not cleaned and optional:
        return None
    if not cleaned.isdigit():
        raise InvalidEntry(f"{what}: expected a whole number")
    return int(cleaned)


def _amount(text: str | None, what: str) -> int:
    value = parse_whole(text, what)
    assert value is not None  # not optional
    return value


class PointsService:
    """One resident's points in one municipality; every method records locally first and kicks
    the sync engine, which sends entries to the platform when it can."""

    def __init__(self, db: sqlite_utils.Database, keys: KeyStore, municipality: str, link: PlatformLink | None) -> None:
        self.db, self.keys, self.municipality, self.link = db, keys, municipality, link
        self.ledger = ledger_over(db, keys, municipality)

    @property
    def logged_in(self) -> bool:
        return bool(self.link and self.link.logged_in)

    def balance(self) -> Balance:
        return self.ledger.balance()

    def _recorded(self, entry: Entry) -> Entry:
        if self.link:
            self.link.kick(FEATURE)
        return entry

    # -- earning -----------------------------------------------------------------------------
    def record_steps(self, steps: str, day: str = "") -> Entry:
        points = self.ledger
        return self._recorded(points.record_steps(parse_day(day, points.today()), _amount(steps, "steps")))

    def import_csv(self, text: str) -> ImportReport:
        report = self.ledger.import_steps_csv(text or "")
        if self.link:
            self.link.kick(FEATURE)
        return report

    def record_blood_pressure(self, high: str, low: str, pulse: str = "") -> Entry:
        points = self.ledger
        return self._recorded(points.record_blood_pressure(points.today(), _amount(high, "systolic"),
                                                           _amount(low, "diastolic"),
                                                           parse_whole(pulse, "pulse", optional=True)))

    def record_checkup(self, day: str = "") -> Entry:
        points = self.ledger
        return self._recorded(points.record_checkup(parse_day(day, points.today())))

    def scan_event(self, text: str) -> Entry:
        return self._recorded(self.ledger.scan_event_qr((text or "").strip()))

    # -- spending ----------------------------------------------------------------------------
    def donate(self, points_text: str, to: str, resident_code: str = "") -> int:
        """``to`` is a cause id or "resident" (then ``resident_code`` names who receives)."""
        amount = _amount(points_text, "points")
        if to == "resident":
            if not resident_code.strip():
                raise InvalidEntry("donation: the receiver's code is empty")
            self._recorded(self.ledger.donate(amount, to_resident=resident_code.strip()))
        elif to:
            self._recorded(self.ledger.donate(amount, to_cause=to))
        else:
            raise InvalidEntry("donation: choose who receives the points")
        return amount

    def coupon_amount(self, text: str) -> int:
        """The coupon's points as typed, checked before anything goes over the network."""
        if not self.logged_in:
            raise ConsentNeeded("coupons need a login (the platform keeps the balance)")
        return _amount(text, "points")

    def issue_coupon(self, amount: int) -> str:
        """Points → a signed single-use coupon QR. Network: call it off the UI thread."""
        assert self.link is not None and self.link.http is not None
        with own_connection(self.db) as db:
            sync = PointsSync(ledger_over(db, self.keys, self.municipality), self.link.http, consented=consent_check(db))
            return sync.issue_coupon(amount)

    def coupon(self, text: str) -> Coupon | None:
        """The coupon a QR text holds, when its signature checks out (else None)."""
        try:
            return verify_coupon_qr(text, TrustedKeys(self.db).lookup(COUPON_SIGNER), time.time())
        except PointsError:
            return None

    # -- what the last sync said ---------------------------------------------------------------
    def held(self) -> bool:
        """The last sync kept entries on the device (no health-activity consent on the platform yet)."""
        return points_store.get_state(self.db, "held") == "1"

    def my_code(self) -> str | None:
        """This resident's receive code (the account's subject), for donations; None logged out."""
        identity = self.link.identity if self.logged_in and self.link else None
        return identity.sub if identity else None


def pay_ride_fare(db: sqlite_utils.Database, keys: KeyStore, municipality: str, ride_id: str, points: int) -> None:
    """Spend points on a ride's fare (idempotent per ride); the rides feature calls it when done."""
    ledger_over(db, keys, municipality).pay_ride_fare(ride_id, points)


def _sync(ctx: SyncContext) -> None:
    link = ctx.link
    ledger = ledger_over(ctx.db, link.keys, link.tenant)
    report = PointsSync(ledger, link.http, consented=consent_check(ctx.db)).sync()  # type: ignore[arg-type]
    points_store.put_state(ctx.db, held="1" if report.held_on_device else "0")
    if report.error is not None and not report.held_on_device:
        raise report.error



def _pending(db: sqlite_utils.Database) -> int:
    return sum(r.origin == "device" for r in points_store.pending(db, 100_000))


def feature() -> Feature:
    """Send pending entries, apply the platform's verdicts and ledger (see ``PointsSync``)."""
    return Feature(FEATURE, _sync, pending=_pending)
