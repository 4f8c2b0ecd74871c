"""The resident's ride book: saved on the phone first, sent when the platform can be reached."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from app.platform import PlatformError, PlatformUnavailable
from app.rides._api import RidesApi
from app.rides._model import (
    Booking,
    Place,
    Quote,
    RideError,
    RideErrorCode,
    RideRequest,
    RideStatus,
    iso,
    parse_time,
)
from offline.atrest import decrypt_at_rest, encrypt_at_rest
from offline.rides_store import RideRows, SealedBooking

Clock = Callable[[], datetime]
_ACTIVE = tuple(s.value for s in RideStatus if not s.final and s is not RideStatus.NOT_SENT)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RideBook:
    """Book, follow, cancel and rebook rides.

    Every booking is saved sealed in SQLite as NOT_SENT before anything goes over the network,
    and only a platform answer moves it on, so the app never shows a ride as confirmed that
    the platform has not confirmed. ``send_pending`` (call it when the network returns, and
    from the sync loop) sends what is waiting, oldest first, with the booking id as the
    idempotency key: a booking whose answer was lost is sent again and stays one ride.
    """

    def __init__(self, db: sqlite_utils.Database, key: bytes, api: RidesApi | None, *, clock: Clock = _utc_now,
                 points_balance: Callable[[], int] = lambda: 0) -> None:
        self._rows, self._key, self.api = RideRows(db), key, api
        self._clock, self._points = clock, points_balance

    # -- what the screens call --

    def quote(self, request: RideRequest) -> Quote:
        """Pickup ETA, arrival, fare and points usable; needs the platform (RideError OFFLINE)."""
        now = self._clock()
        request.check(now)
        if self.api is None:
            raise RideError(RideErrorCode.OFFLINE, "quotes need the platform; the booking can still be saved and sent later")
        try:
            return self.api.quote(request, now, self._points())
        except PlatformUnavailable:
            raise RideError(RideErrorCode.OFFLINE, "the platform cannot be reached; the booking can still be saved and sent later") from None

    def book(self, request: RideRequest, fare_points: int = 0) -> Booking:
        """Save the booking (NOT_SENT), then try to send it; returns what the screen should show.
        ``fare_points``: pay the fare with that many points once the ride is done (``settle_fares``)."""
        if fare_points < 0:
            raise ValueError(f"fare points must not be negative, got {fare_points}")
        booking = self._save(replace(Booking.new(request, self._clock()), fare_points=fare_points))
        return self._send(booking) or booking

    def settle_fares(self, pay: Callable[[str, int], bool]) -> int:
        """Pay with points every done ride whose fare was chosen for points and is not yet paid;
        ``pay(ride_id, points)`` must be idempotent per ride and say whether it paid. Returns
        how many were paid now (a refused one is tried again next time)."""
        paid = 0
        for row in self._rows.with_status((RideStatus.DONE.value,)):
            booking = self._open(row)
            if booking.fare_points and not booking.fare_points_paid and pay(booking.id, booking.fare_points):
                self._save(replace(booking, fare_points_paid=True))
                paid += 1
        return paid

    def unsent_count(self) -> int:
        return len(self._rows.unsent())

    def active_count(self) -> int:
        """Sent bookings the platform has not finished (the sync polls sooner while there are)."""
        return len(self._rows.with_status(_ACTIVE))

    def send_pending(self) -> int:
        """Send every waiting booking and cancel; returns how many reached the platform."""
        reached = 0
        for row in self._rows.unsent():
            booking = self._open(row)
            try:
                after = self._send_cancel(booking) if booking.cancel_pending else self._send(booking)
            except RideError:
                after = booking  # a cancel refused (on board already): the refresh inside told the truth
            if after is None:
                break  # the platform went away again: keep the rest for later
            reached += 1
        return reached

    def refresh(self) -> list[Booking]:
        """Poll the platform for every sent, unfinished booking; returns them updated."""
        out = []
        for row in self._rows.with_status(_ACTIVE):
            booking = self._open(row)
            if self.api is not None:
                try:
                    booking = self._merge(booking, self.api.ride(booking.id))
                except RideError as exc:
                    if exc.code is RideErrorCode.UNKNOWN_RIDE:
                        booking = self._save(booking.rejected(exc.code, self._clock()))
                except PlatformError:
                    pass  # offline: the last known status stays, with its time
            out.append(booking)
        return out

    def cancel(self, booking_id: str) -> Booking:
        """Cancel; offline the cancel waits (``cancel_pending``) and the ride is not shown as
        cancelled until the platform agrees. RideError NOT_CANCELLABLE once on board or done."""
        booking = self.get(booking_id)
        if booking.status.final:
            raise RideError(RideErrorCode.NOT_CANCELLABLE, f"the ride is already {booking.status.value}")
        now = self._clock()
        if booking.status is RideStatus.NOT_SENT and not booking.extra.get("tried"):
            return self._save(replace(booking, status=RideStatus.CANCELLED, reason_key="rides.reason.cancelled_by_you", updated_at=now))
        pending = self._save(replace(booking, cancel_pending=True, updated_at=now))
        return self._send_cancel(pending) or pending

    def get(self, booking_id: str) -> Booking:
        row = self._rows.get(booking_id)
        if row is None:
            raise RideError(RideErrorCode.UNKNOWN_RIDE, "no such booking on this phone")
        return self._open(row)

    def history(self, limit: int = 50) -> list[Booking]:
        """Newest first, every status (also cancelled and rejected)."""
        return [self._open(row) for row in self._rows.newest(limit)]

    def rebook(self, booking_id: str, when: datetime | None = None) -> Booking:
        """One tap: the same places and party as a past booking, now (or at ``when``)."""
        old = self.get(booking_id).request
        return self.book(replace(old, earliest=when, latest=None))

    # -- sending --

    def _send(self, booking: Booking) -> Booking | None:
        """The booking after the platform's answer; None when the platform could not be reached."""
        if self.api is None:
            return None
        booking = self._save(replace(booking, extra={**booking.extra, "tried": True}))
        try:
            return self._merge(booking, self.api.book(booking))
        except RideError as exc:
            return self._save(booking.rejected(exc.code, self._clock()))
        except PlatformError as exc:
            if exc.retryable:
                return None
            return self._save(booking.rejected(RideErrorCode.PLATFORM, self._clock()))

    def _send_cancel(self, booking: Booking) -> Booking | None:
        """As ``_send``; a booking sent before but never answered is cancelled too (the platform
        may have it), and UNKNOWN_RIDE then means it never arrived."""
        if self.api is None:
            return None
        try:
            return self._merge(replace(booking, cancel_pending=False), self.api.cancel(booking.id))
        except RideError as exc:
            if exc.code is RideErrorCode.UNKNOWN_RIDE and booking.status is RideStatus.NOT_SENT:
                # the earlier send never arrived: cancelling on the phone is the whole story
                return self._save(replace(booking, status=RideStatus.CANCELLED, cancel_pending=False,
                                          reason_key="rides.reason.cancelled_by_you", updated_at=self._clock()))
            self._save(replace(booking, cancel_pending=False))
            if exc.code is RideErrorCode.NOT_CANCELLABLE:
                self.refresh()
            raise
        except PlatformError as exc:
            if exc.retryable:
                return None
            raise

    def _merge(self, booking: Booking, answer: dict[str, Any]) -> Booking:
        return self._save(booking.with_platform(answer, self._clock()))

    # -- sealing --

    def _save(self, booking: Booking) -> Booking:
        unsent = booking.status is RideStatus.NOT_SENT or booking.cancel_pending
        sealed = encrypt_at_rest(self._key, json.dumps(_to_json(booking), ensure_ascii=False).encode(), _aad(booking.id))
        self._rows.put(SealedBooking(booking.id, booking.status.value, unsent, iso(booking.created_at), iso(booking.updated_at), sealed))
        return booking

    def _open(self, row: SealedBooking) -> Booking:
        return _from_json(json.loads(decrypt_at_rest(self._key, row.sealed, _aad(row.id))))


