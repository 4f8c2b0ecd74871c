"""Health points against the real cityos platform on loopback: consent, sync, event QR,
coupons, donations, and replay of the queue after a crash (hypothesis)."""
from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.devicekeys import MemoryKeyStore
from app.platform import BearerAuth, PlatformError, PlatformHttp
from app.points import (
    AlreadyClaimed,
    Coupon,
    PlatformRefused,
    PointsLedger,
    PointsSync,
    UnknownSigner,
    make_coupon_qr,
)
from cityos.testing import login, run_cityos
from offline.store import open_store

CODE = "352021"
_DEVICES = itertools.count()


class Token:
    """Credentials from a real login (``app.platform.Credentials``); no refresh in a short test."""

    def __init__(self, server, username: str) -> None:
        self.value = login(server, username)["access_token"]

    def access_token(self) -> str:
        return self.value

    def refresh_after_rejection(self) -> None:
        return None


class Device:
    def __init__(self, root: Path, server, token: Token, consented: bool) -> None:
        self.db = open_store(root / f"device-{next(_DEVICES)}.db")
        self.consent = {"granted": consented}
        self.ledger = PointsLedger(self.db, MemoryKeyStore(), CODE, lambda: self.consent["granted"])
        self.http = PlatformHttp(server.base_url, auth=BearerAuth(token))
        self.sync = PointsSync(self.ledger, self.http, consented=lambda: self.consent["granted"])

    def close(self) -> None:
        self.http.close()
        self.db.conn.close()


def call(server, token: Token, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, server.base_url + path, headers={"Authorization": f"Bearer {token.value}"},
                         timeout=10, **kwargs)


def grant(server, token: Token) -> None:
    answer = call(server, token, "POST", "/cityos/v1/consents",
                  json={"category": "health_activity", "purpose": "health_promotion", "recipient": "city"})
    assert answer.status_code in (200, 201)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator:
    with run_cityos(tmp_path_factory.mktemp("cityos"), extra_args=["--rate-limit", "0"]) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(server) -> dict[str, Token]:
    found = {name: Token(server, name) for name in ("ube-resident-1", "ube-resident-2", "ube-city-1")}
    grant(server, found["ube-resident-1"])
    return found


def test_without_consent_points_stay_on_the_device(server, tmp_path):
    token = Token(server, "ube-staff-1")  # an account that never consented to health_activity
    device = Device(tmp_path, server, token, consented=False)
    device.sync.refresh_rules()
    device.ledger.record_steps(device.ledger.today(), 7_300)
    report = device.sync.sync()
    assert report.held_on_device and report.sent == 0 and report.error is None
    assert device.ledger.balance().status_key == "points.balance.device_only"
    assert device.ledger.rules().municipality_code == CODE  # rules still come from the platform
    device.consent["granted"] = True  # the app thinks yes, the platform has no grant yet
    report = device.sync.sync()
    assert report.error is not None and report.held_on_device
    assert device.ledger.history()[0].status == "pending"  # kept, to send once the grant arrives
    grant(server, token)
    report = device.sync.sync()
    assert (report.sent, report.confirmed, report.error) == (1, 1, None)
    balance = device.ledger.balance()
    assert balance.confirmed == 7 == balance.platform_balance and balance.status_key == "points.balance.confirmed"
    device.close()


def test_event_qr_earns_once_per_resident_and_the_rejection_reason_reaches_the_app(server, tokens, tmp_path):
    now = int(time.time())
    made = call(server, tokens["ube-city-1"], "POST", "/cityos/v1/points/event-qr",
                json={"eventId": "drill-2025-autumn", "activity": "evacuation_drill", "title": "総合防災訓練",
                      "validFrom": now - 600, "validUntil": now + 3600})
    assert made.status_code == 201
    refused = call(server, tokens["ube-resident-1"], "POST", "/cityos/v1/points/event-qr",
                   json={"eventId": "x", "activity": "event", "title": "x", "validFrom": now, "validUntil": now})
    assert refused.status_code == 403
    phone, tablet = (Device(tmp_path, server, tokens["ube-resident-1"], consented=True) for _ in range(2))
    for device in (phone, tablet):
        device.sync.sync()  # rules and the platform's signing key, for checking QR codes offline
        entry = device.ledger.scan_event_qr(made.json()["qr"])
        assert entry.points == 30
    with pytest.raises(AlreadyClaimed):
        phone.ledger.scan_event_qr(made.json()["qr"])
    assert phone.sync.sync().confirmed == 1
    report = tablet.sync.sync()  # the same account scanned it on a second device
    assert (report.sent, report.rejected) == (1, 1)
    drills = sorted((e.origin, e.status, e.reason_key) for e in tablet.ledger.history() if e.kind == "evacuation_drill")
    assert drills == [("device", "rejected", "points.reject.already_claimed"),  # its own scan, with the reason
                      ("platform", "confirmed", None)]  # the phone's claim, learned from the ledger
    assert tablet.ledger.balance().confirmed == phone.ledger.balance().confirmed  # both learned the same ledger
    phone.close()
    tablet.close()


