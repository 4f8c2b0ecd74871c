"""Mamori (守り) entry point: parse flags, open the local store, import the region on first
start, and serve the app in web mode on 127.0.0.1 with the Flet web client bundled (no CDN).

The web server answers first: most of startup (importing the app's modules, the platform link,
a first-run region import) runs in a background thread while the browser loads Flet's client,
and a page that connects before it is done shows that the app is getting ready."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import flet as ft
from flet.utils import get_bool_env_var, is_embedded, is_linux_server, open_in_browser

from app.config import Config, parse_args
from app.devicekeys import FileKeyStore, store_keys
from app.i18n import Translator
from app.preferences import Preferences, load_preferences
from geo.regions import DEFAULT_REGION, Region, RegionNotFound, default_data_dir, find_region
from offline.store import open_store
from views.theme import apply_theme

if TYPE_CHECKING:
    import sqlite_utils

    from app.state import Mamori
    from views.shell import Shell

ASSETS = Path(__file__).resolve().parent / "assets"
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
    """Runs ``build`` (the app and its shell class) in a thread; each page session waits for it
    without blocking the server's event loop, and says so while it waits (in the resident's
    language, text size and contrast, and the bundled font: offline there is no other)."""

    def __init__(self, build: Callable[[], tuple[Mamori, type[Shell]]], prefs: Preferences):
        self._prefs = prefs
        self._t = Translator(prefs.language)
        self._ready: Future[tuple[Mamori, type[Shell]]] = Future()
        threading.Thread(target=self._run, args=(build,), name="mamori-startup", daemon=True).start()

    def _run(self, build: Callable[[], tuple[Mamori, type[Shell]]]) -> None:
        try:
            self._ready.set_result(build())
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
    the router, which is built in the background before any page opens, so Home's first render
    has its answer."""
    app = build_app(config, opened)
    app.link.start_sync()
    from views.shell import Shell

    Shell.prepare(app)
    app.evacuation.warm_up()
    return app, Shell


# Scripts come from this server only: the Flet client's Rive plugin otherwise loads its runtime
# from cdn.jsdelivr.net on every page load (Mamori shows no Rive animation). Flutter's own
# loader needs inline scripts, eval and WebAssembly compilation.
SCRIPTS_FROM_HERE = "script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' blob:"


LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def served_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host headers this server answers to: its address and the loopback names, with the port;
    None when it listens on every interface (any name of the machine is then fair)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {*LOOPBACK, f"[{host}]" if ":" in host else host}
    return frozenset(n if port == 80 else f"{n}:{port}" for n in names)


class SameOriginOnly:
    """ASGI middleware: only pages this server served may talk to it.

    A browser lets any web site open a WebSocket to 127.0.0.1, and Flet's server accepted every
    one: a page from anywhere could have driven the resident's session and read what it shows
    (home, family, the evacuee card). Requests naming another origin (a browser always names it on a
    WebSocket and on a cross-site fetch) are refused with 403, as are Host headers this server does
    not answer to (a DNS-rebinding page names its own host); Flet's ``Access-Control-Allow-Origin:
    *`` is dropped, so other sites cannot read the answers either."""

    def __init__(self, app: Callable, hosts: frozenset[str] | None):
        self._app, self._hosts = app, hosts

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        headers = {k.decode(): v.decode("latin-1").lower() for k, v in scope["headers"] if k in (b"host", b"origin")}
        host, origin = headers.get("host", ""), headers.get("origin")
        if (self._hosts is not None and host not in self._hosts) or (origin is not None and origin.split("://", 1)[-1] != host):
            log.warning("refused a %s request from origin %s for host %s", scope["type"], origin, host)
            if scope["type"] == "websocket":
                await receive()  # websocket.connect; closing before accepting answers the handshake with 403
                await send({"type": "websocket.close", "code": 1008})
            else:
                await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"Mamori answers only its own pages.\n"})
            return

        async def without_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"access-control-allow-origin"]
            await send(message)

        await self._app(scope, receive, without_cors)


def serve(session: Callable[[ft.Page], Awaitable[None]], config: Config) -> None:
    """The web client behind uvicorn, each response carrying SCRIPTS_FROM_HERE; a phone build
    talks to its Flutter client through Flet's own transport."""
    run = functools.partial(
        ft.run, session, assets_dir=str(ASSETS), no_cdn=True,
        # Flet's default in Chromium is skwasm, whose text layout never returned now and then after
        # the large-text switch (the page froze inside skwasm's paragraph_layout: 7 of 27 runs
        # here; CanvasKit 0 of 28). CanvasKit is also the faster one at Flet's byte exchanges.
        web_renderer=ft.WebRenderer.CANVAS_KIT,
    )  # fmt: skip
    if is_embedded():
        run()
        return
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list | None = None) -> None:
            await super().startup(sockets)
            if self.started and not (get_bool_env_var("FLET_FORCE_WEB_SERVER") or is_linux_server()):
                open_in_browser(f"http://{config.host}:{config.port}")  # as ft.run does on a desktop

    web = run(export_asgi_app=True)
    assert web is not None
    guarded = SameOriginOnly(web, served_hosts(config.host, config.port))
    # A page that left before its session registered leaves Flet's handler waiting for ever;
    # without a bound, shutdown waited for it and SIGTERM never stopped the server.
    Server(uvicorn.Config(guarded, host=config.host, port=config.port, ws="websockets-sansio",
                          headers=[("Content-Security-Policy", SCRIPTS_FROM_HERE)], timeout_graceful_shutdown=3)).run()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    try:
        opened = open_region(config)
    except RegionNotFound as exc:
        print(f"mamori: {exc}. Pass --data-dir (or MAMORI_DATA_DIR) pointing at the folder that holds regions/.", file=sys.stderr)
        return 2
    # The web server's imports finish before the startup thread's begin (a phone build has none).
    with contextlib.suppress(ImportError):
        import flet_web.fastapi  # noqa: F401
        import uvicorn  # noqa: F401

    # The event loop serving pages and taps takes the GIL from a busy background thread (this
    # startup, the router build, sync) within 1 ms rather than the default 5 ms.
    sys.setswitchinterval(0.001)
    startup = Startup(lambda: finish_start(config, opened), opened.prefs)
    log.info("Mamori on http://%s:%d (region %s, store %s)", config.host, config.port, opened.region.code, config.store_path)
    serve(startup.session, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
