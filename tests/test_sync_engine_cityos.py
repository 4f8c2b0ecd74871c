"""The app's one sync engine against the real platform on loopback: the app sits on Home (no
screen is built), the platform goes down, the resident and the desk record things through the
app services, the platform comes back, and every record arrives once, by itself."""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.checkin import CardForm, MemberForm, card_from_form
from app.connection import PlatformLink
from app.consent import DataCategory
from app.devicekeys import MemoryKeyStore
from app.family import SafetyStatus
from app.rides import RideForm, build_request
from app.state import Mamori
from app.sync import FeatureState
from cityos.testing import run_cityos
from geo.models import LatLon
from offline.store import open_store
from protocol.hazards import ShelterKind
from tests.test_identity_cityos import form_browser

TENANT = "352021"
WAIT_S = 90.0  # generous for a 2-core machine shared by many test runs; we wait on state, not time


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture()
def platform(tmp_path, data_dir) -> Iterator:
    with run_cityos(tmp_path / "cityos", data_dir=data_dir, access_token_ttl=3600, extra_args=["--rate-limit", "0"]) as server:
        yield server


def open_app(platform, ube, ube_store_file, data_dir, folder: Path, account: str) -> Mamori:
    """The app as a resident has it: its own store and key store, logged in, consents given."""
    store = folder / "mamori.sqlite"
    store.parent.mkdir(parents=True)
    shutil.copy(ube_store_file, store)
    db, keys = open_store(store), MemoryKeyStore()
    link = PlatformLink(store, db, keys, platform.base_url, TENANT)
    link.sync.backoff_cap_s = 1.0  # retry soon once the platform is back (the app caps at a minute)
    app = Mamori(db, ube, keys, data_dir, link=link)
    app.set_home(LatLon(33.9513, 131.2470))
    link.login(open_browser=form_browser(account))
    for category in (DataCategory.SAFETY_STATUS, DataCategory.HEALTH_ACTIVITY, DataCategory.EVACUEE_CARD,
                     DataCategory.RIDE_HISTORY):
        link.set_consent(category, True)
    return app


def close_app(app: Mamori) -> None:
    app.link.stop()  # type: ignore[union-attr]
    app.db.conn.close()


@pytest.fixture()
def app(platform, ube, ube_store_file, data_dir, tmp_path) -> Iterator[Mamori]:
    app = open_app(platform, ube, ube_store_file, data_dir, tmp_path / "app", "ube-staff-1")  # staff: a desk and a resident
    yield app
    close_app(app)


def states(app: Mamori) -> dict[str, FeatureState]:
    return app.link.sync.state()  # type: ignore[union-attr]


def settled(app: Mamori, names: tuple[str, ...], since: float) -> bool:
    now = states(app)
    return all(now[n].pending == 0 and (now[n].last_success_at or 0) > since and not now[n].running for n in names)


def bearer(app: Mamori) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.link.session.access_token()}", "NGSILD-Tenant": TENANT}  # type: ignore[union-attr]


def platform_view(platform, app: Mamori, shelter_id: str, ref: str) -> dict[str, object]:
    """What the platform holds of this resident's records (the test's own reads, as staff)."""
    headers = bearer(app)
    with httpx.Client(base_url=platform.base_url, headers=headers, timeout=30) as http:
        rides = http.get("/rides/v1/rides").json()
        ledger = http.get("/cityos/v1/points/ledger", params={"after": 0, "limit": 1000}).json()
        desk = http.get("/cityos/v1/checkin/desk/events", params={"after": 0}).json()
        sub = app.family.identity.sub if app.family.identity else ""
        status = http.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:SafetyStatus:{sub}")
        shelter = http.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:EvacuationShelter:{shelter_id}").json()
    return {
        "rides": sorted(r["id"] for r in rides),
        "steps": sorted(e["id"] for e in ledger["entries"] if e.get("kind") == "steps"),
        "desk": sorted(e["id"] for e in desk["events"] if e["ref"] == ref),
        "status": status.json()["status"]["value"] if status.status_code == 200 else None,
        "occupancy": shelter["occupancy"]["value"],
    }


def platform_requests(platform) -> int:
    return platform.log_text().count("cityos.access: ")


def test_an_idle_app_asks_the_platform_only_at_its_features_cadence(platform, app) -> None:
    """Once every feature has run, an app that nobody touches is quiet: its features wait their
    intervals (30 s and more here). A feature whose pull returned a count (0) once ran again at
    once, for ever: about 80 requests a second per dataset from every phone."""
    link = app.link
    assert link is not None
    link.start_sync()
    names = tuple(states(app))
    wait_for("every feature's first round", lambda: settled(app, names, 0))
    before, started = platform_requests(platform), time.monotonic()
    time.sleep(5.0)  # the quiet is the behaviour under test: a window of time, not a wait for state
    asked = platform_requests(platform) - before
    assert asked <= len(names), f"{asked} requests in {time.monotonic() - started:.1f} s from an idle app"


