"""The family tab in a real browser against the real platform on loopback: a one-tap answer,
a family of two accounts (the second "phone" driven from Python), and a disaster alert that
reaches Home. One app, one page, in order."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from app.consent import DataCategory
from cityos.testing import run_cityos
from tests.browser.conftest import ROOT, complete_login, on_screen, open_page, snap, start_connected_app, stop_app
from tests.test_family_cityos import Phone


@pytest.fixture(scope="module")
def platform(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("cityos")
    with run_cityos(folder, data_dir=data_dir, region="352021", extra_args=["--rate-limit", "0"]) as server:
        server.db_url = f"sqlite:///{folder / 'cityos.sqlite'}"
        yield server


@pytest.fixture(scope="module")
def family_app(tmp_path_factory, platform):
    app = start_connected_app(tmp_path_factory.mktemp("app"), platform.base_url)
    yield app
    stop_app(app)


@pytest.fixture(scope="module")
def ui(browser, family_app):
    page = open_page(browser, family_app.url)
    yield page
    page.close()


def go_tab(ui, tab: str, landmark: str) -> None:
    """Tap the tab until its landmark (a heading, matched whole) shows: a guard, kept from when
    a tap during a background redraw could be lost."""
    for _ in range(3):
        ui.get_by_role("tab", name=tab).click()
        try:
            ui.get_by_text(landmark, exact=True).wait_for(timeout=4_000)
            return
        except PlaywrightTimeout:
            continue  # tap again
    ui.get_by_text(landmark, exact=True).wait_for(timeout=1_000)


def field_text(ui, label: str) -> str:
    """A read-only field's text: Flutter fills the DOM field once it has focus, as a tap gives it."""
    field = on_screen(ui.get_by_role("textbox", name=label))
    for _ in range(40):  # until Flutter has filled it (a fixed 500 ms was too short under load)
        field.click()
        if value := field.input_value():
            return value
        ui.wait_for_timeout(250)
    raise AssertionError(f"the field {label!r} stayed empty")


def test_answer_in_one_tap_offline_first(ui):
    ui.get_by_role("tab", name="家族").click()
    ui.get_by_text("家族と共有するにはログインが必要です", exact=False).wait_for()
    ui.get_by_role("button", name="無事", exact=True).click()
    ui.get_by_text("無事 · たった今", exact=False).first.wait_for()
    ui.get_by_role("button", name="文字で伝える（SMS・LINE）").click()
    assert re.fullmatch(r"安否: 無事 / \d\d:\d\d", field_text(ui, "送る文"))
    snap(ui, "family-answer-offline")


def log_in(browser, ui, family_app, username: str) -> None:
    ui.get_by_role("button", name="ログイン・同意の設定へ").click()
    ui.get_by_role("button", name="ログイン", exact=True).click()
    complete_login(browser, family_app, username)
    ui.get_by_text("としてログイン中", exact=False).first.wait_for(timeout=30_000)
    ui.get_by_role("switch", name="安否情報").click()  # so my own answers reach the platform
    ui.get_by_role("button", name="戻る").click()


def test_family_of_two_accounts(browser, ui, family_app, platform, tmp_path):
    log_in(browser, ui, family_app, "ube-resident-1")
    ui.get_by_role("tab", name="家族").click()
    ui.get_by_text("最終更新", exact=False).wait_for(timeout=20_000)  # the first sync has redrawn the tab
    name = on_screen(ui.get_by_role("textbox", name="新しいグループの名前"))
    name.click()
    name.press_sequentially("宇部家", delay=30)
    ui.get_by_role("button", name="グループを作る").click()
    try:
        ui.get_by_text("グループ: 宇部家").wait_for(timeout=20_000)
    finally:
        snap(ui, "family-group-created")
    ui.get_by_role("button", name="招待する（QR）").click()
    invite = field_text(ui, "招待コード（文字）")
    assert invite.startswith("MF1:"), invite
    snap(ui, "family-invite")

    hanako = Phone(tmp_path / "hanako.db", platform.base_url, "ube-resident-2")
    try:
        hanako.family.join(invite)
        hanako.consents.grant(DataCategory.SAFETY_STATUS)
        hanako.family.share("safety_status", "family", True)
        hanako.book.answer("evacuating", message="公民館へ向かっています")
        hanako.push()
    finally:
        hanako.close()
    ui.get_by_role("button", name="最新にする").click()
    row = ui.get_by_text(re.compile(r"^宇部 花子\s+避難中 · たった今\s+公民館へ向かっています"))
    row.wait_for(timeout=20_000)
    ui.mouse.wheel(0, 700)
    snap(ui, "family-list")


def test_alert_banner_reaches_home(ui, platform):
    issued = subprocess.run(
        [sys.executable, "-m", "cityos.alerts", "--db", platform.db_url, "--municipality", "352021", "--hazard", "flood",
         "--level", "4", "--minutes", "30", "--headline", "厚東川 氾濫危険水位"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert issued.returncode == 0, issued.stderr
    ui.get_by_role("button", name="最新にする").click()  # also asks the sync engine to pull now
    go_tab(ui, "ホーム", "避難情報・警報")
    deadline = time.monotonic() + 30
    banner = ui.get_by_role("button", name="安否を回答する")
    while not banner.count() and time.monotonic() < deadline:
        ui.wait_for_timeout(500)
    try:
        banner.wait_for(timeout=5_000)
    finally:
        snap(ui, "family-alert-home")
    ui.get_by_text("厚東川 氾濫危険水位").wait_for()
    ui.get_by_text("警戒レベル4 避難指示 全員避難").wait_for()
    snap(ui, "family-alert-home")
    banner.click()
    ui.get_by_role("button", name="避難所にいる", exact=True).click()
    ui.get_by_text("避難所にいる · たった今", exact=False).first.wait_for()
    go_tab(ui, "ホーム", "避難情報・警報")
    ui.get_by_text("回答済みです", exact=False).wait_for(timeout=10_000)
