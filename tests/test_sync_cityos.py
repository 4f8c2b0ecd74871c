"""Outbox + sync engine + consent against the real cityos platform on loopback."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.consent import ConsentLedger, Consents, DataCategory
from app.identity import TOKENS_KEY, MemoryTokenStore, Session, Tokens, install_key
from app.platform import PlatformClient, PlatformError, PlatformHttp
from app.sync import OutboxSync
from cityos.testing import run_cityos
from offline.outbox import Outbox
from offline.store import open_store
from protocol.entities import geo_point, make_entity
from tests.test_identity_cityos import login

TENANT = "352021"


class Device:
    """One installed app: its own store, secure storage, outbox, consents and engine."""

    def __init__(self, path: Path, base_url: str, session: Session | None = None, batch_size: int = 500) -> None:
        self.db = open_store(path)
        self.secure = MemoryTokenStore()
        self.outbox = Outbox(self.db, install_key(self.secure), ConsentLedger(self.db).is_granted)
        self.consents = Consents(self.db, self.outbox)
        self.http = PlatformHttp(base_url, TENANT, auth=session.auth if session else None)
        self.client = PlatformClient(self.http)
        self.engine = OutboxSync(self.db, self.outbox, self.client, batch_size=batch_size)

    def close(self) -> None:
        self.http.close()
        self.db.close()


@pytest.fixture(scope="module")
def cityos(tmp_path_factory) -> Iterator:
    with run_cityos(tmp_path_factory.mktemp("cityos"), extra_args=["--rate-limit", "0"]) as server:
        yield server


@pytest.fixture()
def resident(cityos, tmp_path) -> Iterator[Device]:
    device = Device(tmp_path / "app.db", cityos.base_url, login(cityos.base_url))
    yield device
    device.close()


def status(pid: str, value: str, **extra) -> dict:
    return make_entity("SafetyStatus", pid, TENANT, status=value, **extra)


def test_logged_out_pull_works_and_shows_freshness(cityos, tmp_path) -> None:
    device = Device(tmp_path / "anon.db", cityos.base_url)
    seen: list = []
    unsubscribe = device.engine.subscribe(seen.append)
    assert device.engine.state().datasets["shelter_status"].last_success_at is None
    assert device.engine.pull("shelter_status") == 170  # every seeded Ube shelter, first time
    assert seen[-1].datasets["shelter_status"].entity_count == 170  # observers hear about it
    unsubscribe()
    assert device.engine.pull("shelter_status") == 0  # then only deltas
    fresh = device.engine.state().datasets["shelter_status"]
    assert fresh.entity_count == 170 and fresh.last_success_at and fresh.last_error is None
    assert device.engine.push().error is None  # nothing queued: nothing needs a login
    device.close()


def test_consented_writes_reach_the_platform_and_revoke_deletes_them(resident) -> None:
    resident.consents.grant(DataCategory.SAFETY_STATUS)
    resident.consents.grant(DataCategory.LOCATION)
    resident.outbox.enqueue("safety_status", status("r1-self", "safe", location=geo_point(33.95, 131.25)))
    resident.outbox.enqueue("safety_status", status("r1-mother", "needHelp"))
    report = resident.engine.push()
    assert (report.sent, report.rejected, report.error) == (4, 0, None)  # 2 grants + 2 entities
    stored = resident.client.get_entity("urn:ngsi-ld:SafetyStatus:r1-self")
    assert stored["status"]["value"] == "safe" and stored["location"]["value"]["coordinates"] == [131.25, 33.95]

    resident.outbox.enqueue("safety_status", status("r1-father", "injured"))
    resident.consents.revoke(DataCategory.SAFETY_STATUS)  # purges the queued write
    assert resident.engine.push().sent == 1  # only the revocation travels
    for pid in ("r1-self", "r1-mother", "r1-father"):
        assert resident.client.get_entity(f"urn:ngsi-ld:SafetyStatus:{pid}") is None
    history = resident.client.consent_history()
    assert [(h["category"], h["action"]) for h in history if h["category"] == "safety_status"][-2:] == [
        ("safety_status", "grant"), ("safety_status", "revoke")]


def test_platform_refusals_are_parked_and_the_rest_is_sent(resident) -> None:
    resident.consents.grant(DataCategory.RIDE_HISTORY)
    resident.outbox.enqueue("ride_history", make_entity("RideRequest", "r1-ride-1", TENANT, pickup="stop-1"))
    resident.outbox.enqueue("ride_history", make_entity("RideRequest", "r1-ride-2", "072028", pickup="stop-2"))
    report = resident.engine.push()
    assert (report.sent, report.rejected) == (2, 1)  # grant + one ride; the other town's code is refused
    assert resident.engine.state().rejected == 1 and resident.engine.state().queued == 0
    assert "403" in resident.outbox.rejected()[0][2] or "municipality" in resident.outbox.rejected()[0][2].lower()


def test_logged_out_push_keeps_everything_queued(cityos, tmp_path) -> None:
    device = Device(tmp_path / "anon.db", cityos.base_url, Session(cityos.base_url, "mamori-app", MemoryTokenStore()))
    device.consents.grant(DataCategory.HEALTH_ACTIVITY)
    device.outbox.enqueue("health_activity", make_entity("HealthPointEvent", "steps-1", TENANT, steps=4200))
    report = device.engine.push()
    assert report.sent == 0 and device.engine.state().last_error == "login required"
    assert device.engine.state().queued == 2
    device.close()


def test_deltas_updates_and_tombstones(cityos, tmp_path) -> None:
    device = Device(tmp_path / "anon.db", cityos.base_url)
    device.engine.pull("shelter_status")
    device.engine.pull("alerts")
    staff_http = PlatformHttp(cityos.base_url, TENANT, auth=login(cityos.base_url, "ube-city-1").auth)
    staff = PlatformClient(staff_http)
    shelter = staff.query("EvacuationShelter", limit=1).entities[0]
    shelter["status"] = {"type": "Property", "value": "open"}
    shelter["occupancy"] = {"type": "Property", "value": 42}
    alert = make_entity("Alert", "flood-1", TENANT, category="flood", severity="warning")
    staff.upsert([shelter, alert])
    assert device.engine.pull("shelter_status") == 1
    assert device.engine.pull("alerts") == 1
    local = {e["id"]: e for e in device.engine.entities("shelter_status")}
    assert local[shelter["id"]]["occupancy"]["value"] == 42
    assert staff.delete_entity(alert["id"])
    assert device.engine.pull("alerts") == 1  # the tombstone
    assert device.engine.entities("alerts") == [] and device.engine.state().datasets["alerts"].entity_count == 0
    staff_http.close()
    device.close()


def test_bad_query_is_a_problem_details_error(resident) -> None:
    with pytest.raises(PlatformError) as caught:
        resident.client.query("EvacuationShelter", q="status=====")
    assert caught.value.status == 400 and caught.value.problem_type.startswith("https://uri.etsi.org/ngsi-ld/errors/")
    assert not caught.value.retryable


def test_no_token_or_payload_in_sqlite_or_logs(cityos, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    secure = MemoryTokenStore()
    session = login(cityos.base_url, store=secure)
    device = Device(tmp_path / "scan.db", cityos.base_url, session)
    device.consents.grant(DataCategory.EVACUEE_CARD)
    device.outbox.enqueue("evacuee_card", make_entity("EvacueeCard", "card-77", TENANT, allergy="peanut-XYZZY"))
    device.engine.push()
    device.outbox.enqueue("evacuee_card", make_entity("EvacueeCard", "card-78", TENANT, allergy="peanut-XYZZY"))
    session.refresh()
    tokens = Tokens.from_json(secure.get(TOKENS_KEY))
    device.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    logs = caplog.text + cityos.log_text()
    secrets = [tokens.access_token, tokens.refresh_token, tokens.id_token, "peanut-XYZZY"]
    for secret in secrets:
        assert secret and secret.encode() not in raw
        assert secret not in logs


class _Recording(httpx.HTTPTransport):
    """A real transport that notes each request's If-None-Match and the status that came back."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str | None, int]] = []
        self.tokens: list[bool] = []  # whether each request carried the account's token

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.seen.append((request.headers.get("if-none-match"), response.status_code))
        self.tokens.append("authorization" in request.headers)
        return response


