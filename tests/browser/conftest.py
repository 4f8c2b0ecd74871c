"""Browser end-to-end tests: the real app as a subprocess on a free loopback port, driven
by Debian's Chromium through Playwright. Screenshots go to test-artifacts/screens/."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screens"
CHROMIUM = os.environ.get("MAMORI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    def __init__(self, url: str, process: subprocess.Popen, log: Path, opened: Path | None = None):
        self.url, self.process, self.log = url, process, log
        self.opened = opened  # where the app's "system browser" writes the login URL it was given


def start_app(store: Path, *extra: str, log_name: str = "app.log", env: dict[str, str] | None = None) -> RunningApp:
    port = free_port()
    log = store.parent / log_name
    env = dict(os.environ, FLET_WEB_NO_CDN="true", FLET_FORCE_WEB_SERVER="true", MAMORI_STORE=str(store), **(env or {}))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "--port", str(port), *extra],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return RunningApp(url, process, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"app did not start in 60 s:\n{log.read_text()}")


def start_connected_app(folder: Path, platform_url: str, *, env: dict[str, str] | None = None) -> RunningApp:
    """The app linked to a platform. Its "system browser" (webbrowser.open) only writes the login
    URL to ``app.opened``; ``complete_login`` opens it in the real Chromium."""
    opened, fake_browser = folder / "opened-url.txt", folder / "browser.sh"
    fake_browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n')
    fake_browser.chmod(0o755)
    app = start_app(folder / "mamori.sqlite", "--platform-url", platform_url,
                    env={"BROWSER": f"{fake_browser} %s", **(env or {})})
    app.opened = opened
    return app


def complete_login(browser, app: RunningApp, username: str, password: str = "mamori-demo") -> None:
    """Fill in the platform's login page that the app sent the resident to."""
    login_page = browser.new_page()
    login_page.goto(wait_for_file(app.opened))
    login_page.get_by_label("ユーザー名 / Username").fill(username)
    login_page.get_by_label("パスワード / Password").fill(password)
    login_page.get_by_role("button", name="ログイン / Log in").click()
    login_page.wait_for_load_state()
    login_page.close()


