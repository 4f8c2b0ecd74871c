"""The live event stream: family answers, alerts and shelter counts reach other phones by
themselves, through the real platform on loopback (no polling in between)."""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.consent import DataCategory
from app.family import alert_entity, poll_interval
from app.sync import EventStream, parse_events
from tests.test_family_cityos import Phone, cityos  # noqa: F401 - the module's platform fixture
from tests.test_identity_cityos import login


def test_server_sent_events_are_parsed_as_the_standard_says() -> None:
    lines = ["retry: 2000", "", ": ping", "event: family", "data: {\"a\":", "data: 1}", "", "data:x", "", "event: y", ""]
    assert list(parse_events(iter(lines))) == [("family", '{"a":\n1}'), ("message", "x")]
    assert (poll_interval(False), poll_interval(True)) == (30.0, 10.0)


class Listener:
    """A phone's live feed on its own thread; events land in a queue."""

    def __init__(self, phone: Phone, topics: tuple[str, ...]) -> None:
        self.events: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.stop = threading.Event()
        self.feed = EventStream(phone.http, topics=topics, on_event=lambda name, data: self.events.put((name, data)))
        self.thread = threading.Thread(target=self.feed.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def next(self, topic: str, until=lambda data: True, timeout: float = 20.0) -> dict:
        while True:
            name, data = self.events.get(timeout=timeout)
            if name == topic and until(data):
                return data


@pytest.fixture()
def phones(cityos, tmp_path) -> Iterator[tuple[Phone, Phone]]:  # noqa: F811
    a = Phone(tmp_path / "a.db", cityos.base_url, "ube-resident-1")
    b = Phone(tmp_path / "b.db", cityos.base_url, "ube-resident-2")
    yield a, b
    a.close()
    b.close()


def test_a_family_answer_arrives_on_the_other_phone_by_itself(phones, cityos) -> None:  # noqa: F811
    a, b = phones
    group = a.family.create_group("宇部家")
    b.family.join(a.family.invite(group, "一郎"))
    for phone in (a, b):
        phone.consents.grant(DataCategory.SAFETY_STATUS)
        phone.family.share("safety_status", "family", True)
        phone.push()
    b.family.pull()
    listener = Listener(b, ("family",))
    try:
        first = listener.next("family")  # the state at connection time comes first
        assert group in [g["id"] for g in first["groups"]]
        answer = a.book.answer("needHelp", message="水が来ています")
        a.push()  # A's phone sends; B does nothing but listen

        def has_answer(data: dict) -> bool:
            rows = next(g["members"] for g in data["groups"] if g["id"] == group)
            own = next(r for r in rows if r["person"] == a.me)["own"]
            return bool(own) and own["answerId"]["value"] == answer.id

        data = listener.next("family", has_answer)
        rows = next(g["members"] for g in data["groups"] if g["id"] == group)
        assert b.family.apply_status(group, rows) >= 1
        row = next(s for s in b.book.family_status(group) if s.member.person == a.me)
        assert (row.sos.message, row.shared) == ("水が来ています", True)

        a.family.share("safety_status", "family", False)  # stops sharing: B is told, and it says so
        a.push()
        data = listener.next("family", lambda d: not next(r for g in d["groups"] if g["id"] == group
                                                           for r in g["members"] if r["person"] == a.me)["shared"])
        b.family.apply_status(group, next(g["members"] for g in data["groups"] if g["id"] == group))
        row = next(s for s in b.book.family_status(group) if s.member.person == a.me)
        assert (row.shared, row.status_key, row.answer) == (False, "family.status.not_shared", None)
    finally:
        listener.stop.set()


def test_alerts_and_shelter_changes_wake_the_stream(phones, cityos) -> None:  # noqa: F811
    a, _ = phones
    listener = Listener(a, ("alerts", "shelters"))
    staff = login(cityos.base_url, "ube-city-1")
    try:
        start = listener.next("alerts")["seq"]
        listener.next("shelters")
        now = datetime.now(UTC)
        alert = alert_entity("live-test-1", "352021", hazard="flood", level=4, headline="川が増水",
                             issued_at=now, expires_at=now + timedelta(hours=1), municipalities=["352021"])
        response = httpx.post(f"{cityos.base_url}/ngsi-ld/v1/entityOperations/upsert", json=[alert],
                              headers={"Authorization": f"Bearer {staff.access_token()}", "NGSILD-Tenant": "352021"})
        assert response.status_code in (201, 204), response.text
        assert listener.next("alerts", lambda d: d["seq"] > start)["seq"] > start
    finally:
        listener.stop.set()


def test_the_stream_needs_a_token_and_known_topics(cityos) -> None:  # noqa: F811
    assert httpx.get(f"{cityos.base_url}/cityos/v1/events").status_code == 401
    staff = login(cityos.base_url, "ube-city-1")
    bad = httpx.get(f"{cityos.base_url}/cityos/v1/events", params={"topics": "family,secrets"},
                    headers={"Authorization": f"Bearer {staff.access_token()}"})
    assert bad.status_code == 400 and "topics" in bad.json()["detail"]
