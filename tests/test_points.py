"""Health points on the device: ledger, rules, CSV import, charts, signed QR codes, anti-fraud."""
from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.devicekeys import MemoryKeyStore
from app.points import (
    COUPON_SIGNER,
    EVENT_SIGNER,
    Activity,
    AlreadyClaimed,
    BadSignature,
    ConsentNeeded,
    Coupon,
    CsvImportError,
    DayTally,
    EventQr,
    Expired,
    InsufficientPoints,
    InvalidEntry,
    MalformedQr,
    NotAPointsQr,
    OverDailyLimit,
    PointsLedger,
    Rules,
    TooOld,
    TrustedKeys,
    UnknownSigner,
    WrongMunicipality,
    credit,
    default_rules,
    expired_total,
    make_coupon_qr,
    make_event_qr,
    parse_steps_csv,
    verify_coupon_qr,
)
from offline.store import open_store

CODE = "352021"
NOW = datetime(2025, 6, 18, 3, 0, tzinfo=UTC)  # 12:00 JST, a Wednesday
TODAY = date(2025, 6, 18)


@pytest.fixture()
def consent() -> dict[str, bool]:
    return {"granted": True}


@pytest.fixture()
def ledger(tmp_path, consent) -> PointsLedger:
    db = open_store(tmp_path / "app.db")
    book = PointsLedger(db, MemoryKeyStore(), CODE, lambda: consent["granted"], clock=lambda: NOW)
    book.cache_rules(default_rules(CODE))
    return book


@pytest.fixture()
def platform_key(ledger) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    TrustedKeys(ledger.db).add(key.public_key(), EVENT_SIGNER, CODE)
    TrustedKeys(ledger.db).add(key.public_key(), COUPON_SIGNER, CODE)
    return key


def event_qr(key: Ed25519PrivateKey, event_id: str = "class-0618", activity: Activity = Activity.HEALTH_CLASS,
             code: str = CODE, start: datetime = NOW - timedelta(hours=1), hours: int = 3) -> str:
    return make_event_qr(key, EventQr(event_id, code, activity, "ウォーキング教室", int(start.timestamp()),
                                      int((start + timedelta(hours=hours)).timestamp())))


# --- rules arithmetic ------------------------------------------------------------------------------

def test_steps_are_a_level_capped_per_day_and_implausible_totals_are_refused():
    rule = default_rules(CODE).rule(Activity.STEPS)
    first = credit(rule, Activity.STEPS, DayTally(), 4_500)
    assert (first.points, first.tally) == (4, DayTally(4_500, 4))
    assert credit(rule, Activity.STEPS, first.tally, 4_500).points == 0  # same total again: nothing
    assert credit(rule, Activity.STEPS, first.tally, 30_000).points == 6  # capped at 10 a day
    assert credit(rule, Activity.STEPS, first.tally, 100_001).reason == "over_daily_limit"


def test_counted_activities_respect_cap_and_plausible_maximum():
    rule = default_rules(CODE).rule(Activity.BLOOD_PRESSURE)  # 1 point, cap 2, at most 6 logs
    tally, earned = DayTally(), []
    for _ in range(6):
        step = credit(rule, Activity.BLOOD_PRESSURE, tally, 1)
        tally, earned = step.tally, [*earned, step.points]
    assert earned == [1, 1, 0, 0, 0, 0]
    assert credit(rule, Activity.BLOOD_PRESSURE, tally, 1).reason == "over_daily_limit"


def test_expiry_is_fifo_after_the_validity_period():
    d = date(2025, 1, 1)
    entries = [(d, 100), (d + timedelta(days=10), 50), (d + timedelta(days=20), -120)]
    assert expired_total(entries, 365, d + timedelta(days=364)) == 0
    assert expired_total(entries, 365, d + timedelta(days=365)) == 0  # the first lot was spent
    assert expired_total(entries, 365, d + timedelta(days=375)) == 30  # 30 left of the second lot


def test_rules_round_trip_and_strict_parse():
    rules = default_rules(CODE)
    assert Rules.from_json(rules.to_json()) == rules
    broken = rules.to_json() | {"validityDays": "365"}
    with pytest.raises(InvalidEntry, match="validityDays"):
        Rules.from_json(broken)
    future = rules.to_json()
    future["activities"]["yoga_at_home"] = {"points": 1, "unit": 1, "dailyCap": 1, "maxPerDay": 1}
    assert Activity.STEPS in Rules.from_json(future).activities  # unknown activities are ignored


