"""Two phones, two resident accounts, the real cityos platform on loopback.

A answers while offline, reconnects, and B sees A's answer after a sync; B (A's named
caregiver) answers for A; invites are checked by the platform; revoking location consent
removes the location from the platform and from B's view.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.consent import ConsentLedger, Consents, DataCategory
from app.devicekeys import MemoryKeyStore
from app.family import (
    ConsentMissing,
    FamilyBook,
    FamilyClient,
    FamilySync,
    InviteExpired,
    InviteForged,
    InviteMalformed,
    InviteReused,
    NotAllowed,
    Relation,
    UnknownGroup,
    invite_key,
    make_invite,
)
from app.identity import MemoryTokenStore, install_key
from app.platform import PlatformClient, PlatformHttp
from app.sync import OutboxSync
from cityos.testing import run_cityos
from offline.outbox import Outbox
from offline.store import open_store
from tests.test_identity_cityos import login

TENANT = "352021"


def dead_url() -> str:
    """A loopback port nobody listens on: the phone is offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class Phone:
    def __init__(self, path: Path, base_url: str, username: str) -> None:
        self.session = login(base_url, username)
        self.me = self.session.userinfo()["sub"]
        self.db = open_store(path)
        self.keys = MemoryKeyStore()
        ledger = ConsentLedger(self.db)
        self.outbox = Outbox(self.db, install_key(MemoryTokenStore()), ledger.is_granted)
        self.consents = Consents(self.db, self.outbox)
        self.http = PlatformHttp(base_url, TENANT, auth=self.session.auth)
        self.client = PlatformClient(self.http)
        self.engine = OutboxSync(self.db, self.outbox, self.client)
        self.book = FamilyBook(self.db, self.keys, self.me, TENANT, ledger.is_granted, self.outbox)
        self.family = FamilySync(self.book, FamilyClient(self.http), self.keys, self.consents)

    def push(self) -> None:
        report = self.engine.push()
        assert report.error is None and report.rejected == 0, report

    def close(self) -> None:
        self.http.close()
        self.db.close()


@pytest.fixture(scope="module")
def cityos(tmp_path_factory) -> Iterator:
    with run_cityos(tmp_path_factory.mktemp("cityos"), extra_args=["--rate-limit", "0"]) as server:
        yield server


@pytest.fixture()
def phones(cityos, tmp_path) -> Iterator[tuple[Phone, Phone]]:
    a = Phone(tmp_path / "a.db", cityos.base_url, "ube-resident-1")
    b = Phone(tmp_path / "b.db", cityos.base_url, "ube-resident-2")
    yield a, b
    a.close()
    b.close()


def test_invites_are_checked_by_the_platform(phones) -> None:
    a, b = phones
    group = a.family.create_group("宇部家")
    with pytest.raises(InviteForged):
        b.family.join(make_invite(invite_key(MemoryKeyStore(), group), group, "宇部家", "一郎"))
    stale = make_invite(invite_key(a.keys, group), group, "宇部家", "一郎", ttl_s=60,
                        now=(datetime.now(UTC) - timedelta(hours=1)).timestamp())
    with pytest.raises(InviteExpired) as expired:
        b.family.join(stale)
    assert expired.value.key == "family.error.invite_expired"
    with pytest.raises(InviteMalformed):
        b.family.join("MF1:not-an-invite")
    with pytest.raises(UnknownGroup):
        b.family.join(make_invite(invite_key(a.keys, "no-such-group-1"), "no-such-group-1", "x", "y"))
    invite = a.family.invite(group, "一郎")
    joined = b.family.join(invite)
    assert {m["person"] for m in joined["members"]} == {a.me, b.me}
    with pytest.raises(InviteReused):
        b.family.join(invite)
    assert [m.name for m in b.book.members(group)] == ["宇部 一郎", "宇部 花子"]

    with pytest.raises(NotAllowed):
        b.family.client.remove(group, a.me)  # only the owner removes
    a.family.client.remove(group, b.me)
    b.family.pull()
    assert b.book.groups() == []
    with pytest.raises(UnknownGroup):
        b.family.client.group_status(group)

    b.family.join(a.family.invite(group, "一郎"))  # a fresh invite admits B again
    a.family.client.leave(group)  # the owner leaves: the group passes to B
    b.family.pull()
    assert [(g["id"], g["owner"]) for g in b.book.groups()] == [(group, b.me)]
    assert [(m.person, m.role) for m in b.book.members(group)] == [(b.me, "owner")]


