"""Log in to the reference platform through a real browser, opt in, and see the platform
record the consent — the whole path a resident takes, on loopback."""
from __future__ import annotations

import json
import time

import httpx
import pytest

from app.devicekeys import FileKeyStore, key_file
from cityos.testing import login as platform_login
from cityos.testing import run_cityos
from tests.browser.conftest import complete_login, open_page, snap, start_connected_app, stop_app


@pytest.fixture(scope="module")
def platform(tmp_path_factory, data_dir):
    with run_cityos(tmp_path_factory.mktemp("cityos"), data_dir=data_dir, region="352021") as server:
        yield server


@pytest.fixture(scope="module")
def connected_app(tmp_path_factory, platform):
    app = start_connected_app(tmp_path_factory.mktemp("app"), platform.base_url)
    yield app
    stop_app(app)


def test_login_opt_in_and_platform_records_consent(browser, connected_app, platform):
    page = open_page(browser, connected_app.url)
    page.get_by_role("tab", name="設定").click()
    page.get_by_role("button", name="アカウントと同意").click()
    page.get_by_text("ログインしていません", exact=False).wait_for()
    page.get_by_role("button", name="ログイン", exact=True).click()

    complete_login(browser, connected_app, "ube-resident-1")

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
    # The app's tokens live in the store's own key file, never in the log or the database.
    store = connected_app.log.parent / "mamori.sqlite"
    tokens = json.loads(FileKeyStore(key_file(store)).get("mamori.oidc.tokens"))
    secrets = [tokens["access_token"], tokens["refresh_token"]]
    log_text = connected_app.log.read_text()
    db_bytes = b"".join(p.read_bytes() for p in store.parent.glob("mamori.sqlite*") if p != key_file(store))
    for secret in secrets:
        assert secret[-24:] not in log_text and secret[-24:].encode() not in db_bytes