# --- the device ledger ------------------------------------------------------------------------------

def test_steps_blood_pressure_checkup_are_pending_with_provisional_points(ledger):
    ledger.record_steps(TODAY, 6_200)
    again = ledger.record_steps(TODAY, 6_200)  # same total twice: the same entry
    assert ledger.record_steps(TODAY, 12_000).points == 4
    bp = ledger.record_blood_pressure(TODAY, 128, 82, 70)
    assert ledger.record_checkup(TODAY).points == 100
    assert ledger.record_checkup(TODAY).seq == ledger.record_checkup(TODAY).seq
    balance = ledger.balance()
    assert (balance.confirmed, balance.pending_earned, balance.available) == (0, 6 + 4 + 1 + 100, 0)
    assert balance.status_key == "points.balance.pending"
    assert again.status == "pending" and bp.detail["systolic"] == 128
    sent = ledger.pending_payloads(10)
    assert len(sent) == 4 and all("systolic" not in p and "source" not in p for p in sent)  # readings stay here


def test_health_data_is_sealed_at_rest(ledger, tmp_path):
    ledger.record_blood_pressure(TODAY, 173, 109)
    ledger.record_steps(TODAY, 54_321)
    raw = sqlite3.connect(tmp_path / "app.db")
    dump = "\n".join(raw.iterdump())
    # Ciphertext (dumped as X'<hex>') and random hex ids may hold "173" by chance: the numbers are
    # looked for as whole tokens in the text, and as their ASCII bytes inside the blobs.
    blobs = re.findall(r"X'([0-9A-F]*)'", dump)
    text = re.sub(r"X'[0-9A-F]*'", "X''", dump)
    for plain in ("173", "109", "54321", "54_321"):
        assert not re.search(rf"(?<![0-9A-Za-z]){plain}(?![0-9A-Za-z])", text)
        assert not any(plain.encode().hex().upper() in blob for blob in blobs)
    assert ledger.steps_on(TODAY) == 54_321


def test_bad_input_is_refused_with_a_clear_error_and_nothing_stored(ledger):
    with pytest.raises(InvalidEntry, match="systolic"):
        ledger.record_blood_pressure(TODAY, 400, 80)
    with pytest.raises(InvalidEntry, match="diastolic"):
        ledger.record_blood_pressure(TODAY, 90, 120)
    with pytest.raises(InvalidEntry, match="future"):
        ledger.record_steps(TODAY + timedelta(days=1), 100)
    with pytest.raises(OverDailyLimit) as over:
        ledger.record_steps(TODAY, 150_000)
    assert over.value.key == "points.error.over_daily_limit"
    with pytest.raises(TooOld):
        ledger.record_steps(TODAY - timedelta(days=400), 5_000)
    with pytest.raises(InvalidEntry):
        ledger.record_steps(TODAY, -1)
    assert ledger.history() == []


def test_spending_needs_consent_and_confirmed_points(ledger, consent):
    consent["granted"] = False
    ledger.record_steps(TODAY, 9_000)
    assert ledger.balance().status_key == "points.balance.device_only"
    with pytest.raises(ConsentNeeded):
        ledger.pay_ride_fare("ride-1", 5)
    consent["granted"] = True
    with pytest.raises(InsufficientPoints):  # pending points cannot be spent
        ledger.pay_ride_fare("ride-1", 5)
    [earn] = ledger.pending_payloads(1)
    ledger.apply_platform_entries([{"id": earn["id"], "status": "confirmed", "points": 9, "reason": None}])
    fare = ledger.pay_ride_fare("ride-1", 5)
    assert ledger.pay_ride_fare("ride-1", 5).seq == fare.seq  # the hook never charges twice
    assert ledger.balance().available == 4
    with pytest.raises(InvalidEntry, match="cause"):
        ledger.donate(3, to_cause="not-a-cause")
    with pytest.raises(InsufficientPoints):
        ledger.donate(5, to_cause="disaster_fund")
    assert ledger.donate(4, to_cause="disaster_fund").points == -4


