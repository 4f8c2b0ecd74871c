"""The platform's points authority as a ledger (no HTTP): balance, caps, claims, coupons, replay."""
from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.points import (
    Activity,
    Coupon,
    EventQr,
    make_coupon_qr,
    make_event_qr,
    today_jst,
)
from cityos.points import PointsAuthority, Refused, points_entry
from cityos.store import Store, account, consent, utc_now

CODE = "352021"
TODAY = today_jst()
ALICE, BOB, DAVE = "sub-alice", "sub-bob", "sub-dave"  # Dave: fresh days, away from the property test
CAROL = "sub-erin"  # an account without the health consent: keeps no ledger here
_RUNS = itertools.count()


@pytest.fixture(scope="module")
def authority() -> PointsAuthority:
    return PointsAuthority(Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('authority') / 'c.sqlite'}")
    with store.write() as conn:
        for sub in (ALICE, BOB, CAROL):
            conn.execute(account.insert().values(sub=sub, username=sub, password_hash="-", name=sub,
                                                 municipality_code=CODE, roles=["resident"]))
        conn.execute(consent.insert().values(sub=BOB, category="health_activity", purpose="health_promotion",
                                             recipient="city", active=True, granted_at=utc_now()))
    return store


def qr(authority: PointsAuthority, event_id: str, key: Ed25519PrivateKey | None = None) -> str:
    now = int(time.time())
    return make_event_qr(key or authority.key, EventQr(event_id, CODE, Activity.HEALTH_CLASS, "教室", now - 3600,
                                                       now + 3600))


def confirmed_sum(store: Store, sub: str) -> int:
    with store.read() as conn:
        rows = conn.execute(select(points_entry.c.points, points_entry.c.status)
                            .where(points_entry.c.sub == sub)).all()
    return sum(p for p, s in rows if s == "confirmed")


_ops = st.one_of(
    st.tuples(st.just("steps"), st.integers(0, 3), st.integers(0, 120_000)),
    st.tuples(st.just("blood_pressure"), st.integers(0, 3), st.just(1)),
    st.tuples(st.just("checkup"), st.integers(0, 3), st.just(1)),
    st.tuples(st.just("health_class"), st.integers(0, 4), st.booleans()),  # event number, forged?
    st.tuples(st.just("donation"), st.sampled_from(["disaster_fund", "nowhere", BOB]), st.integers(1, 60)),
    st.tuples(st.just("ride_fare"), st.integers(0, 3), st.integers(1, 40)),
    st.tuples(st.just("replay"), st.integers(0, 50), st.just(0)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_ops, min_size=1, max_size=25))
def test_balance_is_confirmed_earnings_minus_spends_and_replay_never_double_credits(store, authority, ops):
    run = next(_RUNS)  # ids unique per example: hypothesis may generate the same values again
    sent: list[tuple[dict, object]] = []
    forger = Ed25519PrivateKey.generate()
    with store.write() as conn:
        start_bob = authority.balance(conn, BOB, CODE, TODAY)
    for n, (kind, a, b) in enumerate(ops):
        if kind == "replay":
            if not sent:
                continue
            event, first = sent[a % len(sent)]
        else:
            days_ago = a if isinstance(a, int) else 0
            event = {"id": f"run{run}-{n}", "kind": kind, "day": (TODAY - timedelta(days=days_ago)).isoformat(),
                     "quantity": b}
            if kind == "health_class":
                event |= {"quantity": 1, "day": TODAY.isoformat(),
                          "qr": qr(authority, f"ev-{run}-{a}", forger if b else None)}
            elif kind == "donation":
                event |= {"day": TODAY.isoformat(), **({"toResident": a} if a == BOB else {"toCause": a})}
            elif kind == "ride_fare":
                event |= {"day": TODAY.isoformat(), "rideId": f"ride-{a}"}
            first = None
        with store.write() as conn:
            before = authority.balance(conn, ALICE, CODE, TODAY)
            verdict = authority.submit(conn, ALICE, CODE, event, TODAY)
            after = authority.balance(conn, ALICE, CODE, TODAY)
        if first is not None:  # a replay: same answer, no change
            assert verdict == first and after == before
            continue
        sent.append((event, verdict))
        assert after == before + verdict.points and after >= 0
        if verdict.status == "rejected":
            assert verdict.points == 0 and verdict.reason
        if kind in ("donation", "ride_fare") and verdict.status == "confirmed":
            assert verdict.points == -b
        if kind == "health_class" and b:
            assert verdict.reason == "bad_signature"
        if kind == "donation" and a == "nowhere":
            assert verdict.reason == "unknown_recipient"
    with store.write() as conn:
        assert confirmed_sum(store, ALICE) == authority.balance(conn, ALICE, CODE, TODAY)
    received = sum(-v.points for e, v in sent if e.get("toResident") == BOB and v.status == "confirmed")
    with store.write() as conn:
        assert authority.balance(conn, BOB, CODE, TODAY) == start_bob + received == confirmed_sum(store, BOB)
        # per-day caps hold whatever was sent
        for days_ago in range(4):
            day = (TODAY - timedelta(days=days_ago)).isoformat()
            steps = conn.execute(select(points_entry.c.points).where(
                points_entry.c.sub == ALICE, points_entry.c.day == day, points_entry.c.kind == "steps")).scalars()
            assert sum(steps) <= 10