def wait_for_file(path: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError("the app never opened the login page")


def stop_app(app: RunningApp) -> None:
    app.process.terminate()
    try:
        app.process.wait(10)
    except subprocess.TimeoutExpired:
        app.process.kill()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run must install it")
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def running_app(tmp_path_factory) -> Iterator[RunningApp]:
    app = start_app(tmp_path_factory.mktemp("store") / "mamori.sqlite")
    yield app
    stop_app(app)


PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
SIZES = {"phone": PHONE, "desktop": DESKTOP}

# Flutter web (release) draws a widget whose layout failed as a solid box of this colour, and
# logs these lines to the console; either one fails a test.
ERROR_GREY = (196, 196, 196)
LAYOUT_ERRORS = ("RenderFlex overflowed", "Another exception was thrown", "was not laid out",
                 "non-zero flex but incoming", "unbounded height", "unbounded width")
# Flutter's web engine looks for a fallback font when a text has characters its fonts lack; the
# bundled fonts must cover everything from the first frame (offline, the fetch fails, and each
# failure makes the engine lay out every text again).
FONT_ERRORS = ("Failed to load font", "Could not find a set of Noto fonts")


def open_page(browser, url: str, size: str = "phone", *, ready: Callable | None = None):
    """Load the app at phone (390×844, 2× pixels, touch) or desktop (1280×800) size and switch on
    Flutter's accessibility tree so roles and labels exist; then wait for ``ready(page)`` (a
    locator; by default the navigation bar's first tab). Closing the page closes its context."""
    page = browser.new_page(**SIZES[size])
    page.set_default_timeout(15_000)
    log_console(page)
    page.goto(url)
    page.wait_for_selector("flt-semantics-placeholder", state="attached", timeout=30_000)
    page.eval_on_selector("flt-semantics-placeholder", "e => e.click()")
    (ready or (lambda p: p.get_by_role("tab").first))(page).wait_for()
    return page


@pytest.fixture(params=["phone", "desktop"])
def page(request, browser, running_app):
    page = open_page(browser, running_app.url, request.param)
    yield page
    check_screen(page)
    page.close()


def log_console(page) -> None:
    """Keep the web client's console errors and uncaught exceptions with the screenshots, and
    the layout and font errors on the page (``page.layout_errors``) for check_screen."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS.parent / "browser-console.log"
    page.layout_errors = []

    def write(kind: str, text: str) -> None:
        if any(marker in text for marker in LAYOUT_ERRORS + FONT_ERRORS):
            page.layout_errors.append(text)
        with log.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {kind} {page.url}: {text}\n")

    page.on("console", lambda m: write(m.type, m.text))
    page.on("pageerror", lambda e: write("pageerror", str(e)))


def error_widget_boxes(png: bytes) -> list[tuple[int, int, int, int]]:
    """Solid blocks of Flutter's error grey (at least 8×8 image pixels: text anti-aliasing never
    makes one) in a screenshot, as (x0, y0, x1, y1) bounding boxes in image pixels, one per
    row band."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    grey = np.all(rgb == ERROR_GREY, axis=2)
    # erosion by an 8×8 square, with summed-area tables: a pixel survives when its block is all grey
    k = 8
    sat = np.pad(grey.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    block = sat[k:, k:] - sat[:-k, k:] - sat[k:, :-k] + sat[:-k, :-k]
    ys, xs = np.nonzero(block == k * k)
    if not len(ys):
        return []
    return [(int(xs.min()), int(ys.min()), int(xs.max()) + k, int(ys.max()) + k)]


def screen_error_widgets(page, *, scroll: bool = True, name: str = "screen") -> int:
    """How many screenfuls show Flutter's error widget; with ``scroll`` the page is scrolled to
    its end one screen at a time (and back), so a grey box below the fold is seen too. The first
    such picture is kept as test-artifacts/screens/error-widget-<name>.png."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    shots, moved, previous, bad = 0, 0.0, None, 0
    while True:
        png = page.screenshot()
        if error_widget_boxes(png):
            if not bad:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                (ARTIFACTS / f"error-widget-{name}.png").write_bytes(png)
            bad += 1
        shots += 1
        if not scroll or png == previous or shots > 12:
            break
        previous = png
        page.mouse.move(width / 2, height / 2)  # over the page's scrolling view (its margin is not part of it)
        page.mouse.wheel(0, height * 0.8)
        moved += height * 0.8
        page.wait_for_timeout(150)  # one frame for the scroll to be drawn (a picture, not state)
    if moved:
        page.mouse.wheel(0, -moved - height)
        page.wait_for_timeout(150)
    return bad


def check_screen(page, *, scroll: bool = True, name: str = "screen") -> None:
    """Fail when the screen shows Flutter's error widget or the console reported a layout error
    or a missing font."""
    if page.layout_errors:
        raise AssertionError(f"Flutter console error on {page.url}: {page.layout_errors[0][:300]}")
    if screen_error_widgets(page, scroll=scroll, name=name):
        raise AssertionError(f"Flutter error widget (grey box) on {page.url}; see test-artifacts/screens/error-widget-{name}.png")
    if page.layout_errors:
        raise AssertionError(f"Flutter console error on {page.url}: {page.layout_errors[0][:300]}")


def snap(page, name: str, *, scroll: bool = True) -> Path:
    """Save a screenshot as a test artifact (after the one-frame lag settles), then check the
    whole screen (scrolled, unless ``scroll`` is False: on a screen the map fills, the wheel
    zooms the map instead) for error widgets and layout errors."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)
    size = "phone" if page.viewport_size["width"] < 600 else "desktop"
    path = ARTIFACTS / f"{name}-{size}.png"
    page.screenshot(path=str(path))
    check_screen(page, scroll=scroll, name=name)
    return path


# Whether a person tapping the middle of the element would touch it, not the navigation bar, a
# snack bar or another control drawn over it (Flutter's accessibility nodes answer hit tests).
_TAPPABLE = """el => {
  const r = el.getBoundingClientRect();
  const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (at === null) return 'nothing';
  if (at === el || el.contains(at) || at.contains(el)) return '';
  return (at.getAttribute('aria-label') || at.getAttribute('role') || at.tagName).slice(0, 40);
}"""


def on_screen(locator, timeout: float = 15.0):
    """Fail unless a person could tap ``locator``: it has a size, its middle lies in the viewport
    and nothing is drawn over it (the navigation bar, a snack bar). Scrolls it into view as a
    screen reader does (Flutter follows the accessibility tree's scrolling; the wheel is the
    fallback where that moves nothing), and waits while a scroll or a redraw moves or replaces
    it. Returns the locator."""
    from playwright.sync_api import Error

    page = locator.page
    viewport = page.viewport_size
    deadline = time.monotonic() + timeout
    box = previous = scrolled_from = None
    covered, scrolls = "", 0
    while time.monotonic() < deadline:
        try:
            locator.wait_for()
            box = locator.bounding_box()
            covered = locator.evaluate(_TAPPABLE) if box else ""
        except Error as exc:  # replaced by a redraw between the wait and the measurement
            if "not attached" not in str(exc):
                raise
            box = None
        if not box or box["width"] <= 0 or box["height"] <= 0 or box != previous:
            previous = box  # not drawn yet, or still moving: measure again on a later frame
            page.wait_for_timeout(150)
            continue
        middle_y = box["y"] + box["height"] / 2
        inside = 0 <= box["x"] + box["width"] / 2 < viewport["width"] and 0 <= middle_y < viewport["height"]
        if inside and not covered:
            return locator
        if scrolls == 6:
            break
        scrolls += 1
        try:
            if box == scrolled_from:  # the last scroll moved nothing: the wheel, as a person would
                page.mouse.move(viewport["width"] / 2, viewport["height"] / 2)
                page.mouse.wheel(0, middle_y - viewport["height"] / 2)
            else:
                locator.scroll_into_view_if_needed()
        except Error as exc:
            if "not attached" not in str(exc):
                raise
        scrolled_from, previous = box, None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "not-tappable.png"))
    if not box or box["width"] <= 0 or box["height"] <= 0:
        raise AssertionError(f"{locator} has no size on screen")
    raise AssertionError(f"{locator} is not where a person can tap it: {box} in {viewport}"
                         + (f", under {covered!r}" if covered else "") + "; see test-artifacts/screens/not-tappable.png")


