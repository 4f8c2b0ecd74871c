"""Resident-side ride booking with no platform: checks, the offline "not yet sent" state, the sealed store."""
from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest

from app.i18n import LANGUAGES, messages
from app.platform import PlatformHttp
from app.rides import (
    Booking,
    Place,
    PlaceKind,
    RideBook,
    RideError,
    RideErrorCode,
    RideRequest,
    RidesApi,
    RideStatus,
)
from cityos.dispatch import DispatchErrorCode
from offline.atrest import new_key
from offline.store import open_store

NOW = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
HOME = Place(PlaceKind.HOME, 33.9512, 131.2473, "自宅")
HOSPITAL = Place(PlaceKind.HOSPITAL, 33.9660, 131.2720, "病院")


def dead_api() -> RidesApi:
    """A platform address where nothing listens: connection refused, as when offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return RidesApi(PlatformHttp(f"http://127.0.0.1:{port}", timeout=2.0))


@pytest.fixture
def book(tmp_path):
    db = open_store(tmp_path / "m.sqlite")
    return RideBook(db, new_key(), dead_api(), clock=lambda: NOW)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (RideRequest(Place(PlaceKind.HOSPITAL, 33.95, 131.25), HOME), RideErrorCode.PICKUP_KIND),
        (RideRequest(HOME, Place(PlaceKind.CURRENT, 33.95, 131.25)), RideErrorCode.DROPOFF_KIND),
        (RideRequest(HOME, Place(PlaceKind.STOP, float("nan"), 131.25)), RideErrorCode.BAD_PLACE),
        (RideRequest(HOME, HOME), RideErrorCode.SAME_PLACE),
        (RideRequest(HOME, HOSPITAL, passengers=0), RideErrorCode.INVALID_PARTY),
        (RideRequest(HOME, HOSPITAL, passengers=2, companions=2), RideErrorCode.INVALID_PARTY),
        (RideRequest(HOME, HOSPITAL, passengers=2, companions=1, wheelchairs=2), RideErrorCode.INVALID_PARTY),
        (RideRequest(HOME, HOSPITAL, earliest=NOW + timedelta(hours=2), latest=NOW + timedelta(hours=1)), RideErrorCode.INVALID_TIME_WINDOW),
        (RideRequest(HOME, HOSPITAL, earliest=NOW - timedelta(hours=2), latest=NOW - timedelta(hours=1)), RideErrorCode.PAST_TIME_WINDOW),
        (RideRequest(HOME, HOSPITAL, earliest=NOW + timedelta(days=30)), RideErrorCode.TOO_FAR_AHEAD),
        (RideRequest(HOME, HOSPITAL, earliest=datetime(2026, 4, 1, 10, 0)), RideErrorCode.INVALID_TIME_WINDOW),
    ],
)
def test_bad_requests_are_refused_before_anything_is_saved(book, request_, code):
    with pytest.raises(RideError) as err:
        book.book(request_)
    assert err.value.code is code and err.value.message_key == f"rides.error.{code.value}"
    assert book.history() == []


def test_offline_booking_is_not_yet_sent_and_never_confirmed(book):
    booking = book.book(RideRequest(HOME, HOSPITAL, passengers=2, companions=1, on_behalf_of="person-7f3a"))
    assert booking.status is RideStatus.NOT_SENT and not booking.status.confirmed
    assert booking.status_key == "rides.status.not_sent"
    assert booking.request.earliest == NOW and booking.request.latest == NOW + timedelta(minutes=30)  # "now" fixed at booking
    assert book.send_pending() == 0  # still offline
    again = book.get(booking.id)
    assert again.status is RideStatus.NOT_SENT and again.request.on_behalf_of == "person-7f3a"
    with pytest.raises(RideError) as err:
        book.quote(RideRequest(HOME, HOSPITAL))
    assert err.value.code is RideErrorCode.OFFLINE


def test_cancelling_an_unanswered_booking_waits_for_the_platform(book):
    booking = book.book(RideRequest(HOME, HOSPITAL))
    cancelled = book.cancel(booking.id)
    # its send was attempted, so the platform may have it: the cancel is queued, not assumed
    assert cancelled.status is RideStatus.NOT_SENT and cancelled.cancel_pending
    offline = RideBook(book._rows.db, book._key, None, clock=lambda: NOW)
    never_sent = offline.book(RideRequest(HOME, HOSPITAL))
    assert offline.cancel(never_sent.id).status is RideStatus.CANCELLED  # never left the phone


def test_bookings_are_sealed_at_rest(book, tmp_path):
    book.book(RideRequest(HOME, HOSPITAL, on_behalf_of="person-7f3a"))
    db = book._rows.db
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = (tmp_path / "m.sqlite").read_bytes()
    for secret in (b"33.9512", b"131.2473", "自宅".encode(), b"person-7f3a"):
        assert secret not in raw
    other = RideBook(db, new_key(), None, clock=lambda: NOW)
    with pytest.raises(ValueError):
        other.history()  # a wrong key opens nothing


def test_platform_answers_only_move_the_status_forward():
    booking = Booking.new(RideRequest(HOME, HOSPITAL), NOW)
    assigned = booking.with_platform({"status": "assigned", "version": 2, "vehicleId": "v1", "pickupEta": "2026-04-01T09:10:00Z"}, NOW)
    assert assigned.status is RideStatus.ASSIGNED and assigned.status.confirmed
    assert assigned.pickup_eta == NOW + timedelta(minutes=10)
    stale = assigned.with_platform({"status": "requested", "version": 1}, NOW)
    assert stale is assigned
    on_board = assigned.with_platform({"status": "on_board", "version": 3}, NOW)
    assert on_board.with_platform({"status": "cancelled", "version": 4}, NOW) is on_board  # on board cannot be cancelled
    assert on_board.with_platform({"status": "done", "version": 5}, NOW).status is RideStatus.DONE


def test_every_status_and_error_has_a_message_in_every_language():
    keys = {s.label_key for s in RideStatus} | {c.message_key for c in RideErrorCode} | {c.message_key for c in DispatchErrorCode}
    keys |= {"rides.reason.cancelled_by_you", "rides.notice.not_sent", "rides.notice.simulated", "rides.notice.cancel_pending"}
    keys |= {f"rides.place.{k.value}" for k in PlaceKind}
    for lang in LANGUAGES:
        assert keys <= set(messages(lang)), (lang, sorted(keys - set(messages(lang))))


def test_the_app_understands_every_code_the_dispatcher_answers_with():
    assert {c.value for c in DispatchErrorCode} <= {c.value for c in RideErrorCode}
