"""HTTP client of the platform's ride service (``/rides/v1``, see cityos.rides)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from app.platform import NotAuthorised, PlatformError, PlatformHttp
from app.rides._model import (
    Booking,
    Place,
    Quote,
    RideError,
    RideRequest,
    error_code,
    parse_time,
)

PREFIX = "/rides/v1"


class RidesApi:
    """One method per endpoint. Refusals with a ride error code raise RideError; no answer at
    all raises PlatformUnavailable (retry later); 401 after one token refresh raises NotAuthorised.
    ``timeout`` (seconds) bounds each ride call, shorter than the link's default: a resident waits."""

    def __init__(self, http: PlatformHttp, *, timeout: float | None = None) -> None:
        self._http = http
        self._timeout: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}

    def service(self) -> dict[str, Any]:
        """Stops, service area, fares and whether the vehicles are simulated."""
        return self._send("GET", "/service", "ride service").json()

    def quote(self, request: RideRequest, now: datetime, points_balance: int) -> Quote:
        data = self._send("POST", "/quotes", "ride quote", json=request.wire(now)).json()
        fare = int(data["fareYen"])
        return Quote(
            _time(data, "pickupEta"),
            _time(data, "arrival"),
            fare,
            max(0, min(points_balance, int(data.get("pointsUsableMax", fare)))),
            bool(data["simulated"]),
            Place.from_wire(data["dropoff"]),
            Place.from_wire(data["pickup"]) if isinstance(data.get("pickup"), dict) else None,
            parse_time(data.get("earliest")),
            parse_time(data.get("latest")),
            data.get("evacuation") is True,
        )

    def book(self, booking: Booking) -> dict[str, Any]:
        """Send a booking; the same id again returns the same ride (idempotent)."""
        body = booking.request.wire(booking.created_at)
        return self._send("POST", "/rides", "ride booking", json=body, headers={"Idempotency-Key": booking.id}).json()

    def ride(self, ride_id: str) -> dict[str, Any]:
        return self._send("GET", f"/rides/{ride_id}", "ride status").json()

    def cancel(self, ride_id: str) -> dict[str, Any]:
        return self._send("POST", f"/rides/{ride_id}/cancel", "ride cancel").json()

    def history(self) -> list[dict[str, Any]]:
        return self._send("GET", "/rides", "ride history").json()

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.call(method, PREFIX + path, what, **self._timeout, **kwargs)
        except NotAuthorised:
            raise
        except PlatformError as err:
            if err.code is not None and (err.status or 500) < 500:
                raise RideError(error_code(err.code), err.detail or "") from None
            raise


def _time(data: dict[str, Any], key: str) -> datetime:
    moment = parse_time(data.get(key))
    if moment is None:
        raise PlatformError(f"ride quote: the answer has no {key}")
    return moment
