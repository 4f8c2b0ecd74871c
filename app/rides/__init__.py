"""On-demand ride booking, resident side: offline-first, no Flet.

Usage::

    book = RideBook(db, key, RidesApi(link.http), points_balance=points.balance)
    request = RideRequest(Place(PlaceKind.HOME, 33.95, 131.25), Place(PlaceKind.HOSPITAL, 33.96, 131.27, "宇部中央病院"),
                          passengers=2, companions=1, wheelchairs=1)          # earliest=None: now
    quote = book.quote(request)        # pickup_eta, arrival, fare_yen, points_usable, simulated
    booking = book.book(request)       # saved first; status NOT_SENT until the platform answers
    booking.status.confirmed           # False until the platform has put it on a vehicle
    book.send_pending()                # when the network returns (the sync loop calls it too)
    book.refresh(); book.cancel(booking.id); book.history(); book.rebook(booking.id)

A caregiver books for someone with ``on_behalf_of=<their pseudonymous id>``. Every refusal is a
``RideError`` whose ``message_key`` is in assets/i18n/rides.*.json; a booking refused by the
platform keeps its reason in ``reason_key``. Status labels: ``booking.status_key``.
"""
from app.rides._api import RidesApi
from app.rides._book import RideBook
from app.rides._model import (
    DROPOFF_KINDS,
    MAX_PARTY,
    NOW_WINDOW,
    PICKUP_KINDS,
    Booking,
    Place,
    PlaceKind,
    Quote,
    RideError,
    RideErrorCode,
    RideRequest,
    RideStatus,
)
from app.rides._service import FEATURE, FormProblem, RideForm, RidesService, build_request, ride_book
from app.rides._service import feature as sync_feature

__all__ = [
    "DROPOFF_KINDS",
    "FEATURE",
    "MAX_PARTY",
    "NOW_WINDOW",
    "PICKUP_KINDS",
    "Booking",
    "FormProblem",
    "Place",
    "PlaceKind",
    "Quote",
    "RideBook",
    "RideError",
    "RideErrorCode",
    "RideForm",
    "RideRequest",
    "RideStatus",
    "RidesApi",
    "RidesService",
    "build_request",
    "ride_book",
    "sync_feature",
]
