"""Mamori (守り) entry point: parse flags, open the local store, import the region on first
start, and serve the app in web mode on 127.0.0.1 with the Flet web client bundled (no CDN).

The web server answers first: most of startup (importing the app's modules, the platform link,
a first-run region import) runs in a background thread once the browser has Flet's client
(webserver.FrontDoor says when), and a page that connects before it is done shows that the app
is getting ready."""
from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import flet as ft

from app.config import Config, parse_args
from app.devicekeys import FileKeyStore, store_keys
from app.i18n import Translator
from app.preferences import Preferences, load_preferences
from geo.regions import DEFAULT_REGION, Region, RegionNotFound, default_data_dir, find_region
from offline.store import open_store
from views.theme import apply_theme
from webserver import serve

if TYPE_CHECKING:
    import sqlite_utils

    from app.state import Mamori
    from views.shell import Shell

log = logging.getLogger("mamori")


class OpenedStore(NamedTuple):
    """What must exist before the server answers: the store and the region it names."""

    keys: FileKeyStore
    db: sqlite_utils.Database
    region: Region
    data_dir: Path
    prefs: Preferences  # the saved ones, with --lang applied


def open_region(config: Config) -> OpenedStore:
    keys = store_keys(config.store_path)  # before open_store: the migration asks whether the store existed
    db = open_store(config.store_path)
    saved = load_preferences(db)
    data_dir = config.data_dir or (Path(saved.data_dir) if saved.data_dir else default_data_dir())
    region = find_region(data_dir, config.region or saved.region or DEFAULT_REGION)
    return OpenedStore(keys, db, region, data_dir, saved.with_(language=config.language or saved.language))


def build_app(config: Config, opened: OpenedStore | None = None) -> Mamori:
    from app.connection import PlatformLink
    from app.state import Mamori
    from geo.regionfiles import RegionFileError

    keys, db, region, data_dir, _ = opened or open_region(config)
    link = PlatformLink(config.store_path, db, keys, config.platform_url, region.code)
    app = Mamori(db, region, keys, data_dir, config.language, link)
    try:
        for info in app.ensure_imported(force=config.reimport, progress=lambda name: log.info("importing %s", name)):
            log.info("imported %s: %d features from %s", info.dataset, info.feature_count, info.source_file)
    except RegionFileError as exc:
        # The previously imported data (if any) is intact; the app runs on it.
        log.error("region import failed, keeping previous data: %s", exc)
    return app


class Startup:
    """Runs ``build`` (the app and its shell class) in a thread from ``begin()`` on; each page
    session waits for it without blocking the server's event loop, and says so while it waits (in
    the resident's language, text size and contrast, and the bundled font: offline there is no
    other)."""

    def __init__(self, build: Callable[[], tuple[Mamori, type[Shell]]], prefs: Preferences):
        self._build, self._prefs = build, prefs
        self._t = Translator(prefs.language)
        self._ready: Future[tuple[Mamori, type[Shell]]] = Future()

    def begin(self) -> None:
        threading.Thread(target=self._run, name="mamori-startup", daemon=True).start()

    def _run(self) -> None:
        try:
            self._ready.set_result(self._build())
        except Exception as exc:
            log.exception("startup failed")
            self._ready.set_exception(exc)
        else:
            log.info("app ready")

    async def session(self, page: ft.Page) -> None:
        if not self._ready.done():
            self._show(page, ft.ProgressRing(), ft.Text(self._t("app.preparing")))
        try:
            app, shell = await asyncio.wrap_future(self._ready)
        except Exception as exc:  # the log has the traceback; the resident gets the reason
            self._show(page, ft.Text(self._t("app.start_failed", error=exc)))
            return
        shell(page, app).start()

    def _show(self, page: ft.Page, *controls: ft.Control) -> None:
        apply_theme(page, self._prefs)
        page.views[:] = [ft.View(route="/", controls=list(controls), horizontal_alignment=ft.CrossAxisAlignment.CENTER,
                                 vertical_alignment=ft.MainAxisAlignment.CENTER)]
        page.update()


def finish_start(config: Config, opened: OpenedStore) -> tuple[Mamori, type[Shell]]:
    """Everything after the server answers: the app, its sync, the shell's first-use imports, and
    (when a home is set) the router, built in the background before any page opens, so Home's
    first render has its answer. With no home, Home needs no route: the shell builds it once its
    first screen is drawn."""
    app = build_app(config, opened)
    app.link.start_sync()
    from views.shell import Shell

    Shell.prepare(app)
    if app.prefs.home is not None:
        app.evacuation.warm_up()
    return app, Shell


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    try:
        opened = open_region(config)
    except RegionNotFound as exc:
        print(f"mamori: {exc}. Pass --data-dir (or MAMORI_DATA_DIR) pointing at the folder that holds regions/.", file=sys.stderr)
        return 2
    # The event loop serving pages and taps takes the GIL from a busy background thread (this
    # startup, the router build, sync) within 1 ms rather than the default 5 ms.
    sys.setswitchinterval(0.001)
    startup = Startup(lambda: finish_start(config, opened), opened.prefs)
    log.info("Mamori on http://%s:%d (region %s, store %s)", config.host, config.port, opened.region.code, config.store_path)
    serve(startup.session, config, startup.begin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
