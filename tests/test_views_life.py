"""Life tab screens (health points, rides) built from state and asserted on the control tree."""
from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import flet as ft
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.consent import DataCategory
from app.i18n import messages
from app.points import COUPON_SIGNER, Coupon, TrustedKeys, default_rules, make_coupon_qr
from app.rides import FormProblem, build_request
from tests.fakes import FakeShell
from tests.test_views import choices, texts, unlabelled, walk
from views.features import life, life_points

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def shell(app):
    return FakeShell(app, "/life", defer_threads=True)


def screen_at(app, shell, route: str) -> list[ft.Control]:
    """Go to ``route`` and build its pushed view, as the shell would."""
    assert shell.app is app
    return list(shell.open(route).controls)


def click(controls, label: str) -> None:
    button = next(c for c in walk(controls) if isinstance(c, ft.Button) and label in (c.content, getattr(c.content, "value", None)))
    button.on_click(None)


def type_into(controls, label: str, value: str) -> None:
    field = next(c for c in walk(controls) if isinstance(c, ft.TextField) and c.label == label)
    field.on_change(type("E", (), {"control": type("C", (), {"value": value})()})())


def test_life_tab_offers_points_and_rides_with_status(app, shell):
    controls = life.tab(app, shell)
    tiles = [c for c in walk(controls) if isinstance(c, ft.ListTile)]
    assert [t.title.value for t in tiles] == ["健康ポイント", "オンデマンド交通"]
    assert "残高 0 pt ・この端末だけに保存" in texts(controls)
    tiles[0].on_click(None)
    assert shell.routes == ["/life/points"]
    assert not unlabelled(controls)


def test_points_screen_without_consent_says_points_stay_on_device(app, shell):
    controls = screen_at(app, shell, "/life/points")
    assert any(c.key == "points-device-only" for c in walk(controls))
    assert "0 pt" in texts(controls)
    assert "まだ記録がありません。" in texts(controls)
    assert not shell.page.threads  # no platform, no login: nothing to sync
    assert not unlabelled(controls)


def test_recording_steps_shows_pending_points_in_history_and_chart(app, shell):
    app.points.ledger.cache_rules(default_rules(app.region.code))
    earn = screen_at(app, shell, "/life/points/earn")
    assert not unlabelled(earn)
    type_into(earn, "歩数（歩）", "8,200")
    click(earn, "歩数を記録")
    st = life_points.screen(shell)
    assert (st.message, st.error) == ("記録しました（確認待ち +8 pt）", False)
    assert "steps" not in st.form  # the field is cleared after a success
    main = screen_at(app, shell, "/life/points")
    assert not any(c.key == "points-message" for c in walk(main))  # the message stayed on the earn screen
    all_text = texts(main)
    assert "確認待ち: +8 pt（市で確認されると残高に入ります）" in all_text
    assert any("歩数 8,200歩" in s for s in all_text)
    assert "+8 pt・確認待ち" in all_text
    readout = next(c for c in walk(main) if c.key == "points-chart-values").value
    assert readout.endswith("8,200歩")  # today is the last bar
    assert not unlabelled(main)


def test_bad_input_is_an_error_message_and_keeps_what_was_typed(app, shell):
    earn = screen_at(app, shell, "/life/points/earn")
    type_into(earn, "歩数（歩）", "たくさん")
    click(earn, "歩数を記録")
    st = life_points.screen(shell)
    assert st.error and st.message == "入力内容を確認してください"
    assert st.form["steps"] == "たくさん"
    again = screen_at(app, shell, "/life/points/earn")
    assert any(c.key == "points-error" for c in walk(again))
    type_into(again, "歩数のCSV（貼り付け）", "date,steps\n2025-04-01,abc\n")
    click(again, "CSVを取り込む")
    assert st.error and "line 2" in st.message


def test_platform_rejection_shows_its_reason(app, shell):
    points = app.points.ledger
    points.cache_rules(default_rules(app.region.code))
    entry = points.record_checkup(points.today())
    points.apply_platform_entries([{"id": entry.id, "status": "rejected", "points": 0, "reason": "too_old"}])
    main = screen_at(app, shell, "/life/points")
    assert "有効期間を過ぎているため取り消されました" in texts(main)
    assert "+0 pt・取り消し" in texts(main)