def test_offline_answer_reaches_family_then_proxy_then_location_revoked(phones, cityos) -> None:
    a, b = phones
    group = a.family.create_group("宇部家")
    b.family.join(a.family.invite(group, "一郎"))
    for phone in (a, b):
        phone.consents.grant(DataCategory.SAFETY_STATUS)
        phone.family.share("safety_status", "family", True)
    a.consents.grant(DataCategory.LOCATION)
    a.family.share("location", "family", True)

    # A is offline: the answer is saved and queued, nothing reaches the platform.
    offline = OutboxSync(a.db, a.outbox, PlatformClient(PlatformHttp(dead_url(), TENANT, auth=a.session.auth)))
    answer = a.book.answer("atShelter", place="宇部市立琴芝小学校", lat=33.9512, lon=131.2471, message="無事です")
    report = offline.push()
    assert report.sent == 0 and report.error is not None and report.error.retryable
    assert a.engine.state().queued == 5  # 2 city grants + 2 family grants + the answer
    b.family.pull()
    assert b.book.latest(a.me) is None

    # A reconnects; B syncs and sees A's answer, its place, location and age.
    a.push()
    b.push()
    assert b.family.pull() == 1  # only A shared an answer
    row = next(s for s in b.book.family_status(group) if s.member.person == a.me)
    assert (row.answer.status.value, row.answer.place, row.answer.message) == ("atShelter", "宇部市立琴芝小学校", "無事です")
    assert (row.answer.lat, row.answer.lon) == (33.9512, 131.2471) and not row.answer.is_proxy
    assert row.answer.observed_at == answer.observed_at.replace(microsecond=answer.observed_at.microsecond // 1000 * 1000)
    assert 0 <= row.age_s < 60
    assert [s.member.person for s in b.book.family_map(group)] == [a.me]

    # B answers for A: refused until A (the 要支援者) consents and names B.
    with pytest.raises(ConsentMissing):
        a.family.client.name_caregiver(b.me, Relation.FAMILY)
    a.family.share("safety_status", "caregiver", True)
    a.push()
    a.family.client.name_caregiver(b.me, Relation.FAMILY)
    b.family.pull()
    assert b.book.may_answer_for(a.me)
    proxy = b.book.answer("needHelp", person=a.me, message="足をけがして動けない")
    assert b.family.push() == (1, 0)
    b.family.pull()
    seen = b.book.latest(a.me)
    assert (seen.status.value, seen.reported_by, seen.is_proxy) == ("needHelp", b.me, True)
    assert a.family.pull() >= 1 and a.book.latest(a.me).is_proxy  # A's phone shows the proxy answer too
    stored = a.client.get_entity(f"urn:ngsi-ld:SafetyStatus:{a.me}:proxy")
    assert stored["proxy"]["value"] is True and stored["answerId"]["value"] == proxy.id
    own = a.client.get_entity(f"urn:ngsi-ld:SafetyStatus:{a.me}")  # A's own answer is kept beside it
    assert own["status"]["value"] == "atShelter" and own["message"]["value"] == "無事です"

    # A answers again with a location; then revokes location: family first, then all of it.
    a.book.answer("atShelter", place="宇部市立琴芝小学校", lat=33.9512, lon=131.2471)
    a.push()
    b.family.pull()
    assert b.book.family_map(group)
    a.family.share("location", "family", False)
    a.push()
    b.family.pull()
    assert b.book.family_map(group) == []  # hidden from family ...
    assert "location" in a.client.get_entity(f"urn:ngsi-ld:SafetyStatus:{a.me}")  # ... still shared with the city
    a.consents.revoke(DataCategory.LOCATION)
    a.push()
    assert "location" not in a.client.get_entity(f"urn:ngsi-ld:SafetyStatus:{a.me}")  # removed from the platform
    b.family.pull()
    assert b.book.latest(a.me).status.value == "atShelter" and not b.book.latest(a.me).has_location

    # A withdraws caregiver consent: B's next proxy answer is refused and stays on B's phone.
    a.family.share("safety_status", "caregiver", False)
    a.push()
    b.book.answer("safe", person=a.me)
    assert b.family.push() == (0, 1)
    assert [a.status.value for a in b.book.refused_proxy_answers()] == ["safe"] and b.book.pending_proxy_answers() == []
    assert a.client.get_entity(f"urn:ngsi-ld:SafetyStatus:{a.me}")["status"]["value"] == "atShelter"
