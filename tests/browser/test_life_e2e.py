"""The Life tab in Chromium against the real platform: a logged-in resident earns health
points, sees the platform confirm them, issues a coupon QR; books a ride, watches its status
advance and cancels it."""
from __future__ import annotations

import os
import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from cityos.testing import login as platform_login
from cityos.testing import run_cityos
from tests.browser.conftest import complete_login, on_screen, open_page, snap, snap_on_failure, start_connected_app, stop_app

RESIDENT = "ube-resident-1"


@pytest.fixture(scope="module")
def platform(tmp_path_factory, data_dir):
    # Simulated vehicles run 10× faster, so a ride goes assigned → arriving in seconds.
    before = os.environ.get("MAMORI_RIDE_TIME_SCALE")
    os.environ["MAMORI_RIDE_TIME_SCALE"] = "10"
    try:
        with run_cityos(tmp_path_factory.mktemp("cityos"), data_dir=data_dir, region="352021") as server:
            yield server
    finally:
        if before is None:
            os.environ.pop("MAMORI_RIDE_TIME_SCALE", None)
        else:
            os.environ["MAMORI_RIDE_TIME_SCALE"] = before


@pytest.fixture(scope="module")
def resident_page(browser, tmp_path_factory, platform):
    """One app, one page: the resident logs in through the platform's page and opts in to
    health activity and ride history on the account screen."""
    app = start_connected_app(tmp_path_factory.mktemp("app"), platform.base_url)
    page = open_page(browser, app.url)
    page.app_log, page.app_url = app.log, app.url  # the log is printed when a step fails
    started = time.monotonic()
    page.get_by_role("tab", name="設定").click()
    page.get_by_role("button", name="アカウントと同意").click()
    page.get_by_role("button", name="ログイン", exact=True).click()
    complete_login(browser, app, RESIDENT)
    page.get_by_text("宇部 一郎 としてログイン中").first.wait_for(timeout=30_000)
    page.get_by_role("switch", name="健康活動").click()
    page.get_by_text("健康活動: ", exact=False).first.wait_for()  # the consent history shows the grant
    page.get_by_role("switch", name="乗車の履歴").click()
    page.get_by_text("乗車の履歴: ", exact=False).first.wait_for()
    _wait_for_platform_consents(platform, {"health_activity", "ride_history"})
    page.get_by_role("button", name="戻る").click()
    print(f"\n[life e2e] login + consent: {time.monotonic() - started:.1f} s")
    yield page
    page.close()
    stop_app(app)


