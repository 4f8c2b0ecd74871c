"""The foundation, used the way a resident uses it, in real Chromium."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from geo.regions import default_data_dir, find_region
from tests.browser.conftest import PHONE, check_screen, open_page, snap, start_app, stop_app, tap_canvas


def tsunami_site_count() -> int:
    region = find_region(default_data_dir(), "352021")
    features = json.loads(region.emergency_sites_file.read_text(encoding="utf-8"))["features"]
    return sum(1 for f in features if f["properties"]["津波"] == "1")


def empty_map_spot(page) -> tuple[float, float]:
    """A point on the map far from every shelter marker, so a tap lands on the map itself."""
    area = page.get_by_label("地図（タップで地点を選ぶ）").bounding_box()
    markers = [b for b in (m.bounding_box() for m in page.get_by_role("button", name=")").all()) if b]
    centres = [(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2) for b in markers]
    # Clear of the zoom / position buttons in the top right corner and the credit line at the bottom.
    spots = [(x, y) for x in range(int(area["x"] + 30), int(area["x"] + area["width"] - 80), 20)
             for y in range(int(area["y"] + 40), int(area["y"] + area["height"] - 30), 20)]
    return max(spots, key=lambda p: min(((p[0] - c[0]) ** 2 + (p[1] - c[1]) ** 2 for c in centres), default=1e9))


def test_start_shows_home_in_japanese(page):
    page.get_by_role("tab", name="ホーム").wait_for()
    page.get_by_text("山口県宇部市").first.wait_for()
    page.get_by_text("避難情報・警報", exact=True).wait_for()
    page.get_by_text("このアプリは接続されていないため", exact=False).wait_for()  # no platform: says none can arrive
    snap(page, "home-ja")


def test_switch_language_to_english_and_back(page):
    page.get_by_role("tab", name="設定").click()
    page.get_by_role("radio", name="English").click()
    page.get_by_role("tab", name="Settings").wait_for()
    page.get_by_role("tab", name="Shelters").wait_for()
    snap(page, "settings-en")
    page.get_by_role("radio", name="やさしい にほんご").click()
    page.get_by_role("tab", name="ひなんじょ").wait_for()
    snap(page, "settings-ja-easy")
    page.get_by_role("radio", name="日本語").click()
    page.get_by_role("tab", name="避難所").wait_for()


def test_filter_shelters_by_tsunami_matches_the_data(page):
    page.get_by_role("tab", name="避難所").click()
    page.get_by_text("170件", exact=True).wait_for()
    page.get_by_role("checkbox", name="津波").click()
    page.get_by_text(f"{tsunami_site_count()}件", exact=True).wait_for()
    snap(page, "shelters-tsunami")


def test_search_and_open_a_shelter_detail(page):
    page.get_by_role("tab", name="避難所").click()
    page.get_by_text("170件", exact=True).wait_for()
    search = page.get_by_role("textbox", name="名前・住所で検索")
    search.click()
    search.press_sequentially("鵜の島", delay=30)
    search.press("Enter")
    # Tap a result only once the list is filtered: before that it is far down the full list,
    # off a phone's screen.
    page.get_by_text("170件", exact=True).wait_for(state="hidden")
    page.get_by_role("button", name="鵜の島ふれあいセンター").first.click()
    page.get_by_text("収容人数: 100人").wait_for()
    # GSI lists the facility twice: as a shelter to stay in and as a site rated per hazard.
    if page.get_by_text("指定避難所", exact=True).count():
        page.get_by_role("button", name="指定緊急避難場所としての安全性を見る").click()
    page.get_by_text("指定緊急避難場所", exact=True).wait_for()
    page.get_by_text("津波: 対応").wait_for()
    snap(page, "shelter-detail")


def test_open_map_and_tap_a_shelter(page):
    page.get_by_role("tab", name="避難所").click()
    page.get_by_role("button", name="地図で見る").click()
    page.get_by_label("地図（タップで地点を選ぶ）").wait_for()
    page.get_by_role("button", name="拡大").wait_for()  # the map's own buttons sit on the map
    page.wait_for_timeout(1500)
    snap(page, "map", scroll=False)  # the map fills the screen: the wheel would zoom it away from the markers
    # Markers are named "<shelter> (<suitability>)"; tap one that is on screen.
    marker = page.get_by_role("button", name="(対応)").first
    name = marker.get_attribute("aria-label") or marker.inner_text()
    marker.click()
    page.get_by_text("避難所の詳細").wait_for()
    page.get_by_text(name.split(" (")[0].strip(), exact=True).first.wait_for()


def test_tap_map_to_set_home(page):
    page.get_by_role("tab", name="避難所").click()
    page.get_by_role("button", name="地図で見る").click()
    page.get_by_label("地図（タップで地点を選ぶ）").wait_for()
    page.wait_for_timeout(1000)
    x, y = empty_map_spot(page)
    tap_canvas(page, x, y)
    page.get_by_role("button", name="ここを自宅にする").click()
    page.get_by_role("button", name="戻る").click()
    page.get_by_role("tab", name="ホーム").click()
    page.get_by_text("自宅に近い避難場所（津波）").wait_for()
    page.get_by_role("button", name="m").first.wait_for()  # a nearest-site row with its distance
    snap(page, "home-with-home-set")


def settled_height(page, text: str) -> float:
    """A text's height once two readings 250 ms apart agree (a redraw may still be arriving)."""
    last = -1.0
    for _ in range(40):
        box = page.get_by_text(text, exact=True).bounding_box()
        if box and box["height"] == last:
            return last
        last = box["height"] if box else -1.0
        page.wait_for_timeout(250)
    raise AssertionError(f"{text!r} never settled")


