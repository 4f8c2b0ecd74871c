"""The web server answers only its own pages (main.SameOriginOnly), on a real `main.py`.

A browser lets any site open a WebSocket to 127.0.0.1 and names the site in the Origin header;
a DNS-rebinding page reaches the server under its own host name. tests/browser has the same
attack made from a real page of another origin."""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from main import served_hosts
from tests.browser.conftest import RunningApp, start_app, stop_app


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