def _wait_for_platform_consents(platform, wanted: set[str], timeout: float = 30.0) -> None:
    token = platform_login(platform, RESIDENT)["access_token"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        granted = httpx.get(f"{platform.base_url}/cityos/v1/consents", headers={"Authorization": f"Bearer {token}"}).json()
        if wanted <= {g["category"] for g in granted}:
            return
        time.sleep(0.3)
    raise AssertionError(f"the platform never received the consents {wanted}: it has {granted}")


def test_points_log_steps_confirmed_by_platform_then_coupon(resident_page):
    with snap_on_failure(resident_page, "life-points", resident_page.app_log):
        _earn_confirm_coupon(resident_page)


def _earn_confirm_coupon(page) -> None:
    started = time.monotonic()
    page.get_by_role("tab", name="くらし").click()
    page.get_by_role("button", name=re.compile("健康ポイント")).click()
    page.get_by_text("市の残高を確認", exact=False).wait_for(timeout=20_000)  # the first sync is done
    page.get_by_role("button", name="記録してためる").click()
    page.get_by_role("textbox", name="歩数（歩）").click()
    page.get_by_role("textbox", name="歩数（歩）").press_sequentially("8200", delay=30)
    page.get_by_role("button", name="歩数を記録").click()
    page.get_by_text("記録しました（確認待ち +8 pt）").wait_for()
    snap(page, "life-points-earn")
    page.get_by_role("button", name="戻る").click()
    page.get_by_role("button", name="更新").click()
    # The platform confirms the 8 points: the balance changes from 0 to 8 and nothing is pending.
    page.get_by_text("8 pt", exact=True).wait_for(timeout=20_000)
    page.get_by_text("+8 pt・確定").wait_for()
    recorded = time.monotonic()
    snap(page, "life-points-confirmed")

    page.get_by_role("button", name="使う・寄付する").click()
    page.get_by_role("textbox", name="クーポンにするポイント数").click()
    page.get_by_role("textbox", name="クーポンにするポイント数").press_sequentially("5", delay=30)
    page.get_by_role("button", name="クーポンを発行").click()
    page.get_by_role("img", name="5 pt のクーポンQRコード").wait_for(timeout=20_000)
    page.get_by_text("使えるポイント: 3 pt").wait_for()
    snap(page, "life-points-coupon")
    page.get_by_role("button", name="戻る").click()
    page.get_by_text("-5 pt・確定").wait_for(timeout=20_000)  # the coupon's entry, pulled from the platform
    page.get_by_role("button", name="戻る").click()
    page.get_by_role("button", name=re.compile("オンデマンド交通")).wait_for()
    print(f"\n[life e2e] steps→confirmed: {recorded - started:.1f} s, coupon: {time.monotonic() - recorded:.1f} s")


def _choose(page, radio) -> None:
    """Click a radio and wait until the redrawn screen shows it chosen (clicks during a redraw are lost)."""
    radio.click()
    expect(radio).to_be_checked()


def _pick_stop(page, which: str, name: str, nth: int) -> None:
    _choose(page, page.get_by_role("radio", name="乗降場所").nth(nth))
    box = page.get_by_role("textbox", name=f"{which}を名前で探す")
    box.click()
    box.press_sequentially(name, delay=30)
    page.get_by_role("button", name=f"{which}を探す").click()
    _choose(page, page.get_by_role("radio", name=name).first)


def test_rides_book_watch_status_advance_then_cancel(resident_page):
    with snap_on_failure(resident_page, "life-rides", resident_page.app_log):
        _book_watch_cancel(resident_page)


def _book_watch_cancel(page) -> None:
    started = time.monotonic()
    page.get_by_role("tab", name="くらし").click()
    page.get_by_role("button", name=re.compile("健康ポイント.*残高 3 pt")).wait_for()  # the coupon took 5 of 8
    snap(page, "life-tab")
    page.get_by_role("button", name=re.compile("オンデマンド交通")).click()
    page.get_by_text("デモ運行：車両はシミュレーションです", exact=False).first.wait_for()
    page.get_by_role("button", name="乗車を予約").click()
    _pick_stop(page, "乗る場所", "上宇部小学校", 0)
    _pick_stop(page, "降りる場所", "小羽山小学校", 1)
    page.get_by_role("button", name="見積もりを見る").click()
    page.get_by_text(re.compile("お迎え .*運賃 300円")).wait_for(timeout=30_000)  # first use builds the service
    quoted = time.monotonic()
    page.mouse.move(200, 500)
    page.mouse.wheel(0, 5000)
    snap(page, "life-rides-quote")
    pay = on_screen(page.get_by_role("checkbox", name=re.compile("運賃をポイントで払う")))
    pay.click()  # on its label: the whole tile toggles it (views.widgets.labelled)
    expect(pay).to_be_checked()
    pay.click()
    expect(pay).not_to_be_checked()
    page.get_by_role("button", name="この内容で予約する").click()
    page.get_by_text("予約を送信しました。", exact=False).wait_for(timeout=20_000)
    page.get_by_text("配車済み", exact=True).wait_for()
    booked = time.monotonic()
    snap(page, "life-rides-assigned")
    # The screen polls: the simulated vehicle comes close and the status moves on by itself.
    page.get_by_text("まもなく到着", exact=True).wait_for(timeout=30_000)
    advanced = time.monotonic()
    snap(page, "life-rides-arriving")
    page.get_by_role("button", name="キャンセル").click()  # asks first, and says what it costs
    page.get_by_text("この予約をキャンセルしますか？ キャンセル料はかかりません。", exact=False).wait_for()
    snap(page, "life-rides-cancel-ask")
    page.get_by_role("button", name="はい、キャンセルする").click()
    page.get_by_text("キャンセルしました。", exact=True).wait_for(timeout=20_000)
    page.get_by_text("キャンセル済み", exact=True).wait_for()
    page.get_by_role("button", name="同じ内容でもう一度予約").wait_for()
    snap(page, "life-rides-cancelled")
    print(f"\n[life e2e] rides: quote {quoted - started:.1f} s, book {booked - quoted:.1f} s, "
          f"assigned→arriving {advanced - booked:.1f} s, cancel {time.monotonic() - advanced:.1f} s")


def test_ride_cancel_asks_first_at_desktop_size(browser, resident_page):
    """The same account on a desktop-size page: rebook the ride just cancelled, say "no" to the
    cancel question once (the ride stays), then cancel it."""
    page = open_page(browser, resident_page.app_url + "/life/rides", "desktop",
                     ready=lambda p: p.get_by_role("button", name="同じ内容でもう一度予約").first)
    try:
        with snap_on_failure(page, "life-rides-desktop", resident_page.app_log):
            page.get_by_role("button", name="同じ内容でもう一度予約").first.click()
            page.get_by_text("配車済み", exact=True).wait_for(timeout=30_000)
            page.get_by_role("button", name="キャンセル", exact=True).click()
            page.get_by_text("この予約をキャンセルしますか？ キャンセル料はかかりません。", exact=False).wait_for()
            snap(page, "life-rides-cancel-ask")
            page.get_by_role("button", name="いいえ、予約を続ける").click()
            page.get_by_role("button", name="キャンセル", exact=True).wait_for()
            expect(page.get_by_text("この予約をキャンセルしますか？", exact=False)).to_have_count(0)
            page.get_by_role("button", name="キャンセル", exact=True).click()
            page.get_by_role("button", name="はい、キャンセルする").click()
            page.get_by_text("キャンセルしました。", exact=True).wait_for(timeout=20_000)
            snap(page, "life-rides-cancelled")
    finally:
        page.close()
