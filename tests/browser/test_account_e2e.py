"""Log in to the reference platform through a real browser, opt in, and see the platform
record the consent — the whole path a resident takes, on loopback."""
from __future__ import annotations

import json
import time

import httpx
import pytest

from app.devicekeys import FileKeyStore
from cityos.testing import login as platform_login
from cityos.testing import run_cityos
from tests.browser.conftest import open_page, snap, start_app, stop_app


@pytest.fixture(scope="module")
def platform(tmp_path_factory, data_dir):
    with run_cityos(tmp_path_factory.mktemp("cityos"), data_dir=data_dir, region="352021") as server:
        yield server


@pytest.fixture(scope="module")
def connected_app(tmp_path_factory, platform):
    tmp = tmp_path_factory.mktemp("app")
    opened = tmp / "opened-url.txt"
    # The app opens the "system browser" with webbrowser.open; this one only hands the URL
    # to the test, which then opens it in the real Chromium below.
    fake_browser = tmp / "browser.sh"
    fake_browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n')
    fake_browser.chmod(0o755)
    app = start_app(tmp / "mamori.sqlite", "--platform-url", platform.base_url, env={"BROWSER": f"{fake_browser} %s"})
    app.opened = opened
    yield app
    stop_app(app)


def wait_for_file(path, timeout=20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError("the app never opened the login page")


def test_login_opt_in_and_platform_records_consent(browser, connected_app, platform):
    page = open_page(browser, connected_app.url)
    page.get_by_role("tab", name="設定").click()
    page.get_by_role("button", name="アカウントと同意").click()
    page.get_by_text("ログインしていません", exact=False).wait_for()
    page.get_by_role("button", name="ログイン", exact=True).click()

    login_page = browser.new_page()
    login_page.goto(wait_for_file(connected_app.opened))
    login_page.get_by_label("ユーザー名 / Username").fill("ube-resident-1")
    login_page.get_by_label("パスワード / Password").fill("mamori-demo")
    login_page.get_by_role("button", name="ログイン / Log in").click()
    login_page.wait_for_load_state()
    login_page.close()

    page.get_by_text("宇部 一郎 としてログイン中").first.wait_for(timeout=30_000)
    page.get_by_role("switch", name="安否情報").click()
    page.get_by_text("安否情報: ", exact=False).first.wait_for()
    snap(page, "account-consent")

    token = platform_login(platform, "ube-resident-1")["access_token"]
    deadline = time.monotonic() + 30
    granted = []
    while time.monotonic() < deadline and not granted:
        granted = httpx.get(f"{platform.base_url}/cityos/v1/consents", headers={"Authorization": f"Bearer {token}"}).json()
        time.sleep(0.5)
    assert [g["category"] for g in granted] == ["safety_status"]
    # The app's tokens live in the key file beside the store, never in the log or the database.
    store = connected_app.log.parent / "mamori.sqlite"
    tokens = json.loads(FileKeyStore(store.with_name("mamori.keys")).get("mamori.oidc.tokens"))
    secrets = [tokens["access_token"], tokens["refresh_token"]]
    log_text = connected_app.log.read_text()
    db_bytes = b"".join(p.read_bytes() for p in store.parent.glob("mamori.sqlite*"))
    for secret in secrets:
        assert secret[-24:] not in log_text and secret[-24:].encode() not in db_bytes
