"""Interop: the client's login against an independent certified OpenID provider.

panva/oidc-provider (npm) runs on 127.0.0.1 in a Node subprocess. The test installs it
into tests/interop/node_modules when missing; it skips only when Node/npm are absent or
the registry is unreachable outside CI.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.identity import TOKENS_KEY, MemoryTokenStore, Session, Tokens

INTEROP = Path(__file__).resolve().parent / "interop"


def _ensure_installed() -> None:
    if (INTEROP / "node_modules" / "oidc-provider").is_dir():
        return
    if not shutil.which("node") or not shutil.which("npm"):
        _skip_or_fail("node/npm not installed")
    done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=INTEROP,
                          capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        _skip_or_fail(f"npm install oidc-provider failed: {done.stderr.strip()[-300:]}")


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"interop provider unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    _ensure_installed()
    proc = subprocess.Popen(["node", "provider.mjs"], cwd=INTEROP, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("ready "):
            pytest.fail(f"oidc-provider did not start: {line!r}")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(10)


def browser(url: str) -> None:
    """The 'system browser': follows the provider's redirects (auto-consent) to our loopback."""
    with httpx.Client(follow_redirects=True, timeout=10) as http:
        assert http.get(url).status_code == 200


def test_login_refresh_userinfo_logout(issuer: str) -> None:
    store = MemoryTokenStore()
    session = Session(issuer, "mamori-app", store)
    claims = session.login(open_browser=browser, timeout=20)
    assert claims["sub"] == "interop-resident-1" and claims["aud"] == "mamori-app"
    assert session.userinfo()["sub"] == "interop-resident-1"

    first = Tokens.from_json(store.get(TOKENS_KEY))
    assert first.refresh_token, "offline_access must yield a refresh token"
    assert session.refresh()
    second = Tokens.from_json(store.get(TOKENS_KEY))
    assert second.refresh_token != first.refresh_token and second.access_token != first.access_token  # rotation
    old = httpx.post(session.metadata.token_endpoint, data={"grant_type": "refresh_token", "client_id": "mamori-app",
                                                            "refresh_token": first.refresh_token})
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"

    assert session.logout() is True  # provider supports RFC 7009 revocation
    assert not session.logged_in and store.get(TOKENS_KEY) is None
    rejected = httpx.get(session.metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {second.access_token}"})
    assert rejected.status_code == 401


def test_access_token_is_refreshed_silently_before_expiry(issuer: str) -> None:
    now = [time.time()]
    session = Session(issuer, "mamori-app", MemoryTokenStore(), clock=lambda: now[0], refresh_margin=60)
    session.login(open_browser=browser, timeout=20)
    token = session.access_token()
    now[0] += 600 - 59  # provider TTL is 600 s: inside the refresh margin, not yet expired
    fresh = session.access_token()
    assert fresh != token
    assert session.access_token() == fresh  # no refresh storm
    assert session.userinfo()["sub"] == "interop-resident-1"