def test_an_unchanged_public_feed_is_revalidated_with_if_none_match(cityos, tmp_path) -> None:
    transport = _Recording()
    http = PlatformHttp(cityos.base_url, TENANT, transport=transport)
    client = PlatformClient(http)
    first = client.changes(["Alert"], None)
    again = client.changes(["Alert"], None)
    assert again == first
    (sent_first, status_first), (sent_again, status_again) = transport.seen
    assert (sent_first, status_first) == (None, 200)
    assert sent_again and status_again == 304  # the platform answered from memory
    http.close()


def test_a_logged_in_phone_pulls_public_datasets_without_its_token(cityos, tmp_path) -> None:
    """Alerts and shelter status are public: asked anonymously, the platform's memory (and a
    reverse proxy) can answer every phone of a city; the token still goes with the outbox."""
    transport = _Recording()
    http = PlatformHttp(cityos.base_url, TENANT, auth=login(cityos.base_url).auth, transport=transport)
    db = open_store(tmp_path / "app.db")
    outbox = Outbox(db, install_key(MemoryTokenStore()), ConsentLedger(db).is_granted)
    sync = OutboxSync(db, outbox, PlatformClient(http))
    for _ in range(3):  # the first moves the cursor; the next two ask the same URL
        sync.pull("alerts")
    assert transport.tokens == [False, False, False] and transport.seen[-1][1] == 304
    Consents(db, outbox).grant(DataCategory.SAFETY_STATUS)
    assert sync.push().error is None and transport.tokens[-1]  # writes go with the token
    http.close()
    db.close()