def test_records_made_on_home_while_the_platform_is_down_arrive_once_when_it_returns(platform, app) -> None:
    link = app.link
    assert link is not None
    link.start_sync()
    # Online first: consents reach the platform, the account's roles and keys arrive, the points rules come.
    wait_for("first round online", lambda: settled(app, ("outbox", "device_keys", "points", "family"), 0))
    assert app.checkin.staff_allowed() and app.points.ledger.rules() is not None

    port = platform.port
    platform.stop()
    down = time.time()
    shelter = next(h.shelter for h in app.shelters.search(kind=ShelterKind.DESIGNATED_SHELTER) if h.shelter.capacity)
    stops = [h.shelter for h in app.shelters.nearest(LatLon(33.9513, 131.2470), 3)]

    # Through the app services only (no screen): a ride, steps, a paper registration at the desk, an answer.
    booking = app.rides.confirm(build_request(app, RideForm(pickup="home", dropoff="stop", dropoff_stop=stops[0].id)))
    steps = app.points.record_steps("8200")
    checkin = app.checkin
    checkin.use_desk(shelter)
    paper = checkin.desk(shelter).register_paper(card_from_form(CardForm(members=[MemberForm(name="宇部 三郎")])))
    checkin.desk_recorded()
    shared, _ = app.family.answer(SafetyStatus.SAFE)
    assert shared  # logged in with the safety-status consent: it will leave the phone

    waiting = ("rides", "points", "desk", "outbox")
    wait_for("the engine to find the platform down", lambda: all(
        states(app)[n].pending > 0 and states(app)[n].failures > 0 for n in waiting))
    down_state = states(app)
    assert all(down_state[n].last_error and down_state[n].next_try_at for n in waiting)
    assert booking.status.value == "not_sent" and steps.status == "pending"

    platform.start(port)  # same port, same database
    wait_for("every record to arrive", lambda: settled(app, (*waiting, "family"), down))
    seen = platform_view(platform, app, shelter.id, paper.ref)
    assert seen["rides"] == [booking.id] and app.rides.book.get(booking.id).status.confirmed
    assert seen["steps"] == [steps.id]
    assert len(seen["desk"]) == 1 and seen["occupancy"] == 1
    assert seen["status"] == "safe"

    # Another full round (as after a lost answer) changes nothing on the platform.
    before = time.time()
    link.kick()
    wait_for("a second round", lambda: settled(app, (*waiting, "family"), before))
    assert platform_view(platform, app, shelter.id, paper.ref) == seen


def test_a_family_answer_reaches_the_other_phone_through_its_engines_event_stream(platform, ube, ube_store_file, data_dir,
                                                                                  tmp_path) -> None:
    """Both phones sit on Home; neither screen is open and nobody taps. A's answer goes out by
    A's engine; B's engine hears it on the event stream and applies it, long before its 30 s poll."""
    a, b = (open_app(platform, ube, ube_store_file, data_dir, tmp_path / name, account)
            for name, account in (("a", "ube-resident-1"), ("b", "ube-resident-2")))
    try:
        for phone in (a, b):
            phone.link.sync.start()  # type: ignore[union-attr]
            wait_for("the first round", lambda phone=phone: settled(phone, ("outbox", "family"), 0))
        group = a.family.groups().create_group("宇部家")
        b.family.groups().join(a.family.groups().invite(group, "一郎"))
        for phone in (a, b):
            phone.family.set_sharing("safety_status", "family", True)
            wait_for("sharing sent", lambda phone=phone: states(phone)["outbox"].pending == 0)
        wait_for("B's event stream", lambda: b.link.sync.live)  # type: ignore[union-attr]
        b_polled = states(b)["family"].next_try_at or 0.0
        a.family.answer(SafetyStatus.NEED_HELP, message="水が来ています")
        me = a.family.me()

        def b_sees_it() -> bool:
            latest = b.family.book().latest(me)
            return latest is not None and latest.message == "水が来ています"

        wait_for("A's answer on B's phone", b_sees_it, timeout=25.0)
        assert time.time() < b_polled, "it came before B's next poll: by the event stream"
        assert states(b)["family"].last_success_at is not None
    finally:
        close_app(a)
        close_app(b)
