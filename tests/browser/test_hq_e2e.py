"""The disaster HQ screen in Chromium, at phone and desktop size, against the real platform: the
city's own districts (a districts.geojson in the region folder) are the areas answers are
counted in, the shelter board shows the households a desk checked in as staying in a car, and
the open SOS shows its name, message and time in the residents' time zone (JST) and its place
on a street map. The app runs in another time zone than the residents' (as a server may)."""
from __future__ import annotations

import io
import re
import shutil
import time
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from app.consent import DataCategory
from app.family import hq_people
from cityos.testing import run_cityos
from protocol.checkin import StayPlace
from tests.browser.conftest import complete_login, on_screen, open_page, snap, snap_on_failure, start_connected_app, stop_app
from tests.conftest import FIXTURES, copy_region
from tests.test_checkin_platform import Desk, Phone, shelter_entity, shelters  # noqa: F401 - shelters is a fixture
from tests.test_family_cityos import Phone as FamilyPhone
from tests.test_points_cityos import Token

SOS_AT = (33.9512, 131.2471)  # east of 131.2467: 東地区 in the fixture districts
SOS_RED = (0xB0, 0x00, 0x00)  # the SOS marker's colour (views.features.family_hq.STATUS_LOOK)
STREET_GREY = (0x5C, 0x6B, 0x7A)  # views.theme.ROAD_MAJOR


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    with run_cityos(tmp_path_factory.mktemp("cityos"), data_dir=data_dir, region="352021",
                    extra_args=["--rate-limit", "0"]) as running:
        yield running


@pytest.fixture(scope="module")
def hq_app(tmp_path_factory, server, ube, shelters):  # noqa: F811
    """A staff app over Ube with the city's districts; a resident's SOS and a desk's car stay sent."""
    data = tmp_path_factory.mktemp("data")
    region = copy_region(ube, data)
    shutil.copy(FIXTURES / "regions" / "districts_sample.geojson", region.folder / "districts.geojson")
    folder = tmp_path_factory.mktemp("seed")
    resident = FamilyPhone(folder / "r.db", server.base_url, "ube-resident-2")
    try:
        resident.consents.grant(DataCategory.SAFETY_STATUS)
        resident.consents.grant(DataCategory.LOCATION)
        resident.book.answer("needHelp", message="2階にいます", lat=SOS_AT[0], lon=SOS_AT[1])
        resident.push()
    finally:
        resident.close()
    phone = Phone(folder, server, Token(server, "ube-resident-1"))
    phone.card = replace(phone.card, stay=StayPlace.IN_CAR)
    phone.platform.register_device(phone.key.public_key())
    phone.platform.fetch_public_keys()
    desk = Desk(folder, "desk", server, Token(server, "ube-staff-1"), shelters[0], [time.time()])
    desk.desk.check_in_text(phone.qr())
    desk.platform.sync_desk(desk.desk)
    assert shelter_entity(server, shelters[0])["inCarHouseholds"]["value"] == 1
    app = start_connected_app(tmp_path_factory.mktemp("app"), server.base_url,
                              env={"MAMORI_DATA_DIR": str(data), "TZ": "America/New_York"})
    yield app
    stop_app(app)


@pytest.fixture(scope="module")
def staff(browser, hq_app):
    """The HQ logs in once (the app keeps the login for every page)."""
    page = open_page(browser, hq_app.url)
    page.get_by_role("tab", name="設定").click()
    page.get_by_role("button", name="アカウントと同意").click()
    page.get_by_role("button", name="ログイン", exact=True).click()
    complete_login(browser, hq_app, "ube-city-1")
    page.get_by_text("としてログイン中", exact=False).first.wait_for(timeout=30_000)
    page.close()
    return hq_app


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_hq_reads_districts_cars_and_sos_on_a_street_map_in_jst(browser, staff, server, size, tmp_path):
    page = open_page(browser, staff.url + "/family/hq", size,
                     ready=lambda p: p.get_by_role("button", name="最新の集計を読み込む"))
    try:
        with snap_on_failure(page, f"hq-{size}", staff.log):
            page.get_by_role("button", name="最新の集計を読み込む").click()
            page.get_by_text("地区：市が定めた地区の区域", exact=True).wait_for(timeout=30_000)
            page.get_by_text("東地区: 助けが必要 1", exact=False).wait_for(timeout=30_000)
            page.get_by_text(re.compile(r"車中泊 1世帯（3人）")).wait_for(timeout=30_000)
            when = _sos_time(server, tmp_path)
            page.get_by_text(re.compile(rf"助けが必要 · {re.escape(when)} ")).first.wait_for()
            page.get_by_text("2階にいます", exact=False).first.wait_for()
            sos_map = page.get_by_label("救助要請の場所の地図（1件）")
            on_screen(sos_map)
            _wait_for_pixels(page, sos_map, SOS_RED, "the SOS marker")  # a canvas: its marker is seen, not read
            _wait_for_pixels(page, sos_map, STREET_GREY, "the streets", at_least=2000)
            snap(page, "hq-sos-map")
    finally:
        page.close()


def _sos_time(server, folder) -> str:
    """The SOS's time as a resident in Japan reads it (the app itself runs in New York time)."""
    reader = FamilyPhone(folder / "hq-reader.db", server.base_url, "ube-city-1")
    try:
        [person] = [p for p in hq_people(reader.family.client.hq_people(sos_only=True)) if p.name == "宇部 花子"]
        return person.sos.observed_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%m/%d %H:%M")  # type: ignore[union-attr]
    finally:
        reader.close()


def _wait_for_pixels(page, locator, colour: tuple[int, int, int], what: str, at_least: int = 20, timeout_s: float = 15) -> None:
    """Poll screenshots of ``locator`` until at least ``at_least`` pixels are ``colour`` (±24 per channel)."""
    deadline = time.monotonic() + timeout_s
    found = 0
    while time.monotonic() < deadline:
        image = Image.open(io.BytesIO(locator.screenshot())).convert("RGB")
        found = sum(1 for px in image.get_flattened_data() if all(abs(a - b) <= 24 for a, b in zip(px, colour, strict=True)))
        if found >= at_least:
            return
        page.wait_for_timeout(300)
    raise AssertionError(f"{what} not drawn on the map: {found} pixels of {colour}")
