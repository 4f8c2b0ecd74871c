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


def open_page(browser, url: str, width: int = 430, height: int = 900, *, ready: Callable | None = None):
    """Load the app and switch on Flutter's accessibility tree so roles and labels exist; then
    wait for ``ready(page)`` (a locator; by default the navigation bar's first tab)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(15_000)
    log_console(page)
    page.goto(url)
    page.wait_for_selector("flt-semantics-placeholder", state="attached", timeout=30_000)
    page.eval_on_selector("flt-semantics-placeholder", "e => e.click()")
    (ready or (lambda p: p.get_by_role("tab").first))(page).wait_for()
    return page


@pytest.fixture()
def page(browser, running_app):
    page = open_page(browser, running_app.url)
    yield page
    page.close()


def log_console(page) -> None:
    """Keep the web client's console errors and uncaught exceptions with the screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS.parent / "browser-console.log"

    def write(kind: str, text: str) -> None:
        with log.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {kind} {page.url}: {text}\n")

    page.on("console", lambda m: write(m.type, m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: write("pageerror", str(e)))


def snap(page, name: str) -> Path:
    """Save a screenshot as a test artifact (after the one-frame lag settles)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@contextmanager
def snap_on_failure(page, name: str, app_log: Path | None = None):
    """On a failing step: screenshots of the top and the bottom of the page, and the app's log."""
    try:
        yield
    except Exception:
        try:
            snap(page, f"failed-{name}")
            page.mouse.move(200, 500)
            page.mouse.wheel(0, 5000)
            snap(page, f"failed-{name}-bottom")
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
