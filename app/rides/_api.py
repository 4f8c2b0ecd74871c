"""HTTP client of the platform's ride service (``/rides/v1``, see cityos.rides)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from app.platform import Credentials, NotAuthorised, PlatformError, PlatformUnavailable
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
    all raises PlatformUnavailable (retry later); 401 after one token refresh raises NotAuthorised."""

    def __init__(self, base_url: str, *, credentials: Credentials | None = None, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._credentials = credentials
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport, headers={"Accept": "application/json"})

    def close(self) -> None:
        self._http.close()

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
        token = self._credentials.access_token() if self._credentials else None
        response = self._once(method, path, what, token, **kwargs)
        if response.status_code == 401 and self._credentials is not None:
            token = self._credentials.refresh_after_rejection()
            if token is not None:
                response = self._once(method, path, what, token, **kwargs)
        if response.status_code < 400:
            return response
        problem = _problem(response)
        if response.status_code == 401:
            raise NotAuthorised(f"{what}: log in again", status=401, detail=problem.get("detail"))
        if "code" in problem and response.status_code < 500:
            raise RideError(error_code(problem["code"]), str(problem.get("detail", "")))
        raise PlatformError(f"{what}: HTTP {response.status_code}", status=response.status_code, detail=problem.get("detail"),
                            retryable=response.status_code >= 500 or response.status_code in (408, 429))

    def _once(self, method: str, path: str, what: str, token: str | None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._http.request(method, PREFIX + path, headers=headers, **kwargs)
        except httpx.TransportError as err:  # includes timeouts
            raise PlatformUnavailable(f"{what}: platform unreachable ({type(err).__name__})") from None


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _time(data: dict[str, Any], key: str) -> datetime:
    moment = parse_time(data.get(key))
    if moment is None:
        raise PlatformError(f"ride quote: the answer has no {key}")
    return moment
