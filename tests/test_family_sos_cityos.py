"""Proxy answers never erase the person's own answer, and an SOS stays until resolved.

Three real accounts against the cityos platform on loopback: A needs support, B is A's
named caregiver in the same family, C is the disaster HQ (city staff). Every ordering of
own and proxy answers, then resolving by the HQ and by the person.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.consent import DataCategory
from app.family import MemberStatus, NotAllowed, UnknownGroup, answers_from
from bench.drill import setup_family
from tests.test_family_cityos import Phone, cityos  # noqa: F401 - the module's platform fixture

STEPS = itertools.count(1)  # one clock for the module: the platform keeps every earlier test's answers
START = datetime.now(UTC).replace(microsecond=0)


class Family:
    def __init__(self, a: Phone, b: Phone, hq: Phone) -> None:
        self.a, self.b, self.hq = a, b, hq
        self._step = next(STEPS)
        self.group = setup_family(a, b)  # the drill's family: B is A's family and caregiver

    @property
    def clock(self) -> datetime:
        return START + timedelta(seconds=10 * self._step)

    def tick(self) -> datetime:
        self._step = next(STEPS)
        return self.clock

    def own(self, status: str, **fields) -> None:
        self.a.book.answer(status, now=self.tick(), **fields)
        self.a.push()

    def proxy(self, status: str, now: datetime | None = None) -> None:
        self.b.book.answer(status, person=self.a.me, now=now or self.tick())
        assert self.b.family.push() == (1, 0)

    def seen_by_b(self) -> MemberStatus:
        self.b.family.pull()
        return next(s for s in self.b.book.family_status(self.group) if s.member.person == self.a.me)

    def hq_records(self) -> dict[bool, str]:
        """What the HQ reads: {is proxy: status} of A's records."""
        mine = [x for x in answers_from(self.hq.client.iter_entities("SafetyStatus")) if x.person == self.a.me]
        return {x.is_proxy: x.status.value for x in mine}


@pytest.fixture()
def family(cityos, tmp_path) -> Iterator[Family]:  # noqa: F811
    phones = [Phone(tmp_path / f"{n}.db", cityos.base_url, user)
              for n, user in (("a", "ube-resident-1"), ("b", "ube-resident-2"), ("hq", "ube-city-1"))]
    yield Family(*phones)
    for phone in phones:
        phone.close()


def test_own_sos_then_proxy_keeps_the_sos_with_message_and_location(family: Family) -> None:
    family.own("needHelp", message="2階に取り残されています。水が来ています", lat=33.9516, lon=131.2467)
    family.proxy("evacuating")
    row = family.seen_by_b()
    assert (row.own.status.value, row.proxy.status.value, row.answer.status.value) == ("needHelp", "evacuating", "evacuating")
    assert row.sos is not None and row.sos.message == "2階に取り残されています。水が来ています"
    assert (row.sos.lat, row.sos.lon, row.sos.reported_by) == (33.9516, 131.2467, family.a.me)
    assert (row.proxy.reported_by, row.proxy.is_proxy) == (family.b.me, True)
    assert family.hq_records() == {False: "needHelp", True: "evacuating"}  # the HQ sees both
    family.a.family.pull()  # A's own phone: her SOS, and who answered for her
    mine = next(s for s in family.a.book.family_status(family.group) if s.member.person == family.a.me)
    assert mine.sos is not None and mine.proxy.reported_by == family.b.me


def test_own_then_proxy_sos_then_own_again(family: Family) -> None:
    family.own("safe")
    family.proxy("needHelp")
    row = family.seen_by_b()
    assert (row.own.status.value, row.sos.status.value, row.sos.is_proxy) == ("safe", "needHelp", True)
    family.own("atShelter", place="琴芝小学校")
    row = family.seen_by_b()
    assert (row.own.status.value, row.own.place, row.proxy.status.value) == ("atShelter", "琴芝小学校", "needHelp")
    assert row.answer.status.value == "atShelter"


def test_proxy_then_own_and_a_late_proxy_answer_changes_nothing(family: Family) -> None:
    family.proxy("evacuating")
    old = family.clock
    family.own("injured", message="足をけがしました")
    row = family.seen_by_b()
    assert (row.proxy.status.value, row.own.status.value, row.sos.message) == ("evacuating", "injured", "足をけがしました")
    family.b.book.answer("safe", person=family.a.me, now=old - timedelta(seconds=5))  # made offline, delivered late
    assert family.b.family.push() == (1, 0)
    row = family.seen_by_b()
    assert (row.proxy.status.value, row.own.status.value) == ("evacuating", "injured")


def test_the_hq_resolves_an_sos_and_it_stays_as_history(family: Family) -> None:
    family.own("needHelp", message="動けません", lat=33.95, lon=131.25)
    with pytest.raises(NotAllowed):
        family.b.family.client.resolve_sos(family.a.me)  # a caregiver cannot close someone's SOS
    assert family.hq.family.client.resolve_sos(family.a.me) == 1
    assert family.hq.family.client.resolve_sos(family.a.me) == 0  # already resolved
    row = family.seen_by_b()
    assert row.sos is None and row.own.status.value == "needHelp" and row.own.message == "動けません"
    assert row.own.resolved_by == family.hq.me and row.own.resolved_at is not None
    family.own("needHelp", message="また水が来ました")  # a new SOS is open again
    assert family.seen_by_b().sos.message == "また水が来ました"


def test_the_person_resolves_their_sos_and_the_hq_cannot_without_city_consent(family: Family) -> None:
    family.own("injured")
    family.proxy("needHelp")
    assert family.a.family.client.resolve_sos(family.a.me) == 2  # her own and the proxy SOS
    row = family.seen_by_b()
    assert row.sos is None and row.own.resolved_by == family.a.me and row.proxy.resolved_by == family.a.me
    family.own("needHelp")
    family.a.consents.revoke(DataCategory.SAFETY_STATUS)  # no longer shared with the city
    family.a.push()
    with pytest.raises(UnknownGroup):
        family.hq.family.client.resolve_sos(family.a.me)