def test_coupon_donation_and_ride_fare(server, tokens, tmp_path):
    resident = Device(tmp_path, server, tokens["ube-resident-1"], consented=True)
    resident.sync.sync()
    resident.ledger.record_checkup(resident.ledger.today())
    resident.sync.sync()
    start = resident.ledger.balance().confirmed
    assert start >= 100
    coupon = resident.sync.issue_coupon(40)
    assert coupon.startswith("MPC1:") and resident.ledger.balance().confirmed == start - 40
    shop = Device(tmp_path, server, tokens["ube-resident-2"], consented=False)  # another account that saw the QR
    shop.sync.refresh_keys()
    with pytest.raises(PlatformError, match="only the resident the coupon was issued to"):
        shop.sync.redeem_coupon(coupon)  # cannot burn someone else's coupon
    assert resident.sync.redeem_coupon(coupon).points == 40
    with pytest.raises(PlatformRefused, match="already been used"):
        resident.sync.redeem_coupon(coupon)
    now = int(time.time())
    forged = make_coupon_qr(Ed25519PrivateKey.generate(), Coupon("cforged", CODE, 5000, now, now + 600))
    with pytest.raises(UnknownSigner):
        shop.sync.redeem_coupon(forged)
    bob = httpx.get(server.base_url + "/userinfo", headers={"Authorization": f"Bearer {tokens['ube-resident-2'].value}"})
    refused = resident.ledger.donate(3, to_resident=bob.json()["sub"])  # bob keeps no ledger here yet
    assert resident.sync.sync().rejected == 1 and resident.ledger.get(refused.id).status == "rejected"
    grant(server, tokens["ube-resident-2"])
    shop.consent["granted"] = True
    resident.ledger.donate(10, to_resident=bob.json()["sub"])
    resident.ledger.donate(5, to_cause="disaster_fund")
    fare = resident.ledger.pay_ride_fare("ride-42", 20)
    report = resident.sync.sync()
    assert (report.confirmed, report.rejected) == (3, 0)
    assert resident.ledger.get(fare.id).status == "confirmed"
    assert resident.ledger.balance().confirmed == start - 40 - 10 - 5 - 20 == resident.ledger.balance().platform_balance
    shop.sync.sync()
    assert [e.kind for e in shop.ledger.history()] == ["donation_received"]
    assert shop.ledger.balance().confirmed >= 10
    resident.close()
    shop.close()


_ACTIVITY = st.one_of(
    st.tuples(st.just("steps"), st.integers(0, 6), st.integers(0, 30_000)),
    st.tuples(st.just("bp"), st.integers(0, 6), st.just(0)),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(activity=st.lists(_ACTIVITY, min_size=1, max_size=8), crash_after=st.integers(0, 8),
       replays=st.integers(1, 3))
def test_replaying_the_queue_never_double_credits(server, tokens, tmp_path, activity, crash_after, replays):
    token = tokens["ube-resident-1"]
    device = Device(tmp_path, server, token, consented=True)
    device.sync.refresh_rules()
    today = device.ledger.today()
    for kind, days_ago, steps in activity:
        day = today - timedelta(days=days_ago)
        if kind == "steps":
            device.ledger.record_steps(day, steps)
        else:
            device.ledger.record_blood_pressure(day, 120, 80)
    # The app is killed after the platform took a batch but before the answer was stored: the
    # same entries go out again (several times) on the next runs.
    queued = device.ledger.pending_payloads(500)
    for _ in range(replays):
        answer = call(server, token, "POST", "/cityos/v1/points/events", json={"events": queued[:crash_after]})
        assert answer.status_code == 200
    first_answers = {v["id"]: v for v in answer.json()["results"]}
    report = device.sync.sync()
    assert report.error is None and report.sent == len(queued)
    for entry_id, verdict in first_answers.items():
        settled = device.ledger.get(entry_id)
        assert (settled.status, settled.points) == (verdict["status"], verdict["points"])
    platform = call(server, token, "GET", "/cityos/v1/points/ledger", params={"after": 0, "limit": 1000}).json()
    ids = [e["id"] for e in platform["entries"]]
    assert len(ids) == len(set(ids))  # every idempotency id recorded once
    assert platform["balance"] == sum(e["points"] for e in platform["entries"] if e["status"] == "confirmed")
    fresh = Device(tmp_path, server, token, consented=True)  # a new phone restoring the ledger
    fresh.sync.sync()
    assert fresh.ledger.balance().confirmed == platform["balance"] == device.ledger.balance().confirmed
    device.close()
    fresh.close()
