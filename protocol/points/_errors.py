"""Typed health-points errors. Each carries a message ``key`` (assets/i18n/points.*.json) so a
screen shows a clear reason, and tests can tell failures apart. Messages hold no personal data.

A rejection that comes back from the platform is not an exception: the ledger stores it on the
event with the same kind of key (``REJECT_KEYS``), so history shows why.
"""
from __future__ import annotations


class PointsError(Exception):
    """Base of every error this package raises on bad input or a refused operation."""

    key = "points.error.generic"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidEntry(PointsError):
    """A value the resident typed or imported is missing, of the wrong type or out of range."""

    key = "points.error.invalid_entry"


class OverDailyLimit(PointsError):
    """More than the municipality's plausible daily maximum (e.g. 200,000 steps in a day)."""

    key = "points.error.over_daily_limit"


class TooOld(PointsError):
    """The day lies outside the validity period: it can no longer earn points."""

    key = "points.error.too_old"


class AlreadyClaimed(PointsError):
    """This event QR has already earned points on this device or account."""

    key = "points.error.already_claimed"


class NotAPointsQr(PointsError):
    """A QR was read but it is something else (a shelter poster, a web link, a coupon, ...)."""

    key = "points.error.not_points_qr"


class MalformedQr(PointsError):
    key = "points.error.malformed_qr"


class UnknownSigner(PointsError):
    """Signed by a key the app does not trust (not the platform's, or an unsynced new key)."""

    key = "points.error.unknown_signer"


class BadSignature(PointsError):
    """The signature does not match: forged or altered."""

    key = "points.error.bad_signature"


class Expired(PointsError):
    key = "points.error.expired"


class NotYetValid(PointsError):
    key = "points.error.not_yet_valid"


class WrongMunicipality(PointsError):
    key = "points.error.wrong_municipality"


class InsufficientPoints(PointsError):
    key = "points.error.insufficient"


class ConsentNeeded(PointsError):
    """Spending and confirming need the health-activity consent: points stay on the device."""

    key = "points.error.consent_needed"


class RulesMissing(PointsError):
    """The municipality's rules have not been fetched yet (first sync pending)."""

    key = "points.error.rules_missing"


class CsvImportError(PointsError):
    key = "points.error.csv"


class PlatformRefused(PointsError):
    """The platform refused a spend (coupon, redemption) for good; ``detail`` says why."""

    key = "points.error.platform_refused"


# Reasons the platform gives when it rejects an event (stored as the event's ``reason``).
REJECT_KEYS = {
    "over_daily_limit": "points.reject.over_daily_limit",
    "already_claimed": "points.reject.already_claimed",
    "bad_signature": "points.reject.bad_signature",
    "event_not_valid_that_day": "points.reject.event_not_valid_that_day",
    "wrong_municipality": "points.reject.wrong_municipality",
    "too_old": "points.reject.too_old",
    "in_future": "points.reject.in_future",
    "insufficient": "points.reject.insufficient",
    "unknown_recipient": "points.reject.unknown_recipient",
    "invalid": "points.reject.invalid",
}


def reject_key(reason: str | None) -> str:
    """Message key for a platform rejection reason; unknown reasons show a generic text."""
    return REJECT_KEYS.get(reason or "", "points.reject.other")
