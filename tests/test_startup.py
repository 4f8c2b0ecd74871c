"""main.Startup: the web server answers before the app is built (imports, a first-run region
import, the router); a page opened meanwhile says the app is getting ready, then shows it, or
says why it could not start."""
from __future__ import annotations

import asyncio
import threading

from app.i18n import Translator
from app.preferences import Preferences
from main import Startup
from tests.aio import run, wait_for
from views.theme import FONT_FAMILY, LARGE_TEXT_SCALE

T = Translator("ja")


class Page:
    """What a session touches of ft.Page."""

    def __init__(self) -> None:
        self.views: list = []
        self.updates = 0
        self.theme = self.theme_mode = self.theme_animation_style = None

    def update(self) -> None:
        self.updates += 1

    def texts(self) -> list[str]:
        return [c.value for view in self.views for c in view.controls if hasattr(c, "value")]


class ShellSpy:
    def __init__(self, page: Page, app: object) -> None:
        self.page, self.app = page, app

    def start(self) -> None:
        self.page.views[:] = [f"shell of {self.app}"]


def begun(startup: Startup) -> Startup:
    """As the web server does once it listens (a phone build: before Flet's transport starts)."""
    startup.begin()
    return startup


def test_a_page_opened_during_startup_says_it_is_getting_ready_then_shows_the_app():
    release = threading.Event()

    def build():
        assert release.wait(10)
        return "app", ShellSpy

    startup, page = begun(Startup(build, Preferences(large_text=True))), Page()

    async def scenario():
        session = asyncio.create_task(startup.session(page))
        await wait_for(lambda: page.updates == 1)
        assert T("app.preparing") in page.texts()
        # In the bundled font (offline, Flutter's default would fetch a CJK one), at once (an
        # animated switch draws its first frames in the default font) and in the saved text size.
        assert page.theme.font_family == FONT_FAMILY and page.theme_animation_style is not None
        assert page.theme.text_theme.body_medium.size == round(14 * LARGE_TEXT_SCALE)
        assert not session.done()  # waiting, without blocking this event loop
        release.set()
        await asyncio.wait_for(session, 10)

    run(scenario())
    assert page.views == ["shell of app"]


def test_a_page_opened_after_startup_goes_straight_to_the_app():
    startup, page = begun(Startup(lambda: ("app", ShellSpy), Preferences())), Page()
    run(wait_ready_then(startup, page))
    assert page.updates == 0 and page.views == ["shell of app"]


async def wait_ready_then(startup: Startup, page: Page) -> None:
    await asyncio.wrap_future(startup._ready)
    await startup.session(page)


def test_a_failed_start_tells_the_resident_why():
    def build():
        raise ValueError("shelters.geojson: line 3 is not JSON")

    startup, page = begun(Startup(build, Preferences(language="en"))), Page()
    run(startup.session(page))
    assert page.texts() == [Translator("en")("app.start_failed", error="shelters.geojson: line 3 is not JSON")]
    assert page.theme.font_family == FONT_FAMILY
