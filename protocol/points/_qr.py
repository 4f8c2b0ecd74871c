"""The two signed QR codes of health points (format: ``protocol.signing``).

* Event QR ("MPE1:"), shown by the organiser of a health class, event or evacuation drill:
  [event id, municipality code, activity, title, valid_from, valid_until], signed by the
  platform for the organiser. Scanning it earns the activity once per resident.
* Coupon QR ("MPC1:"), shown by a resident at a partner shop: [coupon id, municipality code,
  points, issued_at, expires_at], signed by the platform when it took the points off the
  balance. The shop checks the signature offline; single use is enforced when it redeems.

Both are verified against the platform's public keys, found through a ``Lookup`` (the app caches them).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from protocol.points._errors import (
    BadSignature,
    Expired,
    MalformedQr,
    NotAPointsQr,
    NotYetValid,
    UnknownSigner,
)
from protocol.points._rules import QR_ACTIVITIES, Activity
from protocol.signing import (
    Forged,
    Malformed,
    SignedQrError,
    UnknownKey,
    WrongKind,
    open_signed,
    sign_qr,
)

EVENT_PREFIX = "MPE1:"
COUPON_PREFIX = "MPC1:"
EVENT_SIGNER = "event"  # purposes of trusted keys
COUPON_SIGNER = "coupon"
CLOCK_SKEW_S = 300
_VERSION = 1
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_CODE = re.compile(r"^\d{6}$")

Lookup = Callable[[bytes], Ed25519PublicKey | None]


@dataclass(frozen=True, slots=True)
class EventQr:
    event_id: str
    municipality_code: str
    activity: Activity
    title: str
    valid_from: int
    valid_until: int


@dataclass(frozen=True, slots=True)
class Coupon:
    coupon_id: str
    municipality_code: str
    points: int
    issued_at: int
    expires_at: int


def make_event_qr(key: Ed25519PrivateKey, event: EventQr) -> str:
    if event.activity not in QR_ACTIVITIES:
        raise ValueError(f"{event.activity.value} is not earned by an event QR")
    return sign_qr(EVENT_PREFIX, _VERSION, [event.event_id, event.municipality_code, event.activity.value,
                                            event.title, event.valid_from, event.valid_until], key)


def make_coupon_qr(key: Ed25519PrivateKey, coupon: Coupon) -> str:
    return sign_qr(COUPON_PREFIX, _VERSION, [coupon.coupon_id, coupon.municipality_code, coupon.points,
                                             coupon.issued_at, coupon.expires_at], key)


def _open(text: str, prefix: str, types: tuple[type, ...], lookup: Lookup, kind: str) -> list:
    try:
        return open_signed(text, prefix, _VERSION, types, lookup).fields
    except WrongKind:
        other = COUPON_PREFIX if prefix == EVENT_PREFIX else EVENT_PREFIX
        hint = " (it is a coupon)" if isinstance(text, str) and text.startswith(COUPON_PREFIX) else ""
        hint = " (it is an event QR)" if isinstance(text, str) and text.startswith(other) and not hint else hint
        raise NotAPointsQr(f"this QR is not a points {kind}{hint}") from None
    except Malformed as err:
        raise MalformedQr(f"{kind} QR: {err}") from None
    except UnknownKey:
        raise UnknownSigner(f"this {kind} QR is not signed by the city platform (or its key is not synced yet)") from None
    except Forged:
        raise BadSignature(f"{kind} QR signature does not match: forged or altered") from None
    except SignedQrError as err:  # any further check of the shared codec
        raise MalformedQr(f"{kind} QR: {err}") from None


def _window(valid_from: int, valid_until: int, now: float, kind: str) -> None:
    if now < valid_from - CLOCK_SKEW_S:
        raise NotYetValid(f"this {kind} is not valid yet")
    if now > valid_until + CLOCK_SKEW_S:
        raise Expired(f"this {kind} has expired")


def verify_event_qr(text: str, lookup: Lookup, now: float | None) -> EventQr:
    """Signature, fields and (unless ``now`` is None) the validity window at ``now``."""
    event_id, code, activity, title, valid_from, valid_until = _open(
        text, EVENT_PREFIX, (str, str, str, str, int, int), lookup, "event")
    if not _ID.match(event_id) or not _CODE.match(code) or valid_until < valid_from:
        raise MalformedQr("event QR names no valid event id, municipality code or time window")
    try:
        kind = Activity(activity)
    except ValueError:
        raise MalformedQr(f"event QR names an unknown activity {activity[:30]!r}") from None
    if kind not in QR_ACTIVITIES:
        raise MalformedQr(f"{kind.value} is not earned by an event QR")
    if now is not None:
        _window(valid_from, valid_until, now, "event QR")
    return EventQr(event_id, code, kind, title[:120], valid_from, valid_until)


def verify_coupon_qr(text: str, lookup: Lookup, now: float) -> Coupon:
    """Signature and validity only: whether it was already used, only the platform knows."""
    coupon_id, code, points, issued_at, expires_at = _open(
        text, COUPON_PREFIX, (str, str, int, int, int), lookup, "coupon")
    if not _ID.match(coupon_id) or not _CODE.match(code) or points < 1 or expires_at < issued_at:
        raise MalformedQr("coupon QR names no valid coupon id, municipality code or amount")
    _window(issued_at, expires_at, now, "coupon")
    return Coupon(coupon_id, code, points, issued_at, expires_at)