@pytest.fixture(params=["phone", "desktop"])
def own_page(request, browser, tmp_path):
    """A page on an app of its own: the switch changes the app's saved preferences. The page used
    to freeze after the switch now and then (skwasm's text layout never returned; the app now
    runs the CanvasKit renderer)."""
    app = start_app(tmp_path / "mamori.sqlite")
    page = open_page(browser, app.url, request.param)
    try:
        yield page
        check_screen(page)
    finally:  # a frozen page must not leave its app running
        page.close()
        stop_app(app)


def test_large_text_mode(own_page):
    page = own_page
    assert page.evaluate("Boolean(window.flutterCanvasKit)"), "the web client must run CanvasKit, not skwasm"
    page.get_by_role("tab", name="設定").click()
    switch = page.get_by_role("switch", name="大きな文字")
    expect(switch).not_to_be_checked()  # a fresh app starts in normal text
    before = settled_height(page, "言語")
    switch.click()
    for _ in range(40):  # until the redraw with the larger theme arrives
        box = page.get_by_text("言語", exact=True).bounding_box()
        if box and box["height"] > before * 1.2:
            break
        page.wait_for_timeout(250)
    else:
        raise AssertionError(f"the heading never grew from {before} px")
    snap(page, "settings-large-text")
    # The app stays usable after the switch (an animated theme change once froze the client).
    page.get_by_role("tab", name="家族").click()
    safe = page.get_by_role("button", name="無事", exact=True)
    safe.wait_for()
    snap(page, "family-large-text")
    # A text field is as wide as the buttons above it, not the 300 px Flet gives one by default.
    note, button = page.get_by_role("textbox").first.bounding_box(), safe.bounding_box()
    assert note and button and note["width"] >= button["width"] - 20, (note, button)
    page.get_by_role("tab", name="設定").click()
    page.get_by_role("switch", name="大きな文字").click()
    expect(page.get_by_role("switch", name="大きな文字")).not_to_be_checked()  # and back to normal text


def test_a_page_load_asks_nothing_of_the_internet(browser, running_app):
    """No CDN: every request of a page load goes to the app's own server. The Flet client's Rive
    plugin asks cdn.jsdelivr.net for a script on every load; the server's Content-Security-Policy
    makes Chromium refuse it before anything is sent (DevTools still lists it, as blocked)."""
    outside: dict[str, str | None] = {}  # url → why it failed (None: not failed, so it was sent)

    def note(request, failure: str | None = None) -> None:
        if request.url.startswith(("http:", "https:")) and not request.url.startswith(running_app.url):
            outside[request.url] = failure

    page = browser.new_page(**PHONE)
    page.on("request", note)
    page.on("requestfailed", lambda r: note(r, r.failure))
    response = page.goto(running_app.url)
    assert response is not None and "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    page.wait_for_selector("flt-semantics-placeholder", state="attached", timeout=30_000)
    page.eval_on_selector("flt-semantics-placeholder", "e => e.click()")
    page.get_by_role("tab", name="ホーム").wait_for()
    try:
        for _ in range(50):  # the client asks for it before its first frame; the failure event may trail
            if outside and None not in outside.values():
                break
            page.wait_for_timeout(100)
        assert outside, "the Flet client no longer asks for its Rive script: drop the policy's reason"
        assert all(why == "csp" for why in outside.values()), f"sent beyond the app's server: {outside}"
    finally:
        page.close()


class _OtherSite(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>another site</title>")

    def log_message(self, *args) -> None:
        pass


PROBE = """async url => {
    const ws = await new Promise(done => {
        const socket = new WebSocket(url.replace('http', 'ws') + '/ws');
        socket.onopen = () => { socket.close(); done('open'); };
        socket.onerror = () => done('refused');
    });
    let read;
    try { await (await fetch(url + '/')).text(); read = 'read'; } catch (e) { read = 'refused'; }
    return [ws, read];
}"""


def test_a_page_of_another_site_cannot_reach_the_session(browser, running_app):
    """Another site open in the resident's browser (here a server on another loopback port) tries
    the app's WebSocket and reads its page: both refused (webserver.SameOriginOnly). The app's own page
    still opens its session."""
    other = ThreadingHTTPServer(("127.0.0.1", 0), _OtherSite)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    page = browser.new_page(**PHONE)
    try:
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        assert page.evaluate(PROBE, running_app.url) == ["refused", "refused"]
        page.goto(running_app.url)
        assert page.evaluate(PROBE, running_app.url) == ["open", "read"]
    finally:
        page.close()
        other.shutdown()
