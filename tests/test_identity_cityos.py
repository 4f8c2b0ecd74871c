"""Login against the real reference platform (cityos) on loopback: code + PKCE through a
loopback redirect, userinfo, rotation, silent refresh of a short-lived token, logout."""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from html import unescape
from urllib.parse import urljoin

import httpx
import pytest

from app.identity import TOKENS_KEY, LoginError, MemoryTokenStore, Session, Tokens
from cityos.testing import run_cityos

PASSWORD = "mamori-demo"


def form_browser(username: str, password: str = PASSWORD) -> Callable[[str], None]:
    """A 'system browser' with a resident at the keyboard: fills cityos's login form and
    follows the redirect to the app's loopback listener."""

    def open_url(url: str) -> None:
        with httpx.Client(timeout=10) as http:
            page = http.get(url)
            page.raise_for_status()
            fields = {unescape(n): unescape(v) for n, v in
                      re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text)}
            fields.update(username=username, password=password)
            action = re.search(r'<form[^>]*action="([^"]*)"', page.text)
            answer = http.post(urljoin(url, unescape(action.group(1)) if action else url), data=fields)
            if answer.status_code != 302:
                raise AssertionError(f"login form answered {answer.status_code}")
            http.get(answer.headers["Location"])  # the redirect lands on the app's loopback listener

    return open_url


def login(base_url: str, username: str = "ube-resident-1", store: MemoryTokenStore | None = None,
          **options) -> Session:
    session = Session(base_url, "mamori-app", store or MemoryTokenStore(), **options)
    session.login(open_browser=form_browser(username), timeout=20)
    return session


@pytest.fixture(scope="module")
def cityos(tmp_path_factory) -> Iterator:
    with run_cityos(tmp_path_factory.mktemp("cityos")) as server:
        yield server


def test_login_userinfo_and_rotation(cityos) -> None:
    store = MemoryTokenStore()
    session = login(cityos.base_url, store=store)
    info = session.userinfo()
    assert info["preferred_username"] == "ube-resident-1" and info["municipalityCode"] == "352021"
    first = Tokens.from_json(store.get(TOKENS_KEY))
    assert session.refresh()
    second = Tokens.from_json(store.get(TOKENS_KEY))
    assert second.refresh_token != first.refresh_token
    assert session.userinfo()["sub"] == info["sub"]


def test_wrong_password_never_reaches_the_app(cityos) -> None:
    session = Session(cityos.base_url, "mamori-app", MemoryTokenStore())
    with pytest.raises(AssertionError, match="401"):
        session.login(open_browser=form_browser("ube-resident-1", "wrong"), timeout=5)
    assert not session.logged_in


def test_redirect_with_foreign_state_is_refused(cityos) -> None:
    session = Session(cityos.base_url, "mamori-app", MemoryTokenStore())
    request = session.authorization_request("http://127.0.0.1:9/callback")
    with pytest.raises(LoginError, match="state"):
        session.complete_login(request, {"code": "x", "state": "forged"})


def test_short_lived_token_is_refreshed_silently(tmp_path) -> None:
    with run_cityos(tmp_path, access_token_ttl=2) as server:
        session = login(server.base_url)
        first = session.access_token()
        time.sleep(2.2)
        assert session.access_token() != first  # refreshed before use, not after a 401
        assert session.userinfo()["preferred_username"] == "ube-resident-1"


def test_logout_drops_tokens_and_provider_without_revocation_is_fine(cityos) -> None:
    store = MemoryTokenStore()
    session = login(cityos.base_url, store=store)
    revoked = session.logout()
    assert revoked == bool(session.metadata.revocation_endpoint)
    assert store.get(TOKENS_KEY) is None and session.access_token() is None
    with pytest.raises(LoginError, match="not logged in"):
        session.userinfo()