def test_same_event_qr_twice_and_over_cap_steps_are_rejected_with_reasons(store, authority):
    text = qr(authority, "walk-rally-1")
    with store.write() as conn:
        first = authority.submit(conn, DAVE, CODE, {"id": "e1", "kind": "health_class", "day": TODAY.isoformat(),
                                                     "quantity": 1, "qr": text}, TODAY)
        again = authority.submit(conn, DAVE, CODE, {"id": "e2", "kind": "health_class", "day": TODAY.isoformat(),
                                                     "quantity": 1, "qr": text}, TODAY)
        bob = authority.submit(conn, BOB, CODE, {"id": "e1", "kind": "health_class", "day": TODAY.isoformat(),
                                                 "quantity": 1, "qr": text}, TODAY)
        steps = authority.submit(conn, DAVE, CODE, {"id": "s1", "kind": "steps", "day": TODAY.isoformat(),
                                                     "quantity": 250_000}, TODAY)
        old = authority.submit(conn, DAVE, CODE, {"id": "s2", "kind": "steps", "day": "2001-01-01",
                                                   "quantity": 5_000}, TODAY)
        junk = authority.submit(conn, DAVE, CODE, {"kind": "steps"}, TODAY)
    assert (first.status, first.points) == ("confirmed", 20)
    assert (again.status, again.reason) == ("rejected", "already_claimed")
    assert bob.status == "confirmed"  # another resident at the same class
    assert (steps.status, steps.reason) == ("rejected", "over_daily_limit")
    assert old.reason == "too_old" and junk.reason == "invalid"


def test_coupons_are_single_use_and_forgeries_refused(store, authority):
    now = time.time()
    with store.write() as conn:
        authority.submit(conn, BOB, CODE, {"id": "ck", "kind": "checkup", "day": TODAY.isoformat(), "quantity": 1},
                         TODAY)
        before = authority.balance(conn, BOB, CODE, TODAY)
        coupon = authority.issue_coupon(conn, BOB, CODE, "req-1", 50, now)
        assert authority.issue_coupon(conn, BOB, CODE, "req-1", 50, now) == coupon  # retried request
        assert authority.balance(conn, BOB, CODE, TODAY) == before - 50
        with pytest.raises(Refused) as poor:
            authority.issue_coupon(conn, BOB, CODE, "req-2", 10**4, now)
        assert poor.value.reason in ("insufficient", "invalid")
    with store.write() as conn:
        assert authority.redeem_coupon(conn, BOB, CODE, coupon, now).points == 50
    with store.write() as conn, pytest.raises(Refused) as used:
        authority.redeem_coupon(conn, BOB, CODE, coupon, now)
    assert used.value.reason == "already_used"
    fake = make_coupon_qr(Ed25519PrivateKey.generate(), Coupon("cfake", CODE, 5000, int(now), int(now) + 600))
    with store.write() as conn, pytest.raises(Refused) as bad:
        authority.redeem_coupon(conn, BOB, CODE, fake, now)
    assert bad.value.reason == "unknown_signer" and bad.value.status == 400


def test_points_lapse_after_the_validity_period(store, authority):
    with store.write() as conn:
        authority.set_rules(conn, CODE, {**_rules_json(authority, conn), "validityDays": 2})
        verdict = authority.submit(conn, "sub-carol", CODE, {"id": "c1", "kind": "checkup",
                                                             "day": (TODAY - timedelta(days=1)).isoformat(),
                                                             "quantity": 1}, TODAY)
        assert verdict.points == 100
        assert authority.balance(conn, "sub-carol", CODE, TODAY) == 100
        assert authority.balance(conn, "sub-carol", CODE, TODAY + timedelta(days=1)) == 0
        assert authority.balance(conn, "sub-carol", CODE, TODAY + timedelta(days=3)) == 0  # lapsed once
        authority.set_rules(conn, CODE, {**_rules_json(authority, conn), "validityDays": 365})
    assert confirmed_sum(store, "sub-carol") == 0


def _rules_json(authority: PointsAuthority, conn) -> dict:
    return authority.rules(conn, CODE).to_json()


def test_donations_reach_only_consenting_residents_and_ids_never_collide(store, authority):
    with store.write() as conn:
        authority.submit(conn, DAVE, CODE, {"id": "d-checkup", "kind": "checkup", "day": TODAY.isoformat(), "quantity": 1}, TODAY)
        gift = {"kind": "donation", "day": TODAY.isoformat(), "quantity": 1}
        to_carol = authority.submit(conn, DAVE, CODE, {**gift, "id": "d-carol", "toResident": CAROL}, TODAY)
        assert (to_carol.status, to_carol.reason) == ("rejected", "unknown_recipient")
        assert not conn.execute(select(points_entry).where(points_entry.c.sub == CAROL)).first()
        # Long ids that share their first 60 characters used to truncate to one id (a 500).
        long_ids = ["d" * 60 + "0001", "d" * 60 + "0002"]
        # The recipient takes the id a donation's entry used to get: it no longer matters.
        squatter = {"id": f"r:{DAVE[:20]}:{long_ids[0]}"[:64], "kind": "checkup", "day": TODAY.isoformat(), "quantity": 1}
        authority.submit(conn, BOB, CODE, squatter, TODAY)
        before = authority.balance(conn, BOB, CODE, TODAY)
        verdicts = [authority.submit(conn, DAVE, CODE, {**gift, "id": i, "toResident": BOB}, TODAY) for i in long_ids]
        assert [v.status for v in verdicts] == ["confirmed", "confirmed"]
        assert authority.balance(conn, BOB, CODE, TODAY) == before + 2
