"""Serving Mamori's web client on a computer: a front door serving the client at once, Flet's
web app behind it for the sessions, uvicorn, and a guard so only the pages this server served
can use it. A phone build has no web server: ``serve`` hands the session to Flet's own transport."""
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
    """ASGI app in front of Flet's: it serves the web client itself, so the browser loads it
    at once and without competition, and leaves to Flet's app the sessions (WebSocket) and
    routes (a reload of /shelters/map).

    Answers are Flet's own: the page and the two manifests are Flet's files rewritten by Flet's
    functions with the arguments Flet's app gives them, the app's assets come before Flet's files,
    and each answer carries the headers Flet's app adds.

    Python's startup work, Flet's app (0.3 s of FastAPI and pydantic) and the app's own startup
    (``begin``), takes about a second of CPU. Run while the browser downloads and compiles its
    9 MB client on the same two cores, it slowed that by about 0.35 s. So it starts once the
    client's program has been sent (the browser then runs it on one thread), when a request
    needs Flet's app, or START_BY_S after the server listens, whichever comes first."""

    PROGRAMS = frozenset({"/main.dart.js", "/main.dart.wasm"})
    HEADERS = ((b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-embedder-policy", b"require-corp"))
    START_BY_S = 1.0

    def __init__(self, flet_app: Callable[[], Callable], begin: Callable[[], None]) -> None:
        from flet_web import get_package_web_dir
        from starlette.staticfiles import StaticFiles

        self._build, self._begin = flet_app, begin
        self._flet_app: Future[Callable] = Future()
        self._started = threading.Lock()
        web_dir = get_package_web_dir()
        self._rewritten = tempfile.TemporaryDirectory(prefix="mamori-web-")  # removed with the door
        rewrite_flet_files(web_dir, Path(self._rewritten.name))
        self._files = StaticFiles(directory=self._rewritten.name, html=True)  # html: / is the page
        self._files.all_directories += [ASSETS, web_dir]  # Flet's order: its rewritten files, the app's assets, its own

    def listening(self) -> None:
        """The server listens: start at the latest START_BY_S from now."""
        timer = threading.Timer(self.START_BY_S, self.start)
        timer.daemon = True
        timer.start()

    def start(self) -> None:
        """Build Flet's app in a thread and begin the app's own startup, once; requests needing
        Flet's app wait for it."""
        if not self._started.acquire(blocking=False):
            return

        def build() -> None:
            try:
                self._flet_app.set_result(self._build())
            except BaseException as exc:
                log.exception("Flet's web app could not be built")
                self._flet_app.set_exception(exc)

        threading.Thread(target=build, name="mamori-web", daemon=True).start()
        self._begin()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif self._is_client_file(scope):
            await self._files(scope, receive, headers_changed(send, lambda headers: [*headers, *self.HEADERS]))
            if scope["path"] in self.PROGRAMS:
                self.start()
        else:
            self.start()
            await (await asyncio.wrap_future(self._flet_app))(scope, receive, send)

    def _is_client_file(self, scope: dict) -> bool:
        """A GET of the page or of a file of the client."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return False
        if scope["path"] == "/":
            return True
        try:
            found = self._files.lookup_path(scope["path"].lstrip("/"))[1]
        except (OSError, ValueError):  # a name too long, a NUL byte: not a file (Starlette's own reading)
            return False
        return found is not None and stat.S_ISREG(found.st_mode)

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


def rewrite_flet_files(web_dir: str, into: Path) -> None:
    """The files Flet's app rewrites before serving them, rewritten as it does (from the app's
    assets when it has its own, else Flet's), into ``into``."""
    from flet_web import patch_font_manifest_json, patch_index_html, patch_manifest_json

    copied = {}
    for name in ("index.html", "manifest.json", "assets/FontManifest.json"):
        source = ASSETS / name if (ASSETS / name).exists() else Path(web_dir) / name
        copied[name] = (into / name).resolve()
        copied[name].parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copied[name])
    patch_index_html(str(copied["index.html"]), base_href="", websocket_endpoint_path="/ws", web_renderer=RENDERER, no_cdn=True)
    patch_manifest_json(str(copied["manifest.json"]))
    patch_font_manifest_json(str(copied["assets/FontManifest.json"]))


def run_flet(session: Callable[[ft.Page], Awaitable[None]], **how: Any) -> Any:
    """``ft.run`` with Mamori's assets and the client bundled (no CDN): ``export_asgi_app=True``
    gives Flet's web app."""
    return ft.run(session, assets_dir=str(ASSETS), no_cdn=True, web_renderer=RENDERER, **how)


def serve(session: Callable[[ft.Page], Awaitable[None]], config: Config, begin: Callable[[], None]) -> None:
    """The web client behind uvicorn, each response carrying SCRIPTS_FROM_HERE; a phone build
    talks to its Flutter client through Flet's own transport. ``begin`` starts the app's own
    startup; the front door calls it once the browser has the client (see FrontDoor)."""
    if is_embedded():
        begin()
        run_flet(session)
        return
    import uvicorn

    door = FrontDoor(lambda: run_flet(session, export_asgi_app=True), begin)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list | None = None) -> None:
            await super().startup(sockets)
            door.listening()
            if self.started and not (get_bool_env_var("FLET_FORCE_WEB_SERVER") or is_linux_server()):
                open_in_browser(f"http://{config.host}:{config.port}")  # as ft.run does on a desktop

    guarded = SameOriginOnly(door, served_hosts(config.host, config.port))
    # A page that left before its session registered leaves Flet's handler waiting for ever;
    # without a bound, shutdown waited for it and SIGTERM never stopped the server.
    Server(uvicorn.Config(guarded, host=config.host, port=config.port, ws="websockets-sansio",
                          headers=[("Content-Security-Policy", SCRIPTS_FROM_HERE)], timeout_graceful_shutdown=3)).run()