def _aad(booking_id: str) -> bytes:
    return f"rides_booking:{booking_id}".encode()


def _to_json(b: Booking) -> dict[str, Any]:
    def when(moment: datetime | None) -> str | None:
        return iso(moment) if moment else None

    return {
        "id": b.id, "request": b.request.wire(b.created_at), "status": b.status.value,
        "created_at": iso(b.created_at), "updated_at": iso(b.updated_at), "reason_key": b.reason_key,
        "vehicle_id": b.vehicle_id, "pickup_eta": when(b.pickup_eta), "arrival": when(b.arrival),
        "fare_yen": b.fare_yen, "simulated": b.simulated, "version": b.version, "cancel_pending": b.cancel_pending,
        "dropoff": b.dropoff.wire() if b.dropoff else None, "extra": b.extra,
        "fare_points": b.fare_points, "fare_points_paid": b.fare_points_paid,
    }


def _from_json(d: dict[str, Any]) -> Booking:
    return Booking(
        id=d["id"],
        request=RideRequest.from_wire(d["request"]),
        status=RideStatus(d["status"]),
        created_at=parse_time(d["created_at"]) or _EPOCH,
        updated_at=parse_time(d["updated_at"]) or _EPOCH,
        reason_key=d["reason_key"],
        vehicle_id=d["vehicle_id"],
        pickup_eta=parse_time(d["pickup_eta"]),
        arrival=parse_time(d["arrival"]),
        fare_yen=d["fare_yen"],
        simulated=d["simulated"],
        version=d["version"],
        cancel_pending=d["cancel_pending"],
        dropoff=Place.from_wire(d["dropoff"]) if d["dropoff"] else None,
        extra=d["extra"],
        fare_points=d.get("fare_points", 0),  # bookings saved before fares could be paid with points
        fare_points_paid=d.get("fare_points_paid", False),
    )
