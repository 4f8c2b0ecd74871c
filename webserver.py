"""Serving Mamori's web client on a computer: Flet's web app behind uvicorn, answered at once
by a front door while Flet's app imports, guarded so only the pages this server served can use
it. A phone build has no web server: ``serve`` hands the session to Flet's own transport."""
from __future__ import annotations

import asyncio
import logging
import shutil
import stat
import tempfile
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import flet as ft
from flet.utils import get_bool_env_var, is_embedded, is_linux_server, open_in_browser

from app.config import Config

ASSETS = Path(__file__).resolve().parent / "assets"
log = logging.getLogger("mamori.web")


# Scripts come from this server only: the Flet client's Rive plugin otherwise loads its runtime
# from cdn.jsdelivr.net on every page load (Mamori shows no Rive animation). Flutter's own
# loader needs inline scripts, eval and WebAssembly compilation.
SCRIPTS_FROM_HERE = "script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' blob:"

# Flet's default in Chromium is skwasm, whose text layout never returned now and then after the
# large-text switch (the page froze inside skwasm's paragraph_layout: 7 of 27 runs here; CanvasKit
# 0 of 28). CanvasKit is also the faster one at Flet's byte exchanges.
RENDERER = ft.WebRenderer.CANVAS_KIT

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def served_hosts(host: str, port: int) -> frozenset[str] | None:
    """The Host headers this server answers to: its address and the loopback names, with the port;
    None when it listens on every interface (any name of the machine is then fair)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {*LOOPBACK, f"[{host}]" if ":" in host else host}
    return frozenset(n if port == 80 else f"{n}:{port}" for n in names)


def headers_changed(send: Callable, change: Callable[[list], list]) -> Callable:
    """ASGI ``send`` with the response's headers passed through ``change``."""

    async def changed(message: dict) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = change(list(message.get("headers", [])))
        await send(message)

    return changed


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

        without_cors = headers_changed(send, lambda headers: [(k, v) for k, v in headers if k.lower() != b"access-control-allow-origin"])
        await self._app(scope, receive, without_cors)


class FrontDoor:
    """ASGI app: Flet's web app, answered for at once. Flet's app takes about 0.3 s to import
    (FastAPI, pydantic); until it is there, the front door serves the web client's own files, so
    the browser starts loading its 9 MB client at once, and every other request (the session's
    WebSocket, the manifests Flet rewrites, routes) waits for Flet's app. The page is Flet's
    index.html rewritten by Flet's own function with the arguments Flet's app gives it, and each
    answer carries the headers Flet's app adds."""

    WAITS_FOR_FLET = frozenset({"/manifest.json", "/assets/FontManifest.json"})
    HEADERS = ((b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-embedder-policy", b"require-corp"))

    def __init__(self) -> None:
        from flet_web import get_package_web_dir, patch_index_html
        from starlette.responses import HTMLResponse
        from starlette.staticfiles import StaticFiles

        self._flet_app: Future[Callable] = Future()
        web_dir = get_package_web_dir()
        with tempfile.TemporaryDirectory() as tmp:
            index = shutil.copyfile(Path(web_dir) / "index.html", Path(tmp) / "index.html")
            patch_index_html(str(index), base_href="", websocket_endpoint_path="/ws", web_renderer=RENDERER, no_cdn=True)
            self._page = HTMLResponse(index.read_bytes())
        self._files = StaticFiles(directory=ASSETS)
        self._files.all_directories.append(web_dir)  # Flet's order: the app's assets first

    def open(self, flet_app: Callable[[], Callable]) -> None:
        """Build Flet's app (``flet_app()``) in a thread; requests go to it from then on."""

        def build() -> None:
            try:
                self._flet_app.set_result(flet_app())
            except BaseException as exc:
                log.exception("Flet's web app could not be built")
                self._flet_app.set_exception(exc)

        threading.Thread(target=build, name="mamori-web", daemon=True).start()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif not self._flet_app.done() and (answer := self._answer(scope)):
            await answer(scope, receive, headers_changed(send, lambda headers: [*headers, *self.HEADERS]))
        else:
            await (await asyncio.wrap_future(self._flet_app))(scope, receive, send)

    def _answer(self, scope: dict) -> Callable | None:
        """The page or a file of the client, for a GET of one; None for the rest."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or scope["path"] in self.WAITS_FOR_FLET:
            return None
        if scope["path"] in ("/", "/index.html"):
            return self._page
        found = self._files.lookup_path(scope["path"].lstrip("/"))[1]
        return self._files if found is not None and stat.S_ISREG(found.st_mode) else None

    async def _lifespan(self, scope: dict, receive: Callable, send: Callable) -> None:
        """uvicorn listens only once its app says it started: say so at once, then run Flet's own
        start (its session manager) when Flet's app is there, and its stop at shutdown. A server
        stopped first (its port taken) stops without it."""
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        shutdown = asyncio.ensure_future(receive())
        flet_app = asyncio.wrap_future(self._flet_app)
        await asyncio.wait((shutdown, flet_app), return_when=asyncio.FIRST_COMPLETED)
        if not flet_app.done() or flet_app.exception() is not None:
            await shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        messages = [{"type": "lifespan.startup"}]

        async def flet_receive() -> dict:
            return messages.pop() if messages else await shutdown

        async def flet_send(message: dict) -> None:
            if message["type"] == "lifespan.startup.failed":
                log.error("Flet's web app did not start: %s", message.get("message"))
            elif message["type"] != "lifespan.startup.complete":  # already said
                await send(message)

        await flet_app.result()(scope, flet_receive, flet_send)


def run_flet(session: Callable[[ft.Page], Awaitable[None]], **how: Any) -> Any:
    """``ft.run`` with Mamori's assets and the client bundled (no CDN): ``export_asgi_app=True``
    gives Flet's web app."""
    return ft.run(session, assets_dir=str(ASSETS), no_cdn=True, web_renderer=RENDERER, **how)


def serve(session: Callable[[ft.Page], Awaitable[None]], config: Config, begin: Callable[[], None]) -> None:
    """The web client behind uvicorn, each response carrying SCRIPTS_FROM_HERE; a phone build
    talks to its Flutter client through Flet's own transport. ``begin`` starts the app's own
    startup once the server listens: its imports, run sooner, slowed the server's start."""
    if is_embedded():
        begin()
        run_flet(session)
        return
    import uvicorn

    door = FrontDoor()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list | None = None) -> None:
            await super().startup(sockets)
            door.open(lambda: run_flet(session, export_asgi_app=True))
            begin()
            if self.started and not (get_bool_env_var("FLET_FORCE_WEB_SERVER") or is_linux_server()):
                open_in_browser(f"http://{config.host}:{config.port}")  # as ft.run does on a desktop

    guarded = SameOriginOnly(door, served_hosts(config.host, config.port))
    # A page that left before its session registered leaves Flet's handler waiting for ever;
    # without a bound, shutdown waited for it and SIGTERM never stopped the server.
    Server(uvicorn.Config(guarded, host=config.host, port=config.port, ws="websockets-sansio",
                          headers=[("Content-Security-Policy", SCRIPTS_FROM_HERE)], timeout_graceful_shutdown=3)).run()