def test_platform_verdicts_are_final_and_rejections_carry_a_reason(ledger):
    ledger.record_steps(TODAY, 8_000)
    [sent] = ledger.pending_payloads(5)
    rejected = {"id": sent["id"], "status": "rejected", "points": 0, "reason": "over_daily_limit"}
    assert ledger.apply_platform_entries([rejected]) == 1
    assert ledger.apply_platform_entries([rejected | {"status": "confirmed", "points": 8}]) == 0
    entry = ledger.get(sent["id"])
    assert (entry.status, entry.points, entry.reason_key) == ("rejected", 0, "points.reject.over_daily_limit")
    assert ledger.steps_on(TODAY) == 0  # a rejected total leaves the steps chart


def test_platform_entries_and_charts(ledger):
    monday = TODAY - timedelta(days=TODAY.weekday())
    ledger.apply_platform_entries([
        {"id": "x:1", "kind": "steps", "day": (monday - timedelta(days=1)).isoformat(), "quantity": 7_000,
         "points": 7, "status": "confirmed"},
        {"id": "x:2", "kind": "donation_received", "day": TODAY.isoformat(), "quantity": 20, "points": 20,
         "status": "confirmed"},
        {"id": "x:3", "kind": "expiry", "day": TODAY.isoformat(), "quantity": 5, "points": -5, "status": "confirmed"},
    ])
    ledger.record_steps(TODAY, 10_500)
    assert ledger.balance().confirmed == 22
    days = ledger.daily_chart(monday - timedelta(days=1), TODAY)
    assert (days[0].steps, days[0].points) == (7_000, 7)
    assert days[-1].start == TODAY and (days[-1].steps, days[-1].points) == (10_500, 30)
    weeks = ledger.weekly_chart(monday - timedelta(days=3), TODAY)
    assert [w.start for w in weeks] == [monday - timedelta(days=7), monday]
    assert [(w.steps, w.points) for w in weeks] == [(7_000, 7), (10_500, 30)]


# --- CSV import ------------------------------------------------------------------------------------------

def test_csv_formats(ledger):
    simple = "date,steps\n2025-06-16,8000\n2025-06-17,12000\n\n"
    fit = "Date,Move Minutes count,Calories (kcal),Step count\n2025-06-16,30,1800,8123\n2025-06-17,10,1700,\n"
    apple = ("type,sourceName,unit,startDate,endDate,value\n"
             "HKQuantityTypeIdentifierStepCount,iPhone,count,2025-06-16 08:00:00 +0900,2025-06-16 08:10:00 +0900,1200\n"
             "HKQuantityTypeIdentifierHeartRate,Watch,count/min,2025-06-16 08:00:00 +0900,2025-06-16 08:00:00 +0900,72\n"
             "HKQuantityTypeIdentifierStepCount,Watch,count,2025-06-16 18:00:00 +0900,2025-06-16 18:30:00 +0900,3400\n")
    assert parse_steps_csv("\ufeff" + simple) == {date(2025, 6, 16): 8000, date(2025, 6, 17): 12000}
    assert parse_steps_csv(fit) == {date(2025, 6, 16): 8123}
    assert parse_steps_csv(apple) == {date(2025, 6, 16): 4600}
    report = ledger.import_steps_csv("date,steps\n2024-01-01,5000\n" + simple.split("\n", 1)[1])
    assert (report.added, report.unchanged, report.too_old) == (2, 0, 1)
    assert ledger.import_steps_csv(simple).added == 0  # importing the same file twice adds nothing


@pytest.mark.parametrize(("text", "where"), [
    ("name,value\n1,2\n", "line 1"),
    ("date,steps\n2025-06-16,8000\n2025-13-01,100\n", "line 3"),
    ("date,steps\n2025-06-16,lots\n", "line 2"),
    ("date,steps\n", "no step counts"),
])
def test_csv_errors_name_the_line_and_import_nothing(ledger, text, where):
    with pytest.raises(CsvImportError, match=where):
        ledger.import_steps_csv(text)
    assert ledger.history() == []


def test_csv_with_an_implausible_day_imports_nothing(ledger):
    with pytest.raises(OverDailyLimit, match="2025-06-17"):
        ledger.import_steps_csv("date,steps\n2025-06-16,8000\n2025-06-17,250000\n")
    assert ledger.history() == []


# --- event QR and coupons ----------------------------------------------------------------------------------

