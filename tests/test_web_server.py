"""The web server (webserver.py): it answers only its own pages (SameOriginOnly), on a real
`main.py`; its front door serves the client as Flet's app would, and starts Flet's app and the
app's own startup once the browser has the client.

A browser lets any site open a WebSocket to 127.0.0.1 and names the site in the Origin header;
a DNS-rebinding page reaches the server under its own host name. tests/browser has the same
attack made from a real page of another origin."""
from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import flet as ft
import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.aio import run, wait_for
from tests.browser.conftest import ROOT, RunningApp, start_app, stop_app
from webserver import ASSETS, FrontDoor, run_flet, served_hosts


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[RunningApp]:
    app = start_app(tmp_path_factory.mktemp("store") / "mamori.sqlite")
    yield app
    stop_app(app)


def handshake(app: RunningApp, origin: str | None) -> str:
    """'open' or the server's refusal, for a WebSocket to the Flet session endpoint. The sync
    client: the browser tests' Playwright keeps an event loop running in this thread."""
    try:
        with connect(app.url.replace("http", "ws") + "/ws", origin=origin, open_timeout=10):
            return "open"
    except InvalidStatus as exc:
        return f"HTTP {exc.response.status_code}"


def test_a_page_of_another_origin_cannot_open_the_session(server):
    assert handshake(server, "http://evil.example") == "HTTP 403"
    assert handshake(server, server.url.replace("127.0.0.1", "localhost")) == "HTTP 403"  # another origin too
    assert handshake(server, server.url) == "open"
    assert "refused a websocket request from origin http://evil.example" in server.log.read_text()


def test_a_foreign_host_or_origin_gets_no_page_and_no_cors_header(server):
    port = server.url.rsplit(":", 1)[1]
    own = httpx.get(server.url)
    assert own.status_code == 200 and "access-control-allow-origin" not in own.headers
    assert httpx.get(server.url, headers={"Host": f"localhost:{port}"}).status_code == 200
    assert httpx.get(server.url, headers={"Host": f"rebound.evil.example:{port}"}).status_code == 403
    assert httpx.get(server.url + "/main.dart.js", headers={"Origin": "http://evil.example"}).status_code == 403


def test_served_hosts_are_the_address_and_loopback_names():
    assert served_hosts("127.0.0.1", 8550) == {"127.0.0.1:8550", "localhost:8550", "[::1]:8550"}
    assert "192.168.1.20:8550" in (served_hosts("192.168.1.20", 8550) or ())
    assert "[::1]" in (served_hosts("::1", 80) or ())
    assert served_hosts("0.0.0.0", 8550) is None  # every interface: any name of the machine


def test_a_session_left_before_it_registered_does_not_keep_the_server_from_stopping(tmp_path):
    """A WebSocket that opens and closes before Flet's first message leaves Flet's handler
    waiting; uvicorn's graceful shutdown waited for it forever, so SIGTERM never stopped the app."""
    app = start_app(tmp_path / "mamori.sqlite")
    try:
        assert handshake(app, app.url) == "open"
        app.process.terminate()
        app.process.wait(15)  # TimeoutExpired: the server is still waiting for the left session
    finally:
        stop_app(app)


async def no_session(page: ft.Page) -> None:
    """Flet's app is built here for its HTTP answers; no page session opens."""