@pytest.fixture(autouse=True)
def checked_clicks(monkeypatch):
    """Every click a browser test makes first checks the control is on screen and has a size
    (Flutter's accessibility tree can name a control a person cannot see), and afterwards that
    the screen shows no error widget and the console no layout error."""
    from playwright.sync_api import Locator

    click = Locator.click

    def checked_click(self, *args, **kwargs):
        on_screen(self)
        click(self, *args, **kwargs)
        if hasattr(self.page, "layout_errors"):  # a page opened by open_page
            check_screen(self.page, scroll=False, name="after-click")

    monkeypatch.setattr(Locator, "click", checked_click)


@contextmanager
def snap_on_failure(page, name: str, app_log: Path | None = None):
    """On a failing step: screenshots of the top and the bottom of the page, and the app's log."""
    try:
        yield
    except Exception:
        try:
            shot = ARTIFACTS / f"failed-{name}.png"
            page.screenshot(path=str(shot))
            page.mouse.move(200, 500)
            page.mouse.wheel(0, 5000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / f"failed-{name}-bottom.png"))
        except Exception as snap_error:  # a frozen page: the step's own error is the one to report
            print(f"no failure screenshot: {snap_error}")
        if app_log is not None:
            print(app_log.read_text()[-4000:])
        raise


def tap_canvas(page, x: float, y: float) -> None:
    """Tap the map itself. Flutter's accessibility overlay can sit over the map with nodes
    whose hit areas are larger than they look, so it is made click-through for this tap."""
    handle = page.add_style_tag(content="flt-semantics { pointer-events: none !important; }")
    page.mouse.click(x, y)
    handle.evaluate("e => e.remove()")
