"""The JSON shapes of check-in between desks and the platform (cityos ``/cityos/v1/checkin``).

Shared by the app's client and the platform so both read and write the same fields. Keys
travel as unpadded base64url of their raw 32 bytes, key ids as hex. A desk event carries only
the pseudonymous household ref, its size, the shelter, the time and whether the household stays
in a car (車中泊, ``inCar``, sent only when true): the card stays on the desk.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from protocol.checkin._survey import SurveyResponse

STAFF_ROLE = "shelter_staff"  # the platform role that may run a desk
ACTIONS = ("check_in", "check_out")
MAX_HOUSEHOLD = 100
_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # idempotency keys and shelter ids (GSI 共通ID)
_REF = re.compile(r"^[0-9a-f]{8,64}$")  # hex of the card id
_CODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True, slots=True)
class RemoteEvent:
    """A check-in/out recorded elsewhere (another desk, a resident's self check-in), from sync."""

    idempotency_key: str
    action: str  # 'check_in' | 'check_out'
    ref: str
    household_size: int
    shelter_id: str
    municipality_code: str
    at: str  # ISO 8601 UTC
    in_car: bool = False  # the household stays in a car (車中泊), from its card


class OwnEvent(Protocol):
    """A resident's self check-in as the app stores it: an event plus the poster that proves it."""

    @property
    def idempotency_key(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def ref(self) -> str: ...
    @property
    def household_size(self) -> int: ...
    @property
    def shelter_id(self) -> str: ...
    @property
    def municipality_code(self) -> str: ...
    @property
    def at(self) -> str: ...
    @property
    def in_car(self) -> bool: ...
    @property
    def poster(self) -> str | None: ...


def iso_utc(ts: float) -> str:
    """The desks' time form: UTC, milliseconds, ``+00:00``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class WireError(ValueError):
    """A field that does not have the agreed shape; the message names it."""


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def unb64u(text: Any, size: int = 32) -> bytes:
    """Raw key bytes from base64url (padding optional); exactly ``size`` bytes or WireError."""
    if not isinstance(text, str) or len(text) > 4 * size:
        raise WireError("key must be a base64url string")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise WireError("key is not valid base64url") from None
    if len(raw) != size:
        raise WireError(f"key must be {size} raw bytes, got {len(raw)}")
    return raw


def valid_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise WireError(f"{name} must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    return value


def normal_time(value: Any) -> str:
    """ISO 8601 with a time zone, rewritten in the desks' own UTC form so times compare as text."""
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise WireError("at must be an ISO 8601 time with a zone")
    return iso_utc(when.astimezone(UTC).timestamp())


def event_to_json(event: OwnEvent | RemoteEvent) -> dict[str, Any]:
    body = {"id": event.idempotency_key, "action": event.action, "ref": event.ref,
            "householdSize": event.household_size, "shelterId": event.shelter_id,
            "municipalityCode": event.municipality_code, "at": event.at}
    if event.in_car:
        body["inCar"] = True
    return body


def own_event_to_json(event: OwnEvent) -> dict[str, Any]:
    """A resident's self check-in: the event and the entrance poster that proves it."""
    return {**event_to_json(event), "poster": event.poster}


def survey_to_json(response: SurveyResponse) -> dict[str, Any]:
    return {"id": response.idempotency_key, "shelterId": response.shelter_id, "language": response.language,
            "answers": response.answers, "answeredAt": response.answered_at}


def event_from_json(body: Any) -> RemoteEvent:
    """One event, checked field by field; WireError names the first wrong one."""
    if not isinstance(body, dict):
        raise WireError("an event must be a JSON object")
    size = body.get("householdSize")
    if body.get("action") not in ACTIONS:
        raise WireError("action must be check_in or check_out")
    if not isinstance(body.get("ref"), str) or not _REF.match(body["ref"]):
        raise WireError("ref must be the household's hex reference")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_HOUSEHOLD:
        raise WireError(f"householdSize must be 1..{MAX_HOUSEHOLD}")
    if not isinstance(body.get("municipalityCode"), str) or not _CODE.match(body["municipalityCode"]):
        raise WireError("municipalityCode must be 6 digits")
    if not isinstance(body.get("inCar", False), bool):
        raise WireError("inCar must be true or false")
    return RemoteEvent(valid_id(body.get("id"), "id"), body["action"], body["ref"], size,
                       valid_id(body.get("shelterId"), "shelterId"), body["municipalityCode"],
                       normal_time(body.get("at")), body.get("inCar", False))