def http(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8550")


def flet_app() -> Callable:
    return run_flet(no_session, export_asgi_app=True)


class Begun:
    """The app's own startup, as the front door begins it: counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


CLIENT_FILES = ("/", "/index.html", "/manifest.json", "/assets/FontManifest.json", "/favicon.png", "/flutter_bootstrap.js")


def test_the_front_door_serves_flets_client_as_flets_app_would():
    begun = Begun()
    door = FrontDoor(flet_app, begun)

    async def scenario() -> tuple[dict[str, httpx.Response], dict[str, httpx.Response]]:
        async with http(door) as client:
            answers = {path: await client.get(path) for path in CLIENT_FILES}
        async with http(flet_app()) as client:
            flets = {path: await client.get(path) for path in CLIENT_FILES}
        return answers, flets

    answers, flets = run(scenario())
    assert begun.calls == 0  # files alone start nothing: the browser has the CPU
    for path in CLIENT_FILES:
        assert answers[path].status_code == flets[path].status_code == 200, path
        assert answers[path].content == flets[path].content, f"{path} differs from Flet's"
        for header in ("content-type", "cross-origin-opener-policy", "cross-origin-embedder-policy"):
            assert answers[path].headers[header] == flets[path].headers[header], (path, header)
    page = answers["/"].text
    assert 'flet.webRenderer="canvaskit"' in page and "flet.noCdn=true" in page and 'flet.webSocketEndpoint="/ws"' in page
    assert answers["/favicon.png"].content == (ASSETS / "favicon.png").read_bytes()  # the app's assets first, as Flet's
    assert "NotoSansJP" in answers["/assets/FontManifest.json"].text and "roboto.woff2" in answers["/assets/FontManifest.json"].text


def test_python_starts_once_the_client_program_is_sent():
    """Flet's app and the app's own startup wait until the browser has its 9 MB program, once."""
    begun = Begun()
    door = FrontDoor(flet_app, begun)

    async def scenario() -> int:
        async with http(door) as client:
            program = await client.get("/main.dart.js")
            assert program.status_code == 200 and len(program.content) > 1_000_000
            await client.get("/main.dart.js")  # a reload starts nothing twice
            route = await asyncio.wait_for(client.get("/shelters/map"), 60)  # Flet's app answers routes with its page
            assert route.status_code == 200 and 'flet.webSocketEndpoint="/ws"' in route.text
        return begun.calls

    assert run(scenario()) == 1


def test_a_request_for_flets_app_starts_it_at_once():
    begun = Begun()
    door = FrontDoor(flet_app, begun)

    async def scenario() -> int:
        async with http(door) as client:
            outside = await asyncio.wait_for(client.get("/%2E%2E/pyproject.toml"), 60)  # arrives as /../pyproject.toml
            assert outside.status_code == 404  # not a file of the client: Flet's app says so
        return begun.calls

    assert run(scenario()) == 1


def test_a_path_no_file_can_have_gets_flets_404_not_a_server_error():
    """A name longer than the file system allows, or with a NUL byte, makes looking it up raise."""
    door = FrontDoor(flet_app, Begun())

    async def scenario() -> list[int]:
        async with http(door) as client:
            return [(await asyncio.wait_for(client.get(path), 60)).status_code for path in ("/" + "a" * 5000 + ".js", "/a%00.js")]

    assert run(scenario()) == [404, 404]


def test_with_no_page_python_starts_soon_after_the_server_listens():
    """Sync and a first-run import must not wait for a browser that never comes."""
    begun = Begun()
    door = FrontDoor(flet_app, begun)
    listening = time.monotonic()
    door.listening()
    run(wait_for(lambda: begun.calls == 1, 30))
    assert time.monotonic() - listening >= FrontDoor.START_BY_S * 0.9


def test_the_front_door_says_started_at_once_and_starts_flets_app_when_it_is_built(caplog):
    """uvicorn listens only once the app says it started; Flet's app manager starts with Flet's
    app, and stops at shutdown."""
    caplog.set_level(logging.INFO, logger="flet_web.fastapi")
    door = FrontDoor(flet_app, Begun())

    async def scenario() -> list[str]:
        inbox: asyncio.Queue[dict] = asyncio.Queue()
        said: asyncio.Queue[dict] = asyncio.Queue()
        lifespan = asyncio.create_task(door({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, said.put))
        await inbox.put({"type": "lifespan.startup"})
        messages = [(await asyncio.wait_for(said.get(), 5))["type"]]
        door.start()
        await wait_for(lambda: "Starting up Flet App Manager" in caplog.text, 60)
        await inbox.put({"type": "lifespan.shutdown"})
        messages.append((await asyncio.wait_for(said.get(), 10))["type"])
        await asyncio.wait_for(lifespan, 10)
        return messages

    assert run(scenario()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert "Shutting down Flet App Manager" in caplog.text


def test_a_taken_port_stops_the_app_with_the_reason(tmp_path):
    """The front door's early 'started' must not keep a server that could not listen running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), "--port", str(port), "--store", str(tmp_path / "m.sqlite")],
                              cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "address already in use" in done.stderr.lower()
    assert time.monotonic() - started < 30