def test_coupon_shows_a_qr_with_its_amount(app, shell):
    key = Ed25519PrivateKey.generate()
    TrustedKeys(app.db).add(key.public_key(), COUPON_SIGNER, app.region.code)
    now = int(time.time())
    life_points.screen(shell).coupon = make_coupon_qr(key, Coupon("c1", app.region.code, 50, now, now + 86400))
    spend = screen_at(app, shell, "/life/points/spend")
    image = next(c for c in walk(spend) if c.key == "points-coupon-qr")
    assert image.src[:4] == b"\x89PNG" and image.semantics_label == "50 pt のクーポンQRコード"
    assert any(s.startswith("有効期限: ") for s in texts(spend))
    assert not unlabelled(spend)


def test_spending_needs_consent_and_login(app, shell):
    spend = screen_at(app, shell, "/life/points/spend")
    type_into(spend, "クーポンにするポイント数", "10")
    click(spend, "クーポンを発行")
    assert life_points.screen(shell).message == "クーポンの発行にはログインが必要です。"
    app.link.set_consent(DataCategory.HEALTH_ACTIVITY, True)
    spend = screen_at(app, shell, "/life/points/spend")
    type_into(spend, "寄付するポイント数", "10")
    next(c for c in walk(spend) if isinstance(c, ft.RadioGroup)).on_change(
        type("E", (), {"control": type("C", (), {"value": "resident"})()})())
    spend = screen_at(app, shell, "/life/points/spend")
    type_into(spend, "相手の受け取りコード", "someone")
    click(spend, "寄付する")
    assert life_points.screen(shell).message == "ポイントが足りません"


def test_every_key_used_in_life_views_exists():
    used = set()
    for path in (ROOT / "views" / "features").glob("life*.py"):
        used |= set(re.findall(r"\bt\(\"([a-z_]+(?:\.[a-z_]+)+)\"", path.read_text(encoding="utf-8")))
    assert len(used) > 40
    assert used - set(messages("ja")) == set()


# ---- rides -------------------------------------------------------------------------------------
def run_threads(shell) -> None:
    """Run what the screen handed to page.run_thread, here and now."""
    while shell.page.threads:
        fn, args = shell.page.threads.pop(0)
        fn(*args)


def choose(controls, label: str, nth: int = 0) -> None:
    """Pick the radio labelled ``label`` in the ``nth`` group that offers it."""
    found = []
    for group in (c for c in walk(controls) if isinstance(c, ft.RadioGroup)):
        value = next((v for v, text in choices([group.content]) if text == label), None)
        if value is not None:
            found.append((group, value))
    group, value = found[nth]
    group.on_change(type("E", (), {"control": type("C", (), {"value": value})()})())