def test_event_qr_earns_once(ledger, platform_key):
    qr = event_qr(platform_key)
    entry = ledger.scan_event_qr(qr)
    assert (entry.kind, entry.points, entry.detail["title"]) == ("health_class", 20, "ウォーキング教室")
    assert "qr" not in entry.detail
    with pytest.raises(AlreadyClaimed) as again:
        ledger.scan_event_qr(qr)
    assert again.value.key == "points.error.already_claimed"
    drill = ledger.scan_event_qr(event_qr(platform_key, "drill-0618", Activity.EVACUATION_DRILL))
    assert drill.points == 30 and ledger.pending_payloads(5)[-1]["qr"].startswith("MPE1:")


def test_forged_altered_foreign_and_expired_event_qrs_are_rejected(ledger, platform_key):
    forger = Ed25519PrivateKey.generate()
    with pytest.raises(UnknownSigner):
        ledger.scan_event_qr(event_qr(forger))
    good = event_qr(platform_key)
    body = good[5:]
    altered = good[:5] + body[:20] + ("0" if body[20] != "0" else "1") + body[21:]
    with pytest.raises((BadSignature, MalformedQr)):
        ledger.scan_event_qr(altered)
    with pytest.raises(WrongMunicipality):
        ledger.scan_event_qr(event_qr(platform_key, code="072028"))
    with pytest.raises(Expired):
        ledger.scan_event_qr(event_qr(platform_key, start=NOW - timedelta(days=2)))
    coupon = make_coupon_qr(platform_key, Coupon("c1", CODE, 100, int(NOW.timestamp()), int(NOW.timestamp()) + 60))
    with pytest.raises(NotAPointsQr, match="coupon"):
        ledger.scan_event_qr(coupon)
    with pytest.raises(NotAPointsQr):
        ledger.scan_event_qr("https://example.jp/")
    with pytest.raises(MalformedQr):
        ledger.scan_event_qr("MPE1:!!!")
    assert ledger.history() == []


def test_coupon_signature_is_checked_offline(ledger, platform_key):
    now = int(NOW.timestamp())
    lookup = TrustedKeys(ledger.db).lookup(COUPON_SIGNER)
    real = make_coupon_qr(platform_key, Coupon("c1", CODE, 300, now, now + 86400))
    assert verify_coupon_qr(real, lookup, now).points == 300
    forged = make_coupon_qr(Ed25519PrivateKey.generate(), Coupon("c1", CODE, 3000, now, now + 86400))
    with pytest.raises(UnknownSigner):
        verify_coupon_qr(forged, lookup, now)
    event_key_only = TrustedKeys(ledger.db).lookup(EVENT_SIGNER)  # a coupon is not an event QR
    with pytest.raises(NotAPointsQr):
        verify_coupon_qr(event_qr(platform_key), event_key_only, now)
    with pytest.raises(Expired):
        verify_coupon_qr(real, lookup, now + 2 * 86400)


def test_every_message_key_exists_in_every_language():
    from app import points
    from app.i18n import LANGUAGES, messages

    keys = {cls.key for cls in vars(points).values() if isinstance(cls, type) and issubclass(cls, points.PointsError)}
    keys |= set(points.REJECT_KEYS.values()) | {points.reject_key("something new")}
    keys |= {f"points.balance.{s}" for s in ("confirmed", "pending", "device_only")}
    keys |= {f"points.kind.{k}" for k in [*(a.value for a in Activity), "coupon", "donation", "ride_fare",
                                          "donation_received", "expiry"]}
    for lang in LANGUAGES:
        assert keys <= set(messages(lang)), f"{lang}: missing {sorted(keys - set(messages(lang)))}"


def test_a_malformed_platform_answer_applies_nothing(ledger):
    ledger.record_steps(TODAY, 8_000)
    [sent] = ledger.pending_payloads(1)
    good = {"id": sent["id"], "status": "confirmed", "points": 8}
    for bad in ({"id": "x:9", "status": "won", "points": 1, "kind": "steps", "day": "2025-06-01"},
                {"id": "x:9", "status": "confirmed", "points": "8", "kind": "steps", "day": "2025-06-01"},
                {"id": "x:9", "status": "confirmed", "points": 1}):
        with pytest.raises(InvalidEntry, match=r"nothing was applied|without kind"):
            ledger.apply_platform_entries([good, bad])
        assert ledger.get(sent["id"]).status == "pending"