def test_offline_booking_is_saved_as_not_sent_and_never_confirmed(app, shell):
    from geo.models import LatLon
    from views.features import life_rides

    app.set_home(LatLon(33.9513, 131.2470))
    form = screen_at(app, shell, "/life/rides/book")
    assert any(c.key is None and isinstance(c, ft.RadioGroup) for c in walk(form))
    click(form, "この内容で予約する")
    assert life_rides.screen(shell).message == "乗る場所を選んでください。"
    choose(form, "自宅")
    form = screen_at(app, shell, "/life/rides/book")
    choose(form, "乗降場所", nth=1)  # the drop-off
    form = screen_at(app, shell, "/life/rides/book")
    fixed = ("乗降場所", "避難場所", "自宅", "今すぐ（30分以内）", "時間を指定")
    stops = [text for _, text in choices(form) if text not in fixed]
    assert len(stops) == life_rides.STOP_CHOICES
    choose(form, stops[0])
    type_into(screen_at(app, shell, "/life/rides/book"), "乗る人数", "2")
    form = screen_at(app, shell, "/life/rides/book")
    assert not unlabelled(form)
    click(form, "この内容で予約する")
    assert shell.routes[-1] == "/life/rides" and shell.replaced[-1] == "/life/rides/book"  # Back goes to the status, not the form
    main = screen_at(app, shell, "/life/rides")  # saved on the phone; no platform: the message says it waits
    assert life_rides.screen(shell).message == "この予約はまだ送信されていません。通信が戻ると自動で送ります。確定するまで乗車はできません。"
    all_text = texts(main)
    assert "未送信（まだ予約は確定していません）" in all_text
    assert any(s.startswith(f"自宅 → {stops[0]}") for s in all_text)
    assert any(c.key == "rides-simulated" for c in walk(main))
    assert any(c.key == "rides-logged-out" for c in walk(main)) is False  # no platform configured at all
    assert "予約中の乗車" in all_text and not unlabelled(main)
    assert life.tab(app, shell) and "未送信（まだ予約は確定していません）：" + stops[0] + " まで" in texts(life.tab(app, shell))
    # Cancel asks first and says what it costs; "no" keeps the ride.
    click(main, "キャンセル")
    main = screen_at(app, shell, "/life/rides")
    assert "この予約をキャンセルしますか？ キャンセル料はかかりません。" in texts(main) and not unlabelled(main)
    booking = app.rides.book.history()[0]
    assert life_rides.cancel_terms(app, replace(booking, fare_points=120)).endswith(" 支払いに使う予定の 120 ポイントは使われません。")
    click(main, "いいえ、予約を続ける")
    main = screen_at(app, shell, "/life/rides")
    assert "未送信（まだ予約は確定していません）" in texts(main) and not any(t.startswith("この予約をキャンセル") for t in texts(main))
    # Cancelling a booking that never left the phone is the whole story.
    click(main, "キャンセル")
    click(screen_at(app, shell, "/life/rides"), "はい、キャンセルする")
    run_threads(shell)
    main = screen_at(app, shell, "/life/rides")
    assert "キャンセル済み" in texts(main) and "同じ内容でもう一度予約" in [c.content for c in walk(main) if isinstance(c, ft.Button)]


def test_ride_form_problems_are_named(app, shell):
    from views.features import life_rides

    st = life_rides.screen(shell)
    st.pickup, st.dropoff = "stop", "stop"
    with pytest.raises(FormProblem) as err:
        build_request(app, st)
    assert err.value.key == "rides.form.choose_pickup"
    shelters = app.shelters.search("")[:2]
    st.pickup_stop, st.dropoff_stop = shelters[0].shelter.id, shelters[1].shelter.id
    st.when, st.fields = "later", {"start": "9時"}
    with pytest.raises(FormProblem) as err:
        build_request(app, st)
    assert err.value.key == "rides.form.bad_time"
    st.fields = {"start": "09:30", "passengers": "3", "companions": "1", "wheelchairs": "1"}
    st.behalf, st.fields["behalf_id"] = True, "pseudo-123"
    request = build_request(app, st)
    assert (request.passengers, request.companions, request.wheelchairs, request.on_behalf_of) == (3, 1, 1, "pseudo-123")
    assert request.latest - request.earliest == __import__("datetime").timedelta(minutes=30)
    assert request.pickup.ref == shelters[0].shelter.id and request.pickup.kind.value == "stop"


def test_the_quote_restates_pickup_destination_window_and_an_evacuation_ride(app, shell):
    from datetime import UTC, datetime

    from app.rides import Place, PlaceKind, Quote
    from views.features import life_rides

    at = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    quote = Quote(at, at, 0, 0, True, Place(PlaceKind.SHELTER, 33.95, 131.25, "琴芝小学校"), Place(PlaceKind.STOP, 33.96, 131.24, "上宇部小学校"),
                  at, at, evacuation=True)
    shown = texts(life_rides.quote_card(app, shell, quote))
    assert "上宇部小学校 から 琴芝小学校 まで（10:00〜10:00 にお迎え）" in shown  # the resident's time (JST)
    assert "避難送迎（優先して配車・運賃 0円）" in shown
